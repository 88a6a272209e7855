import { describe, expect, it } from 'vitest';
import { type AttemptResult, decide, replayPolicy, throttleOf } from '../../src/batch/decide.js';
import type { HistoryEntry } from '../../src/batch/journal-schema.js';
import { BodyTooLargeError } from '../../src/http/errors.js';
import { ConnectionResetError, RetryPolicy, wait } from '../../src/index.js';
import { failure, get, NOW, response, url } from './decide-support.js';

/**
 * Every field of the decisions the journal records (not only the ones a reader looks at first),
 * the journal's history replayed into the policy's counters, and the paths taken once the
 * recorded retries have used up the policy.
 */

const HOUR = 3_600_000;
const limits = { maxRetryAfterMs: 2 * HOUR, giveUpAfterMs: 6 * HOUR };
const policy = new RetryPolicy({ total: 3, backoff: wait.exponential({ multiplier: 100 }) });

const failed503 = (n: number): HistoryEntry[] =>
  Array.from({ length: n }, (_, i) => ({
    at: NOW - 1000 + i,
    status: 503,
    delayMs: 1,
    source: 'backoff' as const,
  }));

describe('the fields of a decision', () => {
  it('a success', () => {
    expect(decide(policy, get(), response(200), NOW, limits)).toStrictEqual({
      state: 'done',
      reason: 'ok',
      nextAttemptAt: 0,
      history: [],
      status: 200,
      errorCode: null,
      errorMessage: null,
      delayMs: undefined,
      delaySource: undefined,
      held: false,
    });
  });

  it('a retry after a status', () => {
    expect(decide(policy, get(), response(503), NOW, limits)).toStrictEqual({
      state: 'pending',
      reason: null,
      nextAttemptAt: NOW + 100,
      history: [{ at: NOW, status: 503, delayMs: 100, source: 'backoff' }],
      status: 503,
      errorCode: null,
      errorMessage: null,
      delayMs: 100,
      delaySource: 'backoff',
      held: false,
    });
  });

  it('a retry after a connection error', () => {
    const error = new ConnectionResetError('reset', { method: 'GET', url });
    const d = decide(policy, get(), failure(error), NOW, limits);
    expect(d).toStrictEqual({
      state: 'pending',
      reason: null,
      nextAttemptAt: NOW + 100,
      history: [
        {
          at: NOW,
          code: 'ERR_DOGGED_CONNECTION_RESET',
          phase: 'headers',
          delayMs: 100,
          source: 'backoff',
        },
      ],
      status: null,
      errorCode: 'ERR_DOGGED_CONNECTION_RESET',
      errorMessage: expect.stringContaining('reset'),
      delayMs: 100,
      delaySource: 'backoff',
      held: false,
    });
  });

  it('an error that is not dogged is retried under its own code, with no phase', () => {
    const error = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    const d = decide(policy, get(), failure(error), NOW, limits);
    expect(d).toMatchObject({ state: 'pending', errorCode: 'ECONNRESET' });
    expect(d.history).toStrictEqual([
      { at: NOW, code: 'ECONNRESET', phase: 'none', delayMs: 100, source: 'backoff' },
    ]);
  });

  it('waits the whole millisecond a fractional delay starts', () => {
    const fractional = new RetryPolicy({ total: 3, backoff: () => 10.25 });
    expect(decide(fractional, get(), response(503), NOW, limits)).toMatchObject({
      nextAttemptAt: NOW + 11,
      delayMs: 10.25,
    });
  });

  it('a host throttle: held, no error', () => {
    const d = decide(policy, get(), response(429), NOW, { ...limits, hostOpenAt: NOW + 250 });
    expect(d).toStrictEqual({
      state: 'pending',
      reason: null,
      nextAttemptAt: NOW + 250,
      history: [{ at: NOW, status: 429, delayMs: 250, source: 'backoff', throttled: 1 }],
      status: 429,
      errorCode: null,
      errorMessage: null,
      delayMs: 250,
      delaySource: 'backoff',
      held: true,
    });
  });

  it('a failure while the host is down: held, with the error', () => {
    const error = new ConnectionResetError('reset', { method: 'GET', url });
    const d = decide(policy, get(), failure(error), NOW, { ...limits, hostDownUntil: NOW + 500 });
    expect(d).toStrictEqual({
      state: 'pending',
      reason: null,
      nextAttemptAt: NOW + 500,
      history: [
        { at: NOW, code: 'ERR_DOGGED_CONNECTION_RESET', delayMs: 500, source: 'backoff', down: 1 },
      ],
      status: null,
      errorCode: 'ERR_DOGGED_CONNECTION_RESET',
      errorMessage: expect.stringContaining('reset'),
      delayMs: 500,
      delaySource: 'backoff',
      held: true,
    });
    const gateway = decide(policy, get(), response(502), NOW, {
      ...limits,
      hostDownUntil: NOW + 500,
    });
    expect(gateway.history).toStrictEqual([
      { at: NOW, status: 502, delayMs: 500, source: 'backoff', down: 1 },
    ]);
  });

  it('a body too large fails at once, with the status it came with', () => {
    const error = new BodyTooLargeError('body over 10 bytes', { limit: 10, received: 11 });
    const result: AttemptResult = {
      kind: 'error',
      error,
      status: 200,
      ttfbMs: 1,
      durationMs: 2,
    };
    expect(decide(policy, get(failed503(1)), result, NOW, limits)).toStrictEqual({
      state: 'failed',
      reason: 'body-too-large',
      nextAttemptAt: 0,
      history: failed503(1),
      status: 200,
      errorCode: 'ERR_DOGGED_BODY_TOO_LARGE',
      errorMessage: 'body over 10 bytes',
      delayMs: undefined,
      delaySource: undefined,
      held: false,
    });
  });
});

