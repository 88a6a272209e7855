import { describe, expect, it } from 'vitest';
import {
  ConnectError,
  ConnectTimeoutError,
  IncompleteBodyError,
  MaxRetryError,
  ReadTimeoutError,
  RetryAfterTooLongError,
  RetryPolicy,
  TLSError,
} from '../../src/http/index.js';
import { wait } from '../../src/retry/index.js';
import { net, res, URL_ } from './policy-support.js';

describe('RetryPolicy (urllib3 semantics)', () => {
  it('has dogged defaults', () => {
    const p = new RetryPolicy();
    expect(p.remaining).toEqual({
      total: 3,
      connect: undefined,
      read: undefined,
      status: undefined,
      redirect: undefined,
      other: undefined,
    });
    expect(p.isRetry('GET', 503)).toBe(true);
    expect(p.isRetry('GET', 429)).toBe(true);
    expect(p.isRetry('GET', 408)).toBe(true);
    for (const s of [400, 401, 403, 404, 501]) expect(p.isRetry('GET', s), String(s)).toBe(false);
    expect(p.isRetry('POST', 503)).toBe(false);
    expect(p.isRetry('POST', 503, false, true)).toBe(true);
    expect(p.maxRetryAfter).toBe(120_000);
    expect(p.removeHeadersOnRedirect).toEqual(['authorization', 'cookie', 'proxy-authorization']);
  });

  it('retries a status with Retry-After from retryAfterStatusCodes even outside the forcelist', () => {
    const p = new RetryPolicy({ statusForcelist: [500] });
    expect(p.isRetry('GET', 413, true)).toBe(true);
    expect(p.isRetry('GET', 413, false)).toBe(false);
    expect(p.with({ respectRetryAfterHeader: false }).isRetry('GET', 429, true)).toBe(false);
    expect(new RetryPolicy({ total: 0, statusForcelist: [] }).isRetry('GET', 429, true)).toBe(
      false,
    );
  });

  it('increment returns a new policy, decrements the right counters and records history', () => {
    const p0 = new RetryPolicy({ total: 5, connect: 2, read: 2, status: 2 });
    const p1 = p0.increment({ method: 'GET', url: URL_, error: net('ECONNREFUSED') });
    expect(p0.remaining.total).toBe(5);
    expect(p1.remaining).toMatchObject({ total: 4, connect: 1, read: 2, status: 2 });
    const p2 = p1.increment({ method: 'GET', url: URL_, error: net('UND_ERR_HEADERS_TIMEOUT') });
    expect(p2.remaining).toMatchObject({ total: 3, connect: 1, read: 1, status: 2 });
    const p3 = p2.increment({ method: 'GET', url: URL_, response: res(503) });
    expect(p3.remaining).toMatchObject({ total: 2, connect: 1, read: 1, status: 1 });
    expect(p3.history.map((h) => [h.error?.name, h.status])).toEqual([
      ['ConnectError', undefined],
      ['ReadTimeoutError', undefined],
      [undefined, 503],
    ]);
    expect(Object.isFrozen(p3.history)).toBe(true);
  });

  it('raises MaxRetryError when any counter is exhausted, with reason and history', () => {
    let p = new RetryPolicy({ total: 10, connect: 1 });
    p = p.increment({ method: 'GET', url: URL_, error: net('ECONNREFUSED') });
    let thrown: unknown;
    try {
      p.increment({ method: 'GET', url: URL_, error: net('ECONNREFUSED') });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(MaxRetryError);
    const m = thrown as MaxRetryError;
    expect(m.reason).toBeInstanceOf(ConnectError);
    expect(m.cause).toBe(m.reason);
    expect(m.history).toHaveLength(2);
    expect(m.message).toMatch(
      /^GET http:\/\/127\.0\.0\.1:8080\/x failed after 2 attempts: ConnectError: could not connect: boom ECONNREFUSED \(retries exhausted\)$/,
    );
  });

  it('exhausts status retries with the response as reason', () => {
    let p = new RetryPolicy({ total: 2 });
    p = p.increment({ method: 'GET', url: URL_, response: res(503) });
    p = p.increment({ method: 'GET', url: URL_, response: res(503) });
    const last = res(503);
    expect(() => p.increment({ method: 'GET', url: URL_, response: last })).toThrow(MaxRetryError);
    try {
      p.increment({ method: 'GET', url: URL_, response: last });
    } catch (e) {
      expect((e as MaxRetryError).reason).toBe(last);
      expect((e as MaxRetryError).response).toBe(last);
      expect((e as MaxRetryError).message).toMatch(
        /503 Service Unavailable \(too many 503 error responses; retries exhausted\)/,
      );
    }
  });

  it('retries connect-phase failures for every method, read-phase ones only for allowed methods', () => {
    const p = new RetryPolicy();
    expect(
      p.increment({ method: 'POST', url: URL_, error: net('ECONNREFUSED') }).remaining.total,
    ).toBe(2);
    expect(
      p.increment({ method: 'POST', url: URL_, error: net('UND_ERR_CONNECT_TIMEOUT') }).history[0]
        ?.error,
    ).toBeInstanceOf(ConnectTimeoutError);
    expect(() =>
      p.increment({ method: 'POST', url: URL_, error: net('UND_ERR_HEADERS_TIMEOUT') }),
    ).toThrow(ReadTimeoutError);
    expect(() => p.increment({ method: 'PATCH', url: URL_, error: net('ECONNRESET') })).toThrow(
      ConnectError,
    );
    expect(() =>
      p.increment({ method: 'POST', url: URL_, error: new IncompleteBodyError('cut') }),
    ).toThrow(IncompleteBodyError);
    expect(
      p.increment({ method: 'POST', url: URL_, error: net('ECONNRESET'), replaySafe: true })
        .remaining.total,
    ).toBe(2);
    expect(
      p.increment({ method: 'PUT', url: URL_, error: net('ECONNRESET') }).remaining.total,
    ).toBe(2);
  });

  it('never retries TLS errors, programming errors or aborts', () => {
    const p = new RetryPolicy();
    expect(() =>
      p.increment({ method: 'GET', url: URL_, error: net('DEPTH_ZERO_SELF_SIGNED_CERT') }),
    ).toThrow(TLSError);
    const bug = new TypeError('x is not a function');
    expect(() => p.increment({ method: 'GET', url: URL_, error: bug })).toThrow(bug);
    const abort = AbortSignal.abort().reason;
    expect(() => p.increment({ method: 'GET', url: URL_, error: abort })).toThrow(abort as Error);
  });

  it('accepts dogged errors built by users', () => {
    const p = new RetryPolicy({ read: 0 });
    const timeout = new ReadTimeoutError('simulated', { method: 'GET', url: URL_ });
    expect(() => p.increment({ method: 'GET', url: URL_, error: timeout })).toThrow(MaxRetryError);
    expect(
      new RetryPolicy().increment({ method: 'GET', url: URL_, error: timeout }).history[0]?.error,
    ).toBe(timeout);
  });

  it('with total 0, errors pass through unwrapped', () => {
    expect(() =>
      RetryPolicy.from(false).increment({ method: 'GET', url: URL_, error: net('ECONNREFUSED') }),
    ).toThrow(ConnectError);
  });

  it('counts redirects and resets the backoff run after one', () => {
    let p = new RetryPolicy({ total: 10, redirect: 1, backoffFactor: 100 });
    p = p.increment({ method: 'GET', url: URL_, response: res(503) });
    p = p.increment({ method: 'GET', url: URL_, response: res(503) });
    expect(p.getBackoffTime()).toBe(200);
    p = p.increment({ method: 'GET', url: URL_, response: res(302, { location: '/y' }) });
    expect(p.remaining.redirect).toBe(0);
    expect(p.history[2]?.redirectLocation).toBe('/y');
    expect(p.getBackoffTime()).toBe(0);
    p = p.increment({ method: 'GET', url: URL_, response: res(503) });
    expect(p.getBackoffTime()).toBe(0);
    expect(() =>
      p.increment({ method: 'GET', url: URL_, response: res(301, { location: '/z' }) }),
    ).toThrow(/too many redirects/);
  });

  it('backoffFactor 100 gives 0, 200, 400, 800, 1600 ms', () => {
    let p = new RetryPolicy({ total: 10, backoffFactor: 100 });
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      p = p.increment({ method: 'GET', url: URL_, response: res(503) });
      delays.push(p.getBackoffTime());
    }
    expect(delays).toEqual([0, 200, 400, 800, 1600]);
  });

  it("the article's backoff_factor=1 (1000 ms) with jitter 0.5 s", () => {
    let p = new RetryPolicy({
      total: 5,
      backoffFactor: 1000,
      backoffJitter: 500,
      random: () => 0.5,
    });
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      p = p.increment({ method: 'GET', url: URL_, response: res(503) });
      delays.push(p.getBackoffTime());
    }
    expect(delays).toEqual([0, 2250, 4250, 8250, 16_250]);
  });

  it('uses the default full-jitter backoff from 500 ms capped at 30 s', () => {
    let p = new RetryPolicy({ total: 20, random: () => 1 });
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      p = p.increment({ method: 'GET', url: URL_, error: net('ECONNRESET') });
      delays.push(p.getBackoffTime());
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
  });

  it('gives the backoff the previous delay, so decorrelated jitter grows', () => {
    let p = new RetryPolicy({
      total: 10,
      backoff: wait.decorrelatedJitter({ base: 100 }),
      random: () => 1,
    });
    let slept = 0;
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      p = p.increment({ method: 'GET', url: URL_, error: net('ECONNRESET'), sleptMs: slept });
      slept = p.getBackoffTime();
      delays.push(slept);
    }
    // U(base, 3·previous) with random 1: 300, then 900 from 300, 2700, 8100.
    expect(delays).toEqual([300, 900, 2700, 8100]);
  });

  it('takes any wait strategy as backoff', () => {
    const p = new RetryPolicy({ backoff: wait.fixed(250) }).increment({
      method: 'GET',
      url: URL_,
      response: res(500),
    });
    expect(p.getBackoffTime()).toBe(250);
  });

  it('prefers a valid Retry-After, falls back on a malformed one, refuses one that is too long', () => {
    const p = new RetryPolicy({ backoff: wait.fixed(250) }).increment({
      method: 'GET',
      url: URL_,
      response: res(503),
    });
    expect(p.getRetryDelay(res(503, { 'retry-after': '3' }))).toEqual({
      delayMs: 3000,
      source: 'retry-after',
    });
    expect(p.getRetryDelay(res(503, { 'retry-after': 'soon' }))).toEqual({
      delayMs: 250,
      source: 'backoff',
    });
    expect(
      p.with({ respectRetryAfterHeader: false }).getRetryDelay(res(503, { 'retry-after': '3' })),
    ).toEqual({ delayMs: 0, source: 'backoff' });
    let thrown: unknown;
    try {
      p.getRetryDelay(res(429, { 'retry-after': '3600' }), { method: 'GET', url: URL_ });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(RetryAfterTooLongError);
    expect((thrown as RetryAfterTooLongError).retryAfterMs).toBe(3_600_000);
    expect((thrown as Error).message).toBe(
      'Retry-After of 60 min exceeds maxRetryAfter 2 min for GET http://127.0.0.1:8080/x; raise maxRetryAfter or schedule the request later',
    );
  });

  it('keeps credentials out of history and messages', () => {
    const p = new RetryPolicy().increment({
      method: 'GET',
      url: 'http://user:secret@127.0.0.1:1/x',
      error: net('ECONNREFUSED'),
    });
    expect(p.history[0]?.url).toBe('http://***@127.0.0.1:1/x');
    expect(JSON.stringify(p.history)).not.toContain('secret');
  });

  it('validates its options loudly', () => {
    expect(() => new RetryPolicy({ total: -1 })).toThrow(/total must be a non-negative integer/);
    expect(() => new RetryPolicy({ total: 1.5 })).toThrow(/got 1\.5/);
    // @ts-expect-error: wrong type on purpose
    expect(() => new RetryPolicy({ statusForcelist: ['503'] })).toThrow(
      /statusForcelist must be an array of HTTP status codes/,
    );
    expect(() => new RetryPolicy({ backoff: wait.fixed(1), backoffFactor: 1 })).toThrow(
      /either backoff .* or backoffFactor/,
    );
    expect(() => new RetryPolicy({ backoffJitter: 100 })).toThrow(/give backoffFactor too/);
    expect(() => new RetryPolicy({ maxRetryAfter: -1 })).toThrow(
      /maxRetryAfter must be a non-negative number/,
    );
    // @ts-expect-error: wrong type on purpose
    expect(() => new RetryPolicy({ status_forcelist: [503] })).toThrow(
      /unknown option "status_forcelist"; use statusForcelist/,
    );
  });

  it('with() swaps the backoff style cleanly', () => {
    const p = new RetryPolicy({ backoffFactor: 100 }).with({ backoff: wait.fixed(7) });
    expect(p.increment({ method: 'GET', url: URL_, response: res(503) }).getBackoffTime()).toBe(7);
  });
});
