import { describe, expect, it } from 'vitest';
import { decide, isHostFailure, throttleOf } from '../../src/batch/decide.js';
import type { HistoryEntry } from '../../src/batch/journal-schema.js';
import { ConnectionResetError, RetryPolicy, wait } from '../../src/index.js';
import { failure, get, NOW, response } from './decide-support.js';

/** The edges of the batch's retry decision: each one a comparison a mutant turned around. */

const HOUR = 3_600_000;
const limits = { maxRetryAfterMs: 2 * HOUR, giveUpAfterMs: 6 * HOUR };
const policy = new RetryPolicy({ total: 3, backoff: wait.exponential({ multiplier: 100 }) });

describe('status edges', () => {
  it('399 is done, 400 failed', () => {
    expect(decide(policy, get(), response(399), NOW, limits)).toMatchObject({
      state: 'done',
      reason: 'ok',
      status: 399,
      errorCode: null,
      errorMessage: null,
      held: false,
    });
    expect(decide(policy, get(), response(400), NOW, limits)).toMatchObject({
      state: 'failed',
      reason: 'http-status',
      status: 400,
    });
  });
});

describe('a host that throttles (429 with the host paused)', () => {
  const throttle = (retryAfterS: number) => response(429, { 'retry-after': String(retryAfterS) });

  it('waits for a Retry-After of exactly --max-retry-after; one second more fails the line', () => {
    const atLimit = decide(policy, get(), throttle(2 * 3600), NOW, { ...limits, hostOpenAt: NOW });
    expect(atLimit).toMatchObject({
      state: 'pending',
      nextAttemptAt: NOW + 2 * HOUR,
      delaySource: 'retry-after',
      held: true,
    });
    const above = decide(policy, get(), throttle(2 * 3600 + 1), NOW, {
      ...limits,
      hostOpenAt: NOW,
    });
    expect(above).toEqual({
      state: 'failed',
      reason: 'retry-after-too-long',
      nextAttemptAt: 0,
      history: [],
      status: 429,
      errorCode: 'ERR_DOGGED_RETRY_AFTER_TOO_LONG',
      errorMessage:
        'Retry-After of 120 min 1 s exceeds the batch limit (--max-retry-after) of 120 min; raise it or run the batch again later',
      delayMs: undefined,
      delaySource: undefined,
      held: false,
    });
  });

  it('is held until exactly --give-up-after from its first attempt; a moment past it fails', () => {
    const first = NOW - 6 * HOUR + 1000;
    // Open again at first + 6 h: still within the time a line may be turned away.
    const within = decide(policy, get([], first), throttle(1), NOW, { ...limits, hostOpenAt: NOW });
    expect(within).toMatchObject({ state: 'pending', nextAttemptAt: NOW + 1000, held: true });
    const past = decide(policy, get([], first - 1), throttle(1), NOW, {
      ...limits,
      hostOpenAt: NOW,
    });
    expect(past).toMatchObject({
      state: 'failed',
      reason: 'rate-limited',
      status: 429,
      errorCode: 'ERR_DOGGED_RATE_LIMITED',
    });
    // The message says how long the host has turned it away and how much longer it asks.
    expect(past.errorMessage).toMatch(
      /^the host answered 429 for 359 min 59 s and asks to wait 1 s more/,
    );
  });

  it('folds throttles in a row into one history entry, keeping the entries before them', () => {
    const history: HistoryEntry[] = [
      { at: NOW - 5000, status: 503, delayMs: 100, source: 'backoff' },
      { at: NOW - 1000, status: 429, delayMs: 1000, source: 'retry-after', throttled: 1 },
    ];
    const d = decide(policy, get(history, NOW - 6000), throttle(1), NOW, {
      ...limits,
      hostOpenAt: NOW,
    });
    expect(d.history).toEqual([
      history[0],
      { at: NOW, status: 429, delayMs: 1000, source: 'retry-after', throttled: 2 },
    ]);
    expect(d.status).toBe(429);
  });
});

describe('what an attempt says about its host', () => {
  it('a throttle is a 429 (with or without Retry-After) or a 503 that asks to wait', () => {
    expect(throttleOf(response(429), NOW)).toEqual({ status: 429, retryAfterMs: undefined });
    expect(throttleOf(response(429, { 'retry-after': '2' }), NOW)).toEqual({
      status: 429,
      retryAfterMs: 2000,
    });
    expect(throttleOf(response(503, { 'retry-after': '5' }), NOW)).toEqual({
      status: 503,
      retryAfterMs: 5000,
    });
    expect(throttleOf(response(503), NOW)).toBeUndefined();
    expect(throttleOf(response(503, { 'retry-after': '0' }), NOW)).toBeUndefined();
    expect(throttleOf(response(500, { 'retry-after': '5' }), NOW)).toBeUndefined();
    expect(throttleOf(failure(new Error('reset')), NOW)).toBeUndefined();
  });

  it('a host failure is a retriable error or a gateway status that is not a throttle', () => {
    expect(isHostFailure(response(502))).toBe(true);
    expect(isHostFailure(response(503))).toBe(true);
    expect(isHostFailure(response(504))).toBe(true);
    expect(isHostFailure(response(503, { 'retry-after': '5' }))).toBe(false);
    expect(isHostFailure(response(500))).toBe(false);
    expect(isHostFailure(failure(new ConnectionResetError('reset', { phase: 'headers' })))).toBe(
      true,
    );
    expect(isHostFailure(failure(new Error('a bug')))).toBe(false);
    expect(isHostFailure(failure(null))).toBe(false);
  });

  it('a failure that is not dogged is recorded under its code, its name, or as unknown', () => {
    const decided = (error: unknown) => decide(policy, get(), failure(error), NOW, limits);
    expect(decided(Object.assign(new Error('coded'), { code: 'E_X' }))).toMatchObject({
      state: 'failed',
      reason: 'not-retriable',
      errorCode: 'E_X',
    });
    expect(decided(new TypeError('plain')).errorCode).toBe('TypeError');
    expect(decided(null).errorCode).toBe('ERR_DOGGED_UNKNOWN');
  });
});
