import { describe, expect, it } from 'vitest';
import { decide, hostSignalOf, replayPolicy } from '../../src/batch/decide.js';
import type { HistoryEntry } from '../../src/batch/journal-schema.js';
import {
  ConnectError,
  ConnectionResetError,
  ReadTimeoutError,
  RetryPolicy,
  TLSError,
  wait,
} from '../../src/index.js';
import { failure, get, NOW, response, url } from './decide-support.js';

const limits = { maxRetryAfterMs: 86_400_000, giveUpAfterMs: 21_600_000 };
const policy = new RetryPolicy({ total: 3, backoff: wait.exponential({ multiplier: 100 }) });

describe('the durable retry decision', () => {
  it('finishes a 200 as done', () => {
    const d = decide(policy, get(), response(200), NOW, limits);
    expect(d).toMatchObject({ state: 'done', reason: 'ok', status: 200 });
  });

  it('fails a 404 at once, without a retry', () => {
    const d = decide(policy, get(), response(404), NOW, limits);
    expect(d).toMatchObject({ state: 'failed', reason: 'http-status', status: 404 });
    expect(d.history).toEqual([]);
  });

  it('reschedules a 503 after the backoff instead of sleeping', () => {
    const d = decide(policy, get(), response(503), NOW, limits);
    expect(d).toMatchObject({ state: 'pending', nextAttemptAt: NOW + 100, delaySource: 'backoff' });
    expect(d.history).toEqual([{ at: NOW, status: 503, delayMs: 100, source: 'backoff' }]);
  });

  it('grows the backoff with the retries recorded in the journal', () => {
    const history: HistoryEntry[] = [
      { at: NOW - 300, status: 503, delayMs: 100, source: 'backoff' },
      { at: NOW - 100, status: 503, delayMs: 200, source: 'backoff' },
    ];
    const d = decide(policy, get(history), response(503), NOW, limits);
    expect(d).toMatchObject({ state: 'pending', nextAttemptAt: NOW + 400 });
  });

  it('gives up when the recorded retries exhaust the policy', () => {
    const history: HistoryEntry[] = [1, 2, 3].map((n) => ({
      at: NOW - n,
      status: 503,
      delayMs: 1,
      source: 'backoff' as const,
    }));
    const d = decide(policy, get(history), response(503), NOW, limits);
    expect(d).toMatchObject({ state: 'failed', reason: 'retries-exhausted', status: 503 });
  });

  it('waits as long as Retry-After asks', () => {
    const d = decide(policy, get(), response(429, { 'retry-after': '7' }), NOW, limits);
    expect(d).toMatchObject({
      state: 'pending',
      nextAttemptAt: NOW + 7000,
      delaySource: 'retry-after',
    });
  });

  it('reschedules a Retry-After longer than the policy would sleep on (an hour)', () => {
    const d = decide(policy, get(), response(503, { 'retry-after': '3600' }), NOW, limits);
    expect(d).toMatchObject({ state: 'pending', nextAttemptAt: NOW + 3_600_000 });
  });

  it('fails a line whose Retry-After is beyond the batch limit', () => {
    const d = decide(policy, get(), response(503, { 'retry-after': '3600' }), NOW, {
      ...limits,
      maxRetryAfterMs: 60_000,
    });
    expect(d).toMatchObject({
      state: 'failed',
      reason: 'retry-after-too-long',
      errorCode: 'ERR_DOGGED_RETRY_AFTER_TOO_LONG',
    });
  });

  it('reschedules a connection reset of a GET', () => {
    const d = decide(
      policy,
      get(),
      failure(new ConnectionResetError('reset', { method: 'GET', url })),
      NOW,
      limits,
    );
    expect(d).toMatchObject({ state: 'pending', errorCode: 'ERR_DOGGED_CONNECTION_RESET' });
    expect(d.history[0]).toMatchObject({ code: 'ERR_DOGGED_CONNECTION_RESET', phase: 'headers' });
  });

  it('does not retry a POST that may have reached the server', () => {
    const d = decide(
      policy,
      { method: 'POST', url, replaySafe: false, history: [], firstAttemptAt: NOW },
      failure(new ReadTimeoutError('slow', { method: 'POST', url })),
      NOW,
      limits,
    );
    expect(d).toMatchObject({ state: 'failed', reason: 'not-retriable' });
  });

  it('retries a POST that carries an idempotency key', () => {
    const d = decide(
      policy,
      { method: 'POST', url, replaySafe: true, history: [], firstAttemptAt: NOW },
      failure(new ReadTimeoutError('slow', { method: 'POST', url })),
      NOW,
      limits,
    );
    expect(d.state).toBe('pending');
  });

  it('never retries a TLS failure', () => {
    const d = decide(policy, get(), failure(new TLSError('bad cert')), NOW, limits);
    expect(d).toMatchObject({
      state: 'failed',
      reason: 'not-retriable',
      errorCode: 'ERR_DOGGED_TLS',
    });
  });

  it("rebuilds urllib3's per-kind counters from the journal", () => {
    const strict = new RetryPolicy({ total: 10, connect: 1, backoff: () => 0 });
    const history: HistoryEntry[] = [
      { at: NOW, code: 'ERR_DOGGED_CONNECT', phase: 'connect', delayMs: 0, source: 'backoff' },
    ];
    expect(replayPolicy(strict, get(history))?.remaining.connect).toBe(0);
    const d = decide(strict, get(history), failure(new ConnectError('refused')), NOW, limits);
    expect(d).toMatchObject({ state: 'failed', reason: 'retries-exhausted' });
  });
});

