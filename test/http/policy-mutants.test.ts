import { describe, expect, it } from 'vitest';
import { classifyError, markProxyFailure } from '../../src/http/classify.js';
import { ConnectError, ConnectionResetError, RetryPolicy } from '../../src/http/index.js';
import { net, res, URL_ } from './policy-support.js';

describe('RetryPolicy: option checks', () => {
  it('a millisecond option that may be Infinity still wants a number', () => {
    expect(
      // @ts-expect-error: not a number
      () => new RetryPolicy({ backoffFactor: 100, backoffMax: '5' }),
    ).toThrow(/^RetryPolicy: backoffMax must be a non-negative number of milliseconds, got "5"/);
    // @ts-expect-error: not a number
    expect(() => new RetryPolicy({ maxRetryAfter: '5' })).toThrow(/^RetryPolicy: maxRetryAfter/);
  });

  it('allowedMethods wants strings, not arrays that read as names', () => {
    // @ts-expect-error: not a method name
    expect(() => new RetryPolicy({ allowedMethods: [['GET']] })).toThrow(
      /^RetryPolicy: allowedMethods must be an array of method names/,
    );
  });

  it('options that are not an object are named in the error', () => {
    // @ts-expect-error: not options
    expect(() => new RetryPolicy('x')).toThrow(/^RetryPolicy options must be/);
  });

  it('a bad backoff is reported before a bad random', () => {
    // @ts-expect-error: neither is valid
    expect(() => new RetryPolicy({ backoff: 5, random: 5 })).toThrow(/^RetryPolicy: backoff/);
  });
});

describe('RetryPolicy: counters without a limit stay without one', () => {
  it('spending total leaves connect, read, other, redirect and status undefined', () => {
    const p = new RetryPolicy({ total: 9 });
    const after = [
      p.increment({ method: 'GET', url: URL_, error: net('ECONNREFUSED') }),
      p.increment({ method: 'GET', url: URL_, error: net('ECONNRESET') }),
      p.increment({
        method: 'GET',
        url: URL_,
        error: new ConnectionResetError('r', { phase: 'none' } as never),
      }),
      p.increment({ method: 'GET', url: URL_, response: res(301, { location: '/y' }) }),
      p.increment({ method: 'GET', url: URL_, response: res(503) }),
    ];
    for (const q of after) {
      expect(q.remaining).toEqual({
        total: expect.any(Number),
        connect: undefined,
        read: undefined,
        status: undefined,
        redirect: undefined,
        other: undefined,
      });
    }
  });
});

describe('classify: proxy failures', () => {
  it('markProxyFailure passes primitives and frozen objects through untouched', () => {
    expect(markProxyFailure('boom')).toBe('boom');
    expect(markProxyFailure(5)).toBe(5);
    const frozen = Object.freeze(new Error('frozen'));
    expect(markProxyFailure(frozen)).toBe(frozen);
  });

  it('a DoggedError is returned as it is, even one marked as a proxy failure', () => {
    const error = markProxyFailure(new ConnectError('refused')) as ConnectError;
    expect(classifyError(error)).toBe(error);
  });
});