describe('a Retry-After longer than the policy sleeps on', () => {
  it('is scheduled when within the batch limit (exactly at it too)', () => {
    const d = decide(policy, get(), response(503, { 'retry-after': '7200' }), NOW, limits);
    expect(d).toStrictEqual({
      state: 'pending',
      reason: null,
      nextAttemptAt: NOW + 2 * HOUR,
      history: [{ at: NOW, status: 503, delayMs: 2 * HOUR, source: 'retry-after' }],
      status: 503,
      errorCode: null,
      errorMessage: null,
      delayMs: 2 * HOUR,
      delaySource: 'retry-after',
      held: false,
    });
  });

  it('fails the line past the batch limit, naming the batch limit', () => {
    const d = decide(policy, get(), response(503, { 'retry-after': '7201' }), NOW, limits);
    expect(d).toMatchObject({
      state: 'failed',
      reason: 'retry-after-too-long',
      status: 503,
      errorCode: 'ERR_DOGGED_RETRY_AFTER_TOO_LONG',
    });
    // The batch's limit, not the policy's (2 min by default), which the batch does not sleep on.
    expect(d.errorMessage).toBe(
      'Retry-After of 120 min 1 s exceeds the batch limit (--max-retry-after) of 120 min; raise it or run the batch again later',
    );
  });

  it('an HTTP date is read against the decision time', () => {
    const date = new Date(NOW + 30_000).toUTCString();
    expect(
      decide(policy, get(), response(429, { 'retry-after': date }), NOW, limits),
    ).toMatchObject({ state: 'pending', nextAttemptAt: NOW + 30_000, delaySource: 'retry-after' });
  });

  it('a backoff strategy that throws is not mistaken for a long Retry-After', () => {
    const broken = new RetryPolicy({
      total: 3,
      backoff: () => {
        throw new Error('broken backoff');
      },
    });
    expect(() => decide(broken, get(), response(503), NOW, limits)).toThrow('broken backoff');
  });
});