describe('a throttle: the host says "slow down"', () => {
  const throttle = (hostOpenAt: number) => ({ ...limits, hostOpenAt });

  it('a 429 does not spend the retry count: the line waits for its host instead', () => {
    const d = decide(policy, get(), response(429), NOW, throttle(NOW + 250));
    expect(d).toMatchObject({ state: 'pending', nextAttemptAt: NOW + 250, held: true });
    expect(d.history).toEqual([
      { at: NOW, status: 429, delayMs: 250, source: 'backoff', throttled: 1 },
    ]);
    expect(replayPolicy(policy, get(d.history as HistoryEntry[]))?.remaining.total).toBe(3);
  });

  it('waits for the Retry-After, or for the host when its pause ends later', () => {
    const asked = decide(
      policy,
      get(),
      response(429, { 'retry-after': '2' }),
      NOW,
      throttle(NOW + 1000),
    );
    expect(asked).toMatchObject({ nextAttemptAt: NOW + 2000, delaySource: 'retry-after' });
    const host = decide(
      policy,
      get(),
      response(503, { 'retry-after': '1' }),
      NOW,
      throttle(NOW + 5000),
    );
    expect(host).toMatchObject({ state: 'pending', nextAttemptAt: NOW + 5000, held: true });
  });

  it('consecutive throttles share one history entry that counts them', () => {
    let history: HistoryEntry[] = [{ at: NOW - 900, status: 503, delayMs: 100, source: 'backoff' }];
    for (let i = 1; i <= 1000; i++) {
      const d = decide(policy, get(history), response(429), NOW + i, throttle(NOW + i + 10));
      history = d.history as HistoryEntry[];
    }
    expect(history).toHaveLength(2);
    expect(history[1]).toMatchObject({ status: 429, throttled: 1000 });
    // The one real failure still counts: two of three retries are left.
    expect(replayPolicy(policy, get(history))?.remaining.total).toBe(2);
  });

  it('fails the line as rate-limited once the wait would end past giveUpAfter from its first attempt', () => {
    const firstAttemptAt = NOW - 21_000_000;
    const kept = decide(
      policy,
      get([], firstAttemptAt),
      response(429),
      NOW,
      throttle(NOW + 500_000),
    );
    expect(kept.state).toBe('pending');
    const d = decide(policy, get([], firstAttemptAt), response(429), NOW, throttle(NOW + 700_000));
    expect(d).toMatchObject({
      state: 'failed',
      reason: 'rate-limited',
      status: 429,
      errorCode: 'ERR_DOGGED_RATE_LIMITED',
    });
    expect(d.errorMessage).toMatch(/answered 429 for 350 min .*past --give-up-after 360 min/);
  });

  it('a Retry-After beyond the batch limit still fails the line at once', () => {
    const d = decide(policy, get(), response(429, { 'retry-after': '7200' }), NOW, {
      ...throttle(NOW + 60_000),
      maxRetryAfterMs: 3_600_000,
    });
    expect(d).toMatchObject({ state: 'failed', reason: 'retry-after-too-long' });
  });

  it('a policy that does not retry 429 (or retries nothing) ends the line as before', () => {
    const noRetries = new RetryPolicy({ total: 0 });
    expect(decide(noRetries, get(), response(429), NOW, throttle(NOW + 10))).toMatchObject({
      state: 'failed',
      reason: 'retries-exhausted',
    });
    const only503 = new RetryPolicy({ statusForcelist: [503] });
    expect(decide(only503, get(), response(429), NOW, throttle(NOW + 10))).toMatchObject({
      state: 'failed',
      reason: 'http-status',
    });
  });

  it('without the host signal a 429 is an ordinary retry (what a caller outside the runner gets)', () => {
    const d = decide(policy, get(), response(429), NOW, limits);
    expect(d).toMatchObject({ state: 'pending', held: false });
    expect(replayPolicy(policy, get(d.history as HistoryEntry[]))?.remaining.total).toBe(2);
  });
});

