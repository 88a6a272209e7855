import { describe, expect, it } from 'vitest';
import { isAbortError, isTransientError, retryIf } from '../../src/retry/index.js';
import { toRetryCondition } from '../../src/retry/retry-if.js';
import { attemptState as at } from './helpers.js';

describe('retry conditions from plain functions', () => {
  it('a function answering null or a plain object is a synchronous no', () => {
    const state = at(1);
    expect(toRetryCondition(() => null)(state)).toBe(false);
    expect(toRetryCondition(() => ({}))(state)).toBe(false);
  });

  it('a function with a description but no or() is wrapped into a condition', () => {
    const fn = Object.assign(() => true, { description: 'mine' });
    const condition = toRetryCondition(fn);
    expect(typeof condition.or).toBe('function');
    expect(condition(at(1))).toBe(true);
  });

  it('a null matcher is refused with the usual message', () => {
    // @ts-expect-error: not a matcher
    expect(() => retryIf.error(null)).toThrow(
      /argument 1 must be an Error class or a predicate function, got null/,
    );
  });
});

describe('aborts and transient errors', () => {
  it('a function named AbortError, or a DOMException that is not a timeout, is no abort', () => {
    expect(isAbortError(function AbortError() {})).toBe(false);
    expect(isAbortError(new DOMException('x', 'DataCloneError'))).toBe(false);
    expect(isAbortError(new DOMException('x', 'TimeoutError'))).toBe(true);
  });

  it('fetch-failed wrappers are followed only 5 deep', () => {
    let error: unknown = Object.assign(new Error('reset'), { code: 'ECONNRESET' });
    for (let i = 0; i < 7; i++) error = new TypeError('fetch failed', { cause: error });
    expect(isTransientError(error)).toBe(false);
    let shallow: unknown = Object.assign(new Error('reset'), { code: 'ECONNRESET' });
    for (let i = 0; i < 3; i++) shallow = new TypeError('fetch failed', { cause: shallow });
    expect(isTransientError(shallow)).toBe(true);
  });
});

describe('thenables, as the engine takes them', () => {
  it('a function answering a thenable function is awaited, as an object thenable is', async () => {
    // Promises/A+: a function with then() is a thenable too (the engine awaits one the same way).
    const thenableFn = Object.assign(() => {}, {
      // biome-ignore lint/suspicious/noThenProperty: a thenable is what this test is about
      then: (resolve: (v: boolean) => void) => resolve(true),
    });
    const condition = toRetryCondition(() => thenableFn as unknown as boolean);
    const answer = condition(at(1));
    expect(answer).toBeInstanceOf(Promise);
    expect(await answer).toBe(true);
  });
});