describe('the headers of an attempt', () => {
  it('reads Retry-After from the raw headers when the attempt kept them', () => {
    const throttle = { ...limits, hostOpenAt: NOW };
    const raw = (value: string | string[] | undefined): AttemptResult => ({
      kind: 'response',
      status: 429,
      headers: new Headers(),
      rawHeaders: { 'retry-after': value },
      ttfbMs: 1,
      durationMs: 2,
    });
    expect(decide(policy, get(), raw('7'), NOW, throttle)).toMatchObject({
      nextAttemptAt: NOW + 7000,
      delaySource: 'retry-after',
    });
    expect(decide(policy, get(), raw(['5', '9']), NOW, throttle)).toMatchObject({
      nextAttemptAt: NOW + 5000,
    });
    expect(decide(policy, get(), raw(undefined), NOW, throttle)).toMatchObject({
      nextAttemptAt: NOW,
      delaySource: 'backoff',
    });
  });

  it('a 413 is retried when it asks to wait, and fails when it does not', () => {
    expect(decide(policy, get(), response(413, { 'retry-after': '2' }), NOW, limits)).toMatchObject(
      { state: 'pending', nextAttemptAt: NOW + 2000 },
    );
    expect(decide(policy, get(), response(413), NOW, limits)).toMatchObject({
      state: 'failed',
      reason: 'http-status',
    });
  });

  it('an error that came after a 429 or 503 head is not a throttle', () => {
    for (const status of [429, 503]) {
      const cut: AttemptResult = {
        kind: 'error',
        error: new Error('cut'),
        status,
        ttfbMs: 1,
        durationMs: 2,
      };
      expect(throttleOf(cut, NOW)).toBeUndefined();
    }
  });
});

describe('the journal history replayed into the policy', () => {
  it("spends each kind's counter: connect, read (request, headers, body), status, other", () => {
    const counted = new RetryPolicy({
      total: 20,
      connect: 5,
      read: 5,
      status: 5,
      other: 5,
      backoff: () => 0,
    });
    const entry = (fields: Partial<HistoryEntry>): HistoryEntry => ({
      at: NOW,
      delayMs: 0,
      source: 'backoff',
      ...fields,
    });
    const replayed = replayPolicy(
      counted,
      get([
        entry({ code: 'ERR_DOGGED_CONNECT', phase: 'connect' }),
        entry({ code: 'ECONNRESET', phase: 'request' }),
        entry({ code: 'ECONNRESET', phase: 'headers' }),
        entry({ code: 'ECONNRESET', phase: 'body' }),
        entry({ status: 503 }),
        entry({ status: 500 }),
        entry({ code: 'X', phase: 'weird' }),
        entry({}),
      ]),
    );
    expect(replayed?.remaining).toMatchObject({
      total: 12,
      connect: 4,
      read: 2,
      status: 3,
      other: 3,
    });
  });

  it('keeps what each attempt got in the policy history', () => {
    const replayed = replayPolicy(
      policy,
      get([
        { at: NOW, status: 503, delayMs: 1, source: 'backoff' },
        { at: NOW, code: 'ECONNRESET', phase: 'body', delayMs: 1, source: 'backoff' },
        { at: NOW, delayMs: 1, source: 'backoff' },
      ]),
    );
    const history = replayed?.history ?? [];
    expect(history).toHaveLength(3);
    expect(history[0]).toMatchObject({ method: 'GET', url, status: 503, error: undefined });
    expect(history[1]?.error).toMatchObject({
      name: 'ReplayedFailure',
      code: 'ECONNRESET',
      message: 'replayed ECONNRESET',
      phase: 'body',
      retriable: true,
    });
    expect(history[2]?.error).toMatchObject({ code: 'ERR_DOGGED', phase: 'none' });
  });

  it('throttles and failures while the host was down spend no retry', () => {
    const history: HistoryEntry[] = [
      { at: NOW, status: 429, delayMs: 1, source: 'backoff', throttled: 4 },
      { at: NOW, code: 'ECONNREFUSED', delayMs: 1, source: 'backoff', down: 7 },
      { at: NOW, status: 503, delayMs: 1, source: 'backoff' },
    ];
    expect(replayPolicy(policy, get(history))?.remaining.total).toBe(2);
  });

  it('is undefined when the history already used up the policy', () => {
    expect(replayPolicy(policy, get(failed503(3)))).toBeDefined();
    expect(replayPolicy(policy, get(failed503(4)))).toBeUndefined();
  });

  it('the status counter alone can run out', () => {
    const strict = new RetryPolicy({ total: 10, status: 1, backoff: () => 0 });
    expect(decide(strict, get(failed503(1)), response(503), NOW, limits)).toMatchObject({
      state: 'failed',
      reason: 'retries-exhausted',
    });
    const none = new RetryPolicy({ total: 10, status: 0, backoff: () => 0 });
    expect(decide(none, get(), response(503), NOW, limits)).toMatchObject({
      state: 'failed',
      reason: 'retries-exhausted',
      status: 503,
    });
    // A throttle waits for its host only when the policy would retry it at all.
    expect(
      decide(none, get(), response(429), NOW, { ...limits, hostOpenAt: NOW + 10 }),
    ).toMatchObject({ state: 'failed', reason: 'retries-exhausted', held: false });
  });
});

