import { describe, expect, it } from 'vitest';
import {
  ConnectError,
  DoggedError,
  IncompleteBodyError,
  MaxRetryError,
  ReadTimeoutError,
  RetryAfterTooLongError,
  RetryPolicy,
} from '../../src/http/index.js';
import type { AttemptState } from '../../src/retry/attempt-state.js';
import { wait } from '../../src/retry/index.js';

const URL_ = 'http://127.0.0.1:8080/x';
const res = (status: number, headers: Record<string, string> = {}, statusText?: string) => ({
  status,
  url: URL_,
  headers: new Headers(headers),
  ...(statusText !== undefined && { statusText }),
});
const net = (code: string) => Object.assign(new Error(`boom ${code}`), { code });

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('did not throw');
}

describe('RetryPolicy: option checks, with their exact messages', () => {
  it.each([
    [
      { total: Number.NaN },
      'RetryPolicy: total must be a non-negative integer (or Infinity), got NaN',
    ],
    [{ total: -1 }, 'RetryPolicy: total must be a non-negative integer (or Infinity), got -1'],
    [{ total: '3' }, 'RetryPolicy: total must be a non-negative integer (or Infinity), got "3"'],
    [{ total: null }, 'RetryPolicy: total must be a non-negative integer (or Infinity), got null'],
    [
      { total: Number.NEGATIVE_INFINITY },
      'RetryPolicy: total must be a non-negative integer (or Infinity), got -Infinity',
    ],
    [
      { connect: 0.5 },
      'RetryPolicy: connect must be a non-negative integer (or Infinity), got 0.5',
    ],
    [{ read: -2 }, 'RetryPolicy: read must be a non-negative integer (or Infinity), got -2'],
    [{ status: 'x' }, 'RetryPolicy: status must be a non-negative integer (or Infinity), got "x"'],
    [
      { redirect: 1.1 },
      'RetryPolicy: redirect must be a non-negative integer (or Infinity), got 1.1',
    ],
    [{ other: -1 }, 'RetryPolicy: other must be a non-negative integer (or Infinity), got -1'],
    [
      { allowedMethods: 'GET' },
      'RetryPolicy: allowedMethods must be an array of method names, got "GET"',
    ],
    [
      { allowedMethods: ['GET', 'GE T'] },
      'RetryPolicy: allowedMethods must be an array of method names, got an array of length 2',
    ],
    [
      { allowedMethods: [''] },
      'RetryPolicy: allowedMethods must be an array of method names, got an array of length 1',
    ],
    [
      { allowedMethods: ['GET1'] },
      'RetryPolicy: allowedMethods must be an array of method names, got an array of length 1',
    ],
    [
      { allowedMethods: [7] },
      'RetryPolicy: allowedMethods must be an array of method names, got an array of length 1',
    ],
    [
      { statusForcelist: [99] },
      'RetryPolicy: statusForcelist must be an array of HTTP status codes, got an array of length 1',
    ],
    [
      { statusForcelist: [1000] },
      'RetryPolicy: statusForcelist must be an array of HTTP status codes, got an array of length 1',
    ],
    [
      { statusForcelist: [503.5] },
      'RetryPolicy: statusForcelist must be an array of HTTP status codes, got an array of length 1',
    ],
    [
      { retryAfterStatusCodes: [429, 0] },
      'RetryPolicy: retryAfterStatusCodes must be an array of HTTP status codes, got an array of length 2',
    ],
    [
      { retryAfterStatusCodes: 429 },
      'RetryPolicy: retryAfterStatusCodes must be an array of HTTP status codes, got 429',
    ],
    [
      { removeHeadersOnRedirect: ['cookie', 1] },
      'RetryPolicy: removeHeadersOnRedirect must be an array of header names, got an array of length 2',
    ],
    [
      { backoffMax: 10 },
      'RetryPolicy: backoffMax and backoffJitter apply to backoffFactor; give backoffFactor too (or cap your backoff strategy)',
    ],
    [
      { backoffFactor: -1 },
      'RetryPolicy: backoffFactor must be a non-negative number of milliseconds, got -1',
    ],
    [
      { backoffFactor: Number.NaN },
      'RetryPolicy: backoffFactor must be a non-negative number of milliseconds, got NaN',
    ],
    [
      { backoffFactor: Number.POSITIVE_INFINITY },
      'RetryPolicy: backoffFactor must be a non-negative number of milliseconds, got Infinity',
    ],
    [
      { backoffFactor: '1' },
      'RetryPolicy: backoffFactor must be a non-negative number of milliseconds, got "1"',
    ],
    [
      { backoffFactor: 1, backoffMax: -1 },
      'RetryPolicy: backoffMax must be a non-negative number of milliseconds, got -1',
    ],
    [
      { backoffFactor: 1, backoffJitter: Number.POSITIVE_INFINITY },
      'RetryPolicy: backoffJitter must be a non-negative number of milliseconds, got Infinity',
    ],
    [
      { maxRetryAfter: Number.NaN },
      'RetryPolicy: maxRetryAfter must be a non-negative number of milliseconds, got NaN',
    ],
    [
      { respectRetryAfterHeader: 'yes' },
      'RetryPolicy: respectRetryAfterHeader must be a boolean, got "yes"',
    ],
    [{ raiseOnStatus: 0 }, 'RetryPolicy: raiseOnStatus must be a boolean, got 0'],
    [{ raiseOnRedirect: null }, 'RetryPolicy: raiseOnRedirect must be a boolean, got null'],
    [{ random: 0.5 }, 'RetryPolicy: random must be a function, got 0.5'],
    [{ retries: 3 }, 'RetryPolicy: unknown option "retries"; use total'],
  ])('%o is refused', (options, message) => {
    const error = thrownBy(() => new RetryPolicy(options as never));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toBe(message);
  });

  it('accepts the boundaries', () => {
    expect(new RetryPolicy({ total: Number.POSITIVE_INFINITY }).remaining.total).toBe(
      Number.POSITIVE_INFINITY,
    );
    expect(new RetryPolicy({ total: 0, connect: 0, read: 0, status: 0 }).remaining).toEqual({
      total: 0,
      connect: 0,
      read: 0,
      status: 0,
      redirect: undefined,
      other: undefined,
    });
    expect(() => new RetryPolicy({ statusForcelist: [100, 999] })).not.toThrow();
    expect(() => new RetryPolicy({ allowedMethods: ['get', 'PROPFIND'] })).not.toThrow();
    expect(() => new RetryPolicy({ allowedMethods: [] })).not.toThrow();
    expect(
      () =>
        new RetryPolicy({
          backoffFactor: 0,
          backoffMax: Number.POSITIVE_INFINITY,
          backoffJitter: 0,
        }),
    ).not.toThrow();
    expect(new RetryPolicy({ maxRetryAfter: Number.POSITIVE_INFINITY }).maxRetryAfter).toBe(
      Number.POSITIVE_INFINITY,
    );
    expect(new RetryPolicy({ maxRetryAfter: 0 }).maxRetryAfter).toBe(0);
  });

  it('refuses a backoff that is not a wait strategy', () => {
    expect(() => new RetryPolicy({ backoff: 5 as never })).toThrow(/RetryPolicy: backoff/);
  });

  it('the options it keeps are a frozen copy', () => {
    const options = { total: 2, statusForcelist: [503] };
    const p = new RetryPolicy(options);
    expect(p.options).not.toBe(options);
    expect(p.options).toEqual(options);
    expect(Object.isFrozen(p.options)).toBe(true);
    expect(Object.isFrozen(p.remaining)).toBe(true);
    expect(p.history).toEqual([]);
    expect(Object.isFrozen(p.history)).toBe(true);
  });
});

