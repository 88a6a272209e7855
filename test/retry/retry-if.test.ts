import { describe, expect, it } from 'vitest';
import { isAbortError, isTransientError, retryIf } from '../../src/retry/index.js';
import { attemptState as at, failed, netError, succeeded } from './helpers.js';

class TimeoutLike extends Error {}
class Other extends Error {}

describe('retryIf', () => {
  it('error matches by class or predicate, only failed attempts', () => {
    const c = retryIf.error(TimeoutLike, (e) => (e as { code?: string }).code === 'EBUSY');
    expect(c(at(1, { outcome: failed(new TimeoutLike()) }))).toBe(true);
    expect(c(at(1, { outcome: failed(netError('EBUSY')) }))).toBe(true);
    expect(c(at(1, { outcome: failed(new Other()) }))).toBe(false);
    expect(c(at(1, { outcome: succeeded(new TimeoutLike()) }))).toBe(false);
  });
  it('notError retries everything thrown except the matches', () => {
    const c = retryIf.notError(Other);
    expect(c(at(1, { outcome: failed(new TimeoutLike()) }))).toBe(true);
    expect(c(at(1, { outcome: failed(new Other()) }))).toBe(false);
    expect(c(at(1, { outcome: succeeded(1) }))).toBe(false);
  });
  it('result and notResult look at returned values only', async () => {
    const temporary = retryIf.result(
      (body: { error?: string }) => body.error === 'temporary_failure',
    );
    expect(temporary(at(1, { outcome: succeeded({ error: 'temporary_failure' }) }))).toBe(true);
    expect(temporary(at(1, { outcome: succeeded({ ok: true }) }))).toBe(false);
    expect(temporary(at(1, { outcome: failed(new Error('x')) }))).toBe(false);
    const notDone = retryIf.notResult(async (job: { done: boolean }) => job.done);
    await expect(notDone(at(1, { outcome: succeeded({ done: false }) }))).resolves.toBe(true);
    await expect(notDone(at(1, { outcome: succeeded({ done: true }) }))).resolves.toBe(false);
  });
  it('errorMessage matches messages and thrown strings, and a global regexp does not keep state', () => {
    const c = retryIf.errorMessage(/deadlock/g);
    expect(c(at(1, { outcome: failed(new Error('deadlock detected')) }))).toBe(true);
    expect(c(at(1, { outcome: failed(new Error('deadlock detected')) }))).toBe(true);
    expect(c(at(1, { outcome: failed('deadlock in a string') }))).toBe(true);
    expect(retryIf.errorMessage('busy')(at(1, { outcome: failed(new Error('server busy')) }))).toBe(
      true,
    );
    expect(c(at(1, { outcome: failed(undefined) }))).toBe(false);
  });
  it('or / and combine sync and async conditions', async () => {
    const sync = retryIf.error(Other);
    const async = (s: ReturnType<typeof at>) => Promise.resolve(s.attempt > 1);
    await expect(sync.or(async)(at(2, { outcome: succeeded(1) }))).resolves.toBe(true);
    expect(sync.or(async)(at(1, { outcome: failed(new Other()) }))).toBe(true);
    expect(sync.and(async)(at(2, { outcome: succeeded(1) }))).toBe(false);
    await expect(sync.and(async)(at(2, { outcome: failed(new Other()) }))).resolves.toBe(true);
    expect(retryIf.always.and(retryIf.never)(at(1))).toBe(false);
  });
  it('anyError retries any thrown value; always and never are constant', () => {
    expect(retryIf.anyError(at(1, { outcome: failed('a string') }))).toBe(true);
    expect(retryIf.anyError(at(1, { outcome: succeeded(1) }))).toBe(false);
    expect(retryIf.always(at(1, { outcome: succeeded(1) }))).toBe(true);
    expect(retryIf.never(at(1, { outcome: failed(new Error()) }))).toBe(false);
  });
  it('rejects bad input at construction', () => {
    expect(() => retryIf.error()).toThrow(/needs at least one error class or predicate/);
    // @ts-expect-error: not a matcher
    expect(() => retryIf.error('TypeError')).toThrow(
      /argument 1 must be an Error class or a predicate function, got "TypeError"/,
    );
    // @ts-expect-error: not a predicate
    expect(() => retryIf.result(null)).toThrow(
      /retryIf\.result\(predicate\) must be a function, got null/,
    );
    // @ts-expect-error: not a pattern
    expect(() => retryIf.errorMessage(42)).toThrow(/must be a RegExp or a string, got 42/);
  });
});

describe('transient errors (the default condition)', () => {
  it('retries Node and undici network codes', () => {
    for (const code of [
      'ECONNRESET',
      'ECONNREFUSED',
      'ETIMEDOUT',
      'EPIPE',
      'EAI_AGAIN',
      'ENOTFOUND',
      'UND_ERR_CONNECT_TIMEOUT',
      'UND_ERR_HEADERS_TIMEOUT',
      'UND_ERR_BODY_TIMEOUT',
      'UND_ERR_SOCKET',
    ]) {
      expect(isTransientError(netError(code)), code).toBe(true);
      expect(retryIf.transient(at(1, { outcome: failed(netError(code)) })), code).toBe(true);
    }
  });
  it('never retries programming errors, aborts or unknown errors', () => {
    expect(isTransientError(new TypeError('x is not a function'))).toBe(false);
    expect(isTransientError(new RangeError('bad'))).toBe(false);
    expect(isTransientError(new SyntaxError('bad'))).toBe(false);
    expect(isTransientError(new ReferenceError('bad'))).toBe(false);
    expect(isTransientError(new Error('boom'))).toBe(false);
    expect(isTransientError('ECONNRESET')).toBe(false);
    expect(isTransientError(undefined)).toBe(false);
    const aborted = AbortSignal.abort();
    expect(isAbortError(aborted.reason)).toBe(true);
    expect(isTransientError(aborted.reason)).toBe(false);
    expect(
      isTransientError(
        Object.assign(new Error('aborted'), { name: 'AbortError', code: 'ECONNRESET' }),
      ),
    ).toBe(false);
  });
  it("honours an error's own retriable flag", () => {
    expect(isTransientError(Object.assign(new Error('x'), { retriable: true }))).toBe(true);
    expect(
      isTransientError(Object.assign(new Error('x'), { retriable: false, code: 'ECONNRESET' })),
    ).toBe(false);
  });
  it("recognises fetch's TypeError('fetch failed') wrapping a network fault, and wrapped causes", () => {
    expect(
      isTransientError(new TypeError('fetch failed', { cause: netError('ECONNREFUSED') })),
    ).toBe(true);
    expect(
      isTransientError(new TypeError('fetch failed', { cause: new Error('bad header') })),
    ).toBe(false);
    expect(isTransientError(new Error('request failed', { cause: netError('ECONNRESET') }))).toBe(
      true,
    );
  });
});