describe('once the recorded retries have used up the policy (made stricter since)', () => {
  const used = get(failed503(4));

  it('a status the policy retries fails as retries exhausted; others end as they are', () => {
    expect(decide(policy, used, response(503), NOW, limits)).toStrictEqual({
      state: 'failed',
      reason: 'retries-exhausted',
      nextAttemptAt: 0,
      history: failed503(4),
      status: 503,
      errorCode: null,
      errorMessage: null,
      delayMs: undefined,
      delaySource: undefined,
      held: false,
    });
    expect(decide(policy, used, response(200), NOW, limits)).toMatchObject({
      state: 'done',
      reason: 'ok',
    });
    expect(decide(policy, used, response(404), NOW, limits)).toMatchObject({
      state: 'failed',
      reason: 'http-status',
    });
  });

  it('a status under 400 ends done even when the policy would retry it', () => {
    const odd = new RetryPolicy({ total: 3, statusForcelist: [399, 400], backoff: () => 0 });
    const history = [399, 399, 399, 399].map((status) => ({
      at: NOW,
      status,
      delayMs: 0,
      source: 'backoff' as const,
    }));
    expect(decide(odd, get(history), response(399), NOW, limits)).toMatchObject({
      state: 'done',
      reason: 'ok',
    });
    expect(decide(odd, get(history), response(400), NOW, limits)).toMatchObject({
      state: 'failed',
      reason: 'retries-exhausted',
    });
  });

  it('an error fails as retries exhausted, with its code and message', () => {
    const error = new ConnectionResetError('reset by peer', { method: 'GET', url });
    const d = decide(policy, used, failure(error), NOW, limits);
    expect(d).toMatchObject({
      state: 'failed',
      reason: 'retries-exhausted',
      status: null,
      errorCode: 'ERR_DOGGED_CONNECTION_RESET',
    });
    expect(d.errorMessage).toContain('reset by peer');
  });
});

describe('edges of the held lines', () => {
  it('a line down is held until exactly --give-up-after from its first attempt', () => {
    const error = new ConnectionResetError('reset', { method: 'GET', url });
    const first = NOW - 6 * HOUR + 500;
    const atLimit = decide(policy, get([], first), failure(error), NOW, {
      ...limits,
      hostDownUntil: NOW + 500,
    });
    expect(atLimit).toMatchObject({ state: 'pending', held: true, nextAttemptAt: NOW + 500 });
    const past = decide(policy, get([], first), failure(error), NOW, {
      ...limits,
      hostDownUntil: NOW + 501,
    });
    expect(past).toStrictEqual({
      state: 'failed',
      reason: 'retries-exhausted',
      nextAttemptAt: 0,
      history: [],
      status: null,
      errorCode: 'ERR_DOGGED_CONNECTION_RESET',
      errorMessage: expect.stringContaining('reset'),
      delayMs: undefined,
      delaySource: undefined,
      held: false,
    });
  });

  it('throttles in a row fold into the last entry, whatever came before', () => {
    const throttle = { ...limits, hostOpenAt: NOW + 10 };
    let history = failed503(2);
    for (let i = 0; i < 3; i++)
      history = decide(policy, get(history), response(429), NOW, throttle)
        .history as HistoryEntry[];
    expect(history).toStrictEqual([
      ...failed503(2),
      { at: NOW, status: 429, delayMs: 10, source: 'backoff', throttled: 3 },
    ]);
  });
});