describe('a failure while the host is down', () => {
  const down = (hostDownUntil: number) => ({ ...limits, hostDownUntil });

  it('does not spend the retry count: the line waits for the next probe of its host', () => {
    const reset = failure(new ConnectionResetError('reset', { method: 'GET', url }));
    const d = decide(policy, get(), reset, NOW, down(NOW + 500));
    expect(d).toMatchObject({ state: 'pending', nextAttemptAt: NOW + 500, held: true });
    expect(d.history).toEqual([
      {
        at: NOW,
        code: 'ERR_DOGGED_CONNECTION_RESET',
        delayMs: 500,
        source: 'backoff',
        down: 1,
      },
    ]);
    const again = decide(
      policy,
      get(d.history as HistoryEntry[]),
      response(502),
      NOW + 600,
      down(NOW + 1600),
    );
    expect(again.history).toHaveLength(1);
    expect(again.history[0]).toMatchObject({ status: 502, down: 2 });
    expect(replayPolicy(policy, get(again.history as HistoryEntry[]))?.remaining.total).toBe(3);
  });

  it('a failure the policy would not retry ends the line as before', () => {
    const d = decide(
      policy,
      { method: 'POST', url, replaySafe: false, history: [], firstAttemptAt: NOW },
      failure(new ReadTimeoutError('slow', { method: 'POST', url })),
      NOW,
      down(NOW + 500),
    );
    expect(d).toMatchObject({ state: 'failed', reason: 'not-retriable' });
  });
});

describe('what an attempt tells about its host', () => {
  it('a 429 or a 503 asking to wait is a throttle, its Retry-After capped', () => {
    expect(hostSignalOf(response(429), NOW, 60_000)).toEqual({
      kind: 'throttle',
      retryAfterMs: undefined,
    });
    expect(hostSignalOf(response(429, { 'retry-after': '7200' }), NOW, 60_000)).toEqual({
      kind: 'throttle',
      retryAfterMs: 60_000,
    });
    expect(hostSignalOf(response(503, { 'retry-after': '2' }), NOW, 60_000)).toEqual({
      kind: 'throttle',
      retryAfterMs: 2000,
    });
  });

  it('a 502, 503 (without a wait) or 504, and a retriable connection error, may be the host failing', () => {
    for (const status of [502, 503, 504])
      expect(hostSignalOf(response(status), NOW, 60_000)).toEqual({ kind: 'failure' });
    expect(hostSignalOf(response(503, { 'retry-after': '0' }), NOW, 60_000)).toEqual({
      kind: 'failure',
    });
    const reset = failure(new ConnectionResetError('reset', { method: 'GET', url }));
    expect(hostSignalOf(reset, NOW, 60_000)).toEqual({ kind: 'failure' });
  });

  it('any other answer is an answer; an error of the line itself says nothing', () => {
    for (const status of [200, 404, 500])
      expect(hostSignalOf(response(status), NOW, 60_000)).toEqual({ kind: 'answer' });
    expect(hostSignalOf(failure(new TLSError('bad cert')), NOW, 60_000)).toEqual({ kind: 'none' });
  });
});