describe('RetryPolicy: defaults and from()', () => {
  it('from() takes a policy, options, a number, false or nothing', () => {
    const p = new RetryPolicy({ total: 1 });
    expect(RetryPolicy.from(p)).toBe(p);
    expect(RetryPolicy.from(undefined).remaining.total).toBe(3);
    expect(RetryPolicy.from(7).remaining.total).toBe(7);
    expect(RetryPolicy.from(0).remaining.total).toBe(0);
    expect(RetryPolicy.from(0).raiseOnStatus).toBe(true);
    const none = RetryPolicy.from(false);
    expect(none.remaining.total).toBe(0);
    expect(none.raiseOnStatus).toBe(false);
    expect(none.options).toEqual({ total: 0, raiseOnStatus: false });
    expect(RetryPolicy.from({ read: 2 }).remaining.read).toBe(2);
  });

  it('the boolean options default to true and can be turned off', () => {
    const p = new RetryPolicy();
    expect([p.raiseOnStatus, p.raiseOnRedirect, p.respectRetryAfterHeader]).toEqual([
      true,
      true,
      true,
    ]);
    const off = new RetryPolicy({
      raiseOnStatus: false,
      raiseOnRedirect: false,
      respectRetryAfterHeader: false,
      maxRetryAfter: 5000,
      removeHeadersOnRedirect: ['x-key'],
    });
    expect([off.raiseOnStatus, off.raiseOnRedirect, off.respectRetryAfterHeader]).toEqual([
      false,
      false,
      false,
    ]);
    expect(off.maxRetryAfter).toBe(5000);
    expect(off.removeHeadersOnRedirect).toEqual(['x-key']);
  });

  it('the default allowed methods; a custom list is case-insensitive', () => {
    const p = new RetryPolicy();
    for (const m of ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE', 'get', 'Delete'])
      expect(p.isMethodRetryable(m), m).toBe(true);
    for (const m of ['POST', 'PATCH', 'CONNECT']) expect(p.isMethodRetryable(m), m).toBe(false);
    expect(p.isMethodRetryable('POST', true)).toBe(true);
    const custom = new RetryPolicy({ allowedMethods: ['post'] });
    expect(custom.isMethodRetryable('POST')).toBe(true);
    expect(custom.isMethodRetryable('post')).toBe(true);
    expect(custom.isMethodRetryable('GET')).toBe(false);
  });

  it('the default forcelist and Retry-After statuses', () => {
    const p = new RetryPolicy();
    for (const s of [408, 429, 500, 502, 503, 504])
      expect(p.isRetry('GET', s), String(s)).toBe(true);
    expect(p.isRetry('GET', 413)).toBe(false);
    expect(p.isRetry('GET', 413, true)).toBe(true);
    expect(p.isRetry('GET', 418, true)).toBe(false);
    // Retry-After makes the status retriable, not the method.
    expect(p.isRetry('POST', 413, true)).toBe(false);
    expect(p.isRetry('POST', 413, true, true)).toBe(true);
    const custom = new RetryPolicy({ statusForcelist: [418], retryAfterStatusCodes: [409] });
    expect(custom.isRetry('GET', 418)).toBe(true);
    expect(custom.isRetry('GET', 503)).toBe(false);
    expect(custom.isRetry('GET', 503, true)).toBe(false);
    expect(custom.isRetry('GET', 409, true)).toBe(true);
    // With total 0, a Retry-After does not make the status a retry; the forcelist still does.
    const none = new RetryPolicy({ total: 0 });
    expect(none.isRetry('GET', 413, true)).toBe(false);
    expect(none.isRetry('GET', 503)).toBe(true);
  });
});

describe('RetryPolicy.with()', () => {
  it('replaces options and starts afresh', () => {
    const p = new RetryPolicy({ total: 5, read: 1 }).increment({
      method: 'GET',
      url: URL_,
      response: res(503),
    });
    const q = p.with({ read: 3 });
    expect(q.remaining.total).toBe(5);
    expect(q.remaining.read).toBe(3);
    expect(q.history).toEqual([]);
  });

  it('a backoff drops backoffFactor, backoffMax and backoffJitter', () => {
    const p = new RetryPolicy({ backoffFactor: 100, backoffMax: 50, backoffJitter: 10 }).with({
      backoff: wait.fixed(7),
    });
    expect(p.options).toEqual({ backoff: p.options.backoff });
  });

  it('a backoffFactor drops the backoff, and keeps the rest', () => {
    const p = new RetryPolicy({ total: 4, backoff: wait.fixed(7) }).with({ backoffFactor: 100 });
    expect(p.options).toEqual({ total: 4, backoffFactor: 100 });
    const q = p.increment({ method: 'GET', url: URL_, response: res(503) });
    expect(q.increment({ method: 'GET', url: URL_, response: res(503) }).getBackoffTime()).toBe(
      200,
    );
  });

  it('other overrides keep the backoff style', () => {
    expect(
      new RetryPolicy({ backoffFactor: 100, backoffMax: 50 }).with({ total: 1 }).options,
    ).toEqual({ backoffFactor: 100, backoffMax: 50, total: 1 });
    const fixed = wait.fixed(7);
    expect(new RetryPolicy({ backoff: fixed }).with({ total: 1 }).options).toEqual({
      backoff: fixed,
      total: 1,
    });
  });

  it('refuses overrides that are not an object', () => {
    expect(() => new RetryPolicy().with(null as never)).toThrow(
      /RetryPolicy\.with\(overrides\) must be/,
    );
  });
});

describe('RetryPolicy backoff', () => {
  it('is 0 before any failure and after a redirect', () => {
    expect(new RetryPolicy({ backoff: wait.fixed(9) }).getBackoffTime()).toBe(0);
    expect(new RetryPolicy({ backoff: wait.fixed(9) }).consecutiveErrors).toBe(0);
  });

  it('backoffFactor is capped at 120 s by default, at backoffMax when given', () => {
    let p = new RetryPolicy({ total: 20, backoffFactor: 1000 });
    for (let i = 0; i < 9; i++) p = p.increment({ method: 'GET', url: URL_, response: res(503) });
    // 1000 · 2^8 = 256 s, capped.
    expect(p.getBackoffTime()).toBe(120_000);
    let q = new RetryPolicy({ total: 20, backoffFactor: 1000, backoffMax: 3000 });
    for (let i = 0; i < 4; i++) q = q.increment({ method: 'GET', url: URL_, response: res(503) });
    expect(q.getBackoffTime()).toBe(3000);
  });

  it('backoffFactor without jitter draws no random number', () => {
    let p = new RetryPolicy({
      total: 5,
      backoffFactor: 100,
      random: () => {
        throw new Error('drawn');
      },
    });
    p = p.increment({ method: 'GET', url: URL_, response: res(503) });
    p = p.increment({ method: 'GET', url: URL_, response: res(503) });
    expect(p.getBackoffTime()).toBe(200);
  });

  it('the strategy sees the attempt, the idle time, the last delay, the outcome and the random source', () => {
    const seen: AttemptState<unknown>[] = [];
    const random = () => 0.25;
    let p = new RetryPolicy({
      total: 10,
      backoff: (ctx: AttemptState<unknown>) => {
        seen.push(ctx);
        return 42;
      },
      random,
    });
    p = p.increment({ method: 'GET', url: URL_, error: net('ECONNRESET'), sleptMs: 0 });
    expect(p.getBackoffTime()).toBe(42);
    p = p.increment({ method: 'GET', url: URL_, response: res(503), sleptMs: 100 });
    expect(p.getBackoffTime()).toBe(42);
    p = p.increment({ method: 'GET', url: URL_, response: res(503), sleptMs: -5 });
    p.getBackoffTime();
    expect(seen).toHaveLength(3);
    const [first, second, third] = seen as [
      AttemptState<unknown>,
      AttemptState<unknown>,
      AttemptState<unknown>,
    ];
    expect(first.attempt).toBe(1);
    expect(first.elapsedMs).toBe(0);
    expect(first.idleMs).toBe(0);
    expect(first.lastDelayMs).toBe(0);
    expect(first.upcomingDelayMs).toBeUndefined();
    expect(first.signal).toBeUndefined();
    expect(first.name).toBeUndefined();
    expect(first.random).toBe(random);
    expect(first.outcome?.ok).toBe(false);
    expect((first.outcome as { error: unknown }).error).toBeInstanceOf(ConnectError);
    expect(Object.isFrozen(first)).toBe(true);
    expect(second.attempt).toBe(2);
    expect(second.lastDelayMs).toBe(100);
    expect(second.idleMs).toBe(100);
    expect(second.elapsedMs).toBe(100);
    expect(second.outcome).toBeUndefined();
    // A negative sleep counts as none.
    expect(third.attempt).toBe(3);
    expect(third.lastDelayMs).toBe(0);
    expect(third.idleMs).toBe(100);
  });
});

describe('RetryPolicy Retry-After', () => {
  it('getRetryAfter reads the header, relative to now', () => {
    const p = new RetryPolicy();
    expect(p.getRetryAfter(undefined)).toBeUndefined();
    expect(p.getRetryAfter(res(503))).toBeUndefined();
    expect(p.getRetryAfter(res(503, { 'retry-after': '2' }))).toBe(2000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(p.getRetryAfter(res(503, { 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }), now)).toBe(
      5000,
    );
  });

  it('getRetryDelay uses the time given in the context', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const p = new RetryPolicy({ backoff: wait.fixed(1) });
    expect(
      p.getRetryDelay(res(503, { 'retry-after': 'Thu, 01 Jan 2026 00:00:07 GMT' }), { now }),
    ).toEqual({ delayMs: 7000, source: 'retry-after' });
    expect(p.getRetryDelay()).toEqual({ delayMs: 0, source: 'backoff' });
  });

  it('a Retry-After of exactly maxRetryAfter is obeyed; one above it is refused', () => {
    const p = new RetryPolicy({ maxRetryAfter: 5000 });
    expect(p.getRetryDelay(res(503, { 'retry-after': '5' }))).toEqual({
      delayMs: 5000,
      source: 'retry-after',
    });
    const response = res(503, { 'retry-after': '6' });
    const error = thrownBy(() => p.getRetryDelay(response)) as RetryAfterTooLongError;
    expect(error).toBeInstanceOf(RetryAfterTooLongError);
    expect(error.retryAfterMs).toBe(6000);
    expect(error.maxRetryAfterMs).toBe(5000);
    expect(error.response).toBe(response);
    expect(error.method).toBeUndefined();
    expect(error.url).toBeUndefined();
    expect(error.attempts).toBe(1);
    expect(error.message).toBe(
      'Retry-After of 6 s exceeds maxRetryAfter 5 s; raise maxRetryAfter or schedule the request later',
    );
  });

  it('the refusal counts the attempts made so far', () => {
    const p = new RetryPolicy({ maxRetryAfter: 1000 })
      .increment({ method: 'GET', url: URL_, response: res(503) })
      .increment({ method: 'GET', url: URL_, response: res(503) });
    const error = thrownBy(() =>
      p.getRetryDelay(res(503, { 'retry-after': '2' }), { method: 'GET', url: URL_ }),
    ) as RetryAfterTooLongError;
    expect(error.attempts).toBe(3);
    expect(error.method).toBe('GET');
    expect(error.url).toBe(URL_);
  });
});

describe('RetryPolicy.increment', () => {
  it('only a 3xx with a Location is a redirect: it spends the redirect counter, not total', () => {
    const p = new RetryPolicy({ total: 5, redirect: 5, status: 5 });
    const redirected = p.increment({
      method: 'GET',
      url: URL_,
      response: res(300, { location: '/a' }),
    });
    expect(redirected.remaining).toMatchObject({ total: 5, redirect: 4, status: 5 });
    expect(redirected.history[0]).toEqual({
      method: 'GET',
      url: URL_,
      error: undefined,
      status: 300,
      redirectLocation: '/a',
    });
    expect(
      p.increment({ method: 'GET', url: URL_, response: res(399, { location: '/a' }) }).remaining,
    ).toMatchObject({ total: 5, redirect: 4 });
    for (const response of [
      res(400, { location: '/a' }),
      res(299, { location: '/a' }),
      res(302),
      res(302, { location: '' }),
    ]) {
      const next = p.increment({ method: 'GET', url: URL_, response });
      expect(next.remaining, String(response.status)).toMatchObject({
        total: 4,
        redirect: 5,
        status: 4,
      });
      expect(next.history[0]?.redirectLocation).toBeUndefined();
      expect(next.history[0]?.status).toBe(response.status);
    }
  });

  it('an error with a redirect response is an error, not a redirect', () => {
    const p = new RetryPolicy({ total: 5, redirect: 5 });
    const next = p.increment({
      method: 'GET',
      url: URL_,
      response: res(302, { location: '/a' }),
      error: net('ECONNRESET'),
    });
    expect(next.remaining).toMatchObject({ total: 4, redirect: 5 });
    expect(next.history[0]?.status).toBeUndefined();
    expect(next.history[0]?.redirectLocation).toBeUndefined();
  });

  it('spends the read counter for request-phase and body failures, other for the rest', () => {
    const p = new RetryPolicy({ total: 9, connect: 5, read: 5, other: 5 });
    const phase = (error: DoggedError) =>
      p.increment({ method: 'GET', url: URL_, error }).remaining;
    expect(phase(new ReadTimeoutError('r', { phase: 'request' }))).toMatchObject({
      total: 8,
      connect: 5,
      read: 4,
      other: 5,
    });
    expect(phase(new IncompleteBodyError('b'))).toMatchObject({ read: 4, other: 5 });
    expect(phase(new ReadTimeoutError('n', { phase: 'none' }))).toMatchObject({
      connect: 5,
      read: 5,
      other: 4,
    });
    expect(() =>
      p.increment({
        method: 'POST',
        url: URL_,
        error: new ReadTimeoutError('r', { phase: 'request' }),
      }),
    ).toThrow(ReadTimeoutError);
    // Other failures are retried for any method.
    expect(
      p.increment({
        method: 'POST',
        url: URL_,
        error: new ReadTimeoutError('n', { phase: 'none' }),
      }).remaining.other,
    ).toBe(4);
  });

  it('classifies a raw error with the method, url and attempt number', () => {
    const p = new RetryPolicy({ total: 5 }).increment({
      method: 'GET',
      url: URL_,
      response: res(503),
    });
    const next = p.increment({ method: 'PUT', url: URL_, error: net('ECONNREFUSED') });
    const error = next.history[1]?.error as DoggedError;
    expect(error).toBeInstanceOf(ConnectError);
    expect(error.method).toBe('PUT');
    expect(error.url).toBe(URL_);
    expect(error.attempts).toBe(2);
  });

  it('a non-retriable DoggedError is thrown as it is', () => {
    const error = new DoggedError('final');
    expect(thrownBy(() => new RetryPolicy().increment({ method: 'GET', url: URL_, error }))).toBe(
      error,
    );
  });

  it('neither a response nor an error still spends total and leaves status alone', () => {
    const p = new RetryPolicy({ total: 1, status: 1 });
    const next = p.increment({ method: 'GET', url: URL_ });
    expect(next.remaining).toMatchObject({ total: 0, status: 1 });
    expect(next.history[0]).toEqual({
      method: 'GET',
      url: URL_,
      error: undefined,
      status: undefined,
      redirectLocation: undefined,
    });
    const error = thrownBy(() => next.increment({ method: 'GET', url: URL_ })) as MaxRetryError;
    expect(error).toBeInstanceOf(MaxRetryError);
    expect(error.message).toBe(
      `GET ${URL_} failed after 2 attempts: unknown (unknown; retries exhausted)`,
    );
    expect(error.reason).toBeUndefined();
    expect(error.response).toBeUndefined();
    expect(error.cause).toBeUndefined();
  });

  it('exhausted after one attempt says "attempt", with the status text', () => {
    const response = res(418, {}, 'Short And Stout');
    const error = thrownBy(() =>
      new RetryPolicy({ total: 0 }).increment({ method: 'GET', url: URL_, response }),
    ) as MaxRetryError;
    expect(error.message).toBe(
      `GET ${URL_} failed after 1 attempt: 418 Short And Stout (too many 418 error responses; retries exhausted)`,
    );
    expect(error.attempts).toBe(1);
    expect(error.phase).toBe('none');
    expect(error.method).toBe('GET');
    expect(error.url).toBe(URL_);
    expect(error.history).toHaveLength(1);
    expect(error.reason).toBe(response);
    expect(error.response).toBe(response);
  });

  it('too many redirects names the last status', () => {
    const p = new RetryPolicy({ total: 9, redirect: 0 });
    const error = thrownBy(() =>
      p.increment({ method: 'GET', url: URL_, response: res(301, { location: '/b' }) }),
    ) as MaxRetryError;
    expect(error.message).toBe(
      `GET ${URL_} failed after 1 attempt: 301 Moved Permanently (too many redirects)`,
    );
    expect(error.response?.status).toBe(301);
  });

  it('an error that exhausts the retries is the reason and the cause', () => {
    const p = new RetryPolicy({ total: 1 }).increment({
      method: 'GET',
      url: URL_,
      error: net('ECONNREFUSED'),
    });
    const error = thrownBy(() =>
      p.increment({ method: 'GET', url: URL_, response: res(200), error: net('ECONNRESET') }),
    ) as MaxRetryError;
    expect(error.message).toBe(
      `GET ${URL_} failed after 2 attempts: ConnectionResetError: the connection dropped before a complete response: boom ECONNRESET (retries exhausted)`,
    );
    expect(error.reason).toBeInstanceOf(ConnectError);
    expect(error.cause).toBe(error.reason);
    // With an error, the response is not the reason.
    expect(error.response).toBeUndefined();
  });

  it('with total 0 and no other limit, a status is wrapped, an error is not', () => {
    const p = new RetryPolicy({ total: 0 });
    expect(
      thrownBy(() => p.increment({ method: 'GET', url: URL_, response: res(503) })),
    ).toBeInstanceOf(MaxRetryError);
    expect(
      thrownBy(() => p.increment({ method: 'GET', url: URL_, error: net('ECONNREFUSED') })),
    ).toBeInstanceOf(ConnectError);
    // A counter other than total exhausted first: the error is wrapped.
    const q = new RetryPolicy({ total: 5, connect: 0 });
    expect(
      thrownBy(() => q.increment({ method: 'GET', url: URL_, error: net('ECONNREFUSED') })),
    ).toBeInstanceOf(MaxRetryError);
  });

  it('a counter at 0 is not exhausted; below 0 it is', () => {
    const p = new RetryPolicy({ total: 1 });
    expect(p.isExhausted()).toBe(false);
    const q = p.increment({ method: 'GET', url: URL_, response: res(503) });
    expect(q.remaining.total).toBe(0);
    expect(q.isExhausted()).toBe(false);
    for (const c of ['connect', 'read', 'status', 'redirect', 'other'] as const) {
      expect(new RetryPolicy({ [c]: 0 }).isExhausted(), c).toBe(false);
    }
    expect(() =>
      new RetryPolicy({ total: 5, other: 0 }).increment({
        method: 'GET',
        url: URL_,
        error: new ReadTimeoutError('n', { phase: 'none' }),
      }),
    ).toThrow(MaxRetryError);
  });

  it('counts consecutive errors since the last redirect', () => {
    let p = new RetryPolicy({ total: 10 });
    p = p.increment({ method: 'GET', url: URL_, response: res(503) });
    p = p.increment({ method: 'GET', url: URL_, response: res(302, { location: '/r' }) });
    expect(p.consecutiveErrors).toBe(0);
    p = p.increment({ method: 'GET', url: URL_, response: res(503) });
    p = p.increment({ method: 'GET', url: URL_, error: net('ECONNRESET') });
    expect(p.consecutiveErrors).toBe(2);
  });
});

describe('RetryPolicy counters left unset', () => {
  it('a counter without a limit stays undefined whatever is spent, only total counts down', () => {
    let p = new RetryPolicy({ total: 9 });
    const unset = {
      connect: undefined,
      read: undefined,
      status: undefined,
      redirect: undefined,
      other: undefined,
    };
    p = p.increment({ method: 'GET', url: URL_, error: new ConnectError('c') });
    p = p.increment({
      method: 'GET',
      url: URL_,
      error: new ReadTimeoutError('r', { phase: 'body' }),
    });
    p = p.increment({
      method: 'GET',
      url: URL_,
      error: new ReadTimeoutError('n', { phase: 'none' }),
    });
    p = p.increment({ method: 'GET', url: URL_, response: res(503) });
    p = p.increment({ method: 'GET', url: URL_, response: res(301, { location: '/y' }) });
    expect(p.remaining).toEqual({ total: 5, ...unset });
    expect(p.isExhausted()).toBe(false);
  });
});

describe('RetryPolicy option checks, types', () => {
  it('a millisecond option that may be Infinity still must be a number', () => {
    expect(() => new RetryPolicy({ maxRetryAfter: '5' as never })).toThrow(
      'RetryPolicy: maxRetryAfter must be a non-negative number of milliseconds, got "5"',
    );
  });

  it('a method name must be a string, not something that prints as one', () => {
    expect(() => new RetryPolicy({ allowedMethods: [['GET']] as never })).toThrow(
      /RetryPolicy: allowedMethods must be an array of method names/,
    );
  });

  it('options that are no object are refused, naming RetryPolicy options', () => {
    expect(() => new RetryPolicy(5 as never)).toThrow(/^RetryPolicy options/);
  });
});
