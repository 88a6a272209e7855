import { describe, expect, it } from 'vitest';
import { retryIf } from '../../src/retry/index.js';
import { ignoresResults, toRetryCondition } from '../../src/retry/retry-if.js';
import { attemptState as at, failed, succeeded } from './helpers.js';

class Busy extends Error {}
class Other extends Error {}

describe('retry conditions: descriptions', () => {
  it('each condition describes itself', () => {
    function isBusy(e: unknown) {
      return e instanceof Busy;
    }
    expect(retryIf.error(Busy, isBusy, () => true).description).toBe(
      'retryIf.error(Busy, isBusy, predicate)',
    );
    expect(retryIf.notError(Other).description).toBe('retryIf.notError(Other)');
    expect(retryIf.result(() => true).description).toBe('retryIf.result(predicate)');
    function pending(v: { done: boolean }) {
      return !v.done;
    }
    expect(retryIf.result(pending).description).toBe('retryIf.result(pending)');
    expect(retryIf.notResult(() => true).description).toBe('retryIf.notResult(predicate)');
    expect(retryIf.errorMessage(/dead/i).description).toBe('retryIf.errorMessage(/dead/i)');
    expect(retryIf.errorMessage('busy').description).toBe('retryIf.errorMessage(busy)');
    expect(retryIf.transient.description).toBe('retryIf.transient');
    expect(retryIf.anyError.description).toBe('retryIf.anyError');
    expect(retryIf.always.description).toBe('retryIf.always');
    expect(retryIf.never.description).toBe('retryIf.never');
    expect(retryIf.transient.or(retryIf.never).description).toBe(
      'retryIf.transient | retryIf.never',
    );
    expect(retryIf.transient.and(() => true).description).toBe('(retryIf.transient & custom)');
  });
});

describe('retry conditions: which ones ignore results', () => {
  it('error conditions ignore results; result conditions and always do not', () => {
    expect(ignoresResults(retryIf.error(Busy))).toBe(true);
    expect(ignoresResults(retryIf.notError(Busy))).toBe(true);
    expect(ignoresResults(retryIf.errorMessage('x'))).toBe(true);
    expect(ignoresResults(retryIf.transient)).toBe(true);
    expect(ignoresResults(retryIf.anyError)).toBe(true);
    expect(ignoresResults(retryIf.never)).toBe(true);
    expect(ignoresResults(retryIf.always)).toBe(false);
    expect(ignoresResults(retryIf.result(() => true))).toBe(false);
    expect(ignoresResults(retryIf.notResult(() => true))).toBe(false);
    expect(ignoresResults(toRetryCondition(() => true))).toBe(false);
    expect(ignoresResults(undefined)).toBe(false);
    expect(ignoresResults(() => true)).toBe(false);
  });

  it('or ignores results only when both sides do; and when either does', () => {
    const e = retryIf.error(Busy);
    const r = retryIf.result(() => true);
    expect(ignoresResults(e.or(retryIf.transient))).toBe(true);
    expect(ignoresResults(e.or(r))).toBe(false);
    expect(ignoresResults(r.or(e))).toBe(false);
    expect(ignoresResults(e.and(r))).toBe(true);
    expect(ignoresResults(r.and(e))).toBe(true);
    expect(ignoresResults(r.and(retryIf.always))).toBe(false);
  });

  it('the mark is hidden and conditions are frozen', () => {
    const c = retryIf.error(Busy);
    expect(Object.keys(c)).toEqual(['or', 'and']);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.getOwnPropertyDescriptor(c, 'description')?.writable).toBe(false);
  });
});

describe('retry conditions: outcomes', () => {
  it('error with one class, several matchers, sync and async', async () => {
    const c = retryIf.error(Busy);
    expect(c(at(1, { outcome: failed(new Busy()) }))).toBe(true);
    expect(c(at(1, { outcome: failed(new Other()) }))).toBe(false);
    expect(c(at(1, { outcome: succeeded(new Busy()) }))).toBe(false);
    expect(c(at(1))).toBe(false);
    // A predicate must return true exactly.
    const truthy = retryIf.error(() => 1 as unknown as boolean);
    expect(truthy(at(1, { outcome: failed('x') }))).toBe(false);
    // Error itself is a class.
    expect(retryIf.error(Error)(at(1, { outcome: failed(new Other()) }))).toBe(true);
    const many = retryIf.error(Busy, (e) => e === 'code');
    expect(many(at(1, { outcome: failed('code') }))).toBe(true);
    expect(many(at(1, { outcome: failed(new Busy()) }))).toBe(true);
    expect(many(at(1, { outcome: failed('other') }))).toBe(false);
    const calls: string[] = [];
    const asyncMany = retryIf.error(
      (e) => {
        calls.push('first');
        return Promise.resolve(e === 'a');
      },
      (e) => {
        calls.push('second');
        return Promise.resolve(e === 'b');
      },
      (e) => {
        calls.push('third');
        return e === 'c';
      },
    );
    await expect(asyncMany(at(1, { outcome: failed('a') }))).resolves.toBe(true);
    expect(calls).toEqual(['first']);
    calls.length = 0;
    await expect(asyncMany(at(1, { outcome: failed('c') }))).resolves.toBe(true);
    expect(calls).toEqual(['first', 'second', 'third']);
    await expect(asyncMany(at(1, { outcome: failed('z') }))).resolves.toBe(false);
    // Sync matchers stop at the first match.
    calls.length = 0;
    const syncMany = retryIf.error(
      () => {
        calls.push('1');
        return true;
      },
      () => {
        calls.push('2');
        return true;
      },
    );
    expect(syncMany(at(1, { outcome: failed('x') }))).toBe(true);
    expect(calls).toEqual(['1']);
    const asyncOne = retryIf.error(async () => 1 as unknown as boolean);
    await expect(asyncOne(at(1, { outcome: failed('x') }))).resolves.toBe(false);
  });

  it('notError is the complement on failures, false on success', async () => {
    const c = retryIf.notError(Busy);
    expect(c(at(1, { outcome: failed(new Other()) }))).toBe(true);
    expect(c(at(1, { outcome: failed(new Busy()) }))).toBe(false);
    expect(c(at(1, { outcome: succeeded(1) }))).toBe(false);
    expect(c(at(1))).toBe(false);
    const a = retryIf.notError(async (e) => e === 'x');
    await expect(a(at(1, { outcome: failed('x') }))).resolves.toBe(false);
    await expect(a(at(1, { outcome: failed('y') }))).resolves.toBe(true);
  });

  it('result and notResult: exact true, async, and nothing on failures', async () => {
    const r = retryIf.result((v: number) => (v === 1 ? true : (v as unknown as boolean)));
    expect(r(at(1, { outcome: succeeded(1) }))).toBe(true);
    expect(r(at(1, { outcome: succeeded(2) }))).toBe(false);
    expect(r(at(1, { outcome: failed(1) }))).toBe(false);
    expect(r(at(1))).toBe(false);
    const ar = retryIf.result(async (v: number) => v as unknown as boolean);
    await expect(ar(at(1, { outcome: succeeded(1) }))).resolves.toBe(false);
    await expect(ar(at(1, { outcome: succeeded(true) }))).resolves.toBe(true);
    const n = retryIf.notResult((v: number) => v as unknown as boolean);
    expect(n(at(1, { outcome: succeeded(true) }))).toBe(false);
    expect(n(at(1, { outcome: succeeded(1) }))).toBe(true);
    expect(n(at(1, { outcome: failed('x') }))).toBe(false);
    expect(n(at(1))).toBe(false);
    const an = retryIf.notResult(async (v: boolean) => v);
    await expect(an(at(1, { outcome: succeeded(true) }))).resolves.toBe(false);
    await expect(an(at(1, { outcome: succeeded(false) }))).resolves.toBe(true);
    expect(() => retryIf.result(5 as never)).toThrow(
      'retryIf.result(predicate) must be a function, got 5',
    );
    expect(() => retryIf.notResult(null as never)).toThrow(
      'retryIf.notResult(predicate) must be a function, got null',
    );
  });

  it('errorMessage reads messages and strings; anything else has no message', () => {
    const c = retryIf.errorMessage('busy');
    expect(c(at(1, { outcome: failed(new Error('server busy')) }))).toBe(true);
    expect(c(at(1, { outcome: failed('busy now') }))).toBe(true);
    expect(c(at(1, { outcome: failed({ message: 'busy' }) }))).toBe(true);
    expect(c(at(1, { outcome: failed({ message: 42 }) }))).toBe(false);
    expect(c(at(1, { outcome: failed(null) }))).toBe(false);
    expect(c(at(1, { outcome: succeeded('busy') }))).toBe(false);
    expect(c(at(1))).toBe(false);
    const empty = retryIf.errorMessage(/^$/);
    expect(empty(at(1, { outcome: failed(7) }))).toBe(true);
    expect(empty(at(1, { outcome: failed({ toString: () => 'busy' }) }))).toBe(true);
    const sticky = retryIf.errorMessage(/b/gy);
    expect(sticky(at(1, { outcome: failed('ab') }))).toBe(true);
    expect(sticky(at(1, { outcome: failed('ab') }))).toBe(true);
    const insensitive = retryIf.errorMessage(/BUSY/i);
    expect(insensitive(at(1, { outcome: failed('busy') }))).toBe(true);
    expect(() => retryIf.errorMessage(5 as never)).toThrow(
      'retryIf.errorMessage(pattern) must be a RegExp or a string, got 5',
    );
  });

  it('anyError and transient are false on success and without an outcome', () => {
    for (const c of [retryIf.anyError, retryIf.transient]) {
      expect(c(at(1, { outcome: succeeded(1) }))).toBe(false);
      expect(c(at(1))).toBe(false);
    }
    expect(retryIf.anyError(at(1, { outcome: failed(undefined) }))).toBe(true);
    expect(retryIf.always(at(1, { outcome: succeeded(1) }))).toBe(true);
    expect(retryIf.never(at(1, { outcome: failed(new Error()) }))).toBe(false);
  });

  it('or and and short-circuit, sync and async', async () => {
    const calls: string[] = [];
    const yes = toRetryCondition(function yes() {
      calls.push('yes');
      return true;
    });
    const no = toRetryCondition(function no() {
      calls.push('no');
      return false;
    });
    const ayes = toRetryCondition(async function ayes() {
      calls.push('ayes');
      return true;
    });
    const ano = toRetryCondition(async function ano() {
      calls.push('ano');
      return false;
    });
    expect(yes.or(no)(at(1))).toBe(true);
    expect(calls).toEqual(['yes']);
    calls.length = 0;
    expect(no.and(yes)(at(1))).toBe(false);
    expect(calls).toEqual(['no']);
    calls.length = 0;
    expect(no.or(yes)(at(1))).toBe(true);
    expect(yes.and(no)(at(1))).toBe(false);
    expect(calls).toEqual(['no', 'yes', 'yes', 'no']);
    calls.length = 0;
    await expect(ayes.or(no)(at(1))).resolves.toBe(true);
    expect(calls).toEqual(['ayes']);
    calls.length = 0;
    await expect(ano.or(yes)(at(1))).resolves.toBe(true);
    await expect(ano.and(yes)(at(1))).resolves.toBe(false);
    expect(calls).toEqual(['ano', 'yes', 'ano']);
    await expect(ayes.and(ano)(at(1))).resolves.toBe(false);
    await expect(ayes.and(yes)(at(1))).resolves.toBe(true);
    expect(() => yes.or(3 as never)).toThrow('retryIf.or(other) must be a function, got 3');
    expect(() => yes.and('x' as never)).toThrow('retryIf.and(other) must be a function, got "x"');
  });

  it('a plain function must answer true exactly, sync or async', async () => {
    expect(toRetryCondition(() => 1 as unknown as boolean)(at(1))).toBe(false);
    await expect(toRetryCondition(async () => 1 as unknown as boolean)(at(1))).resolves.toBe(false);
    await expect(toRetryCondition(async () => true)(at(1))).resolves.toBe(true);
    // A thenable that is not a promise is awaited too.
    // biome-ignore lint/suspicious/noThenProperty: a thenable that is not a promise, on purpose.
    const thenable = { then: (resolve: (v: boolean) => void) => resolve(true) };
    await expect(
      Promise.resolve(toRetryCondition(() => thenable as unknown as boolean)(at(1))),
    ).resolves.toBe(true);
    expect(() => toRetryCondition(5)).toThrow('retry must be a function, got 5');
    const c = retryIf.transient;
    expect(toRetryCondition(c)).toBe(c);
    const impostor = Object.assign(() => true, { or: () => undefined });
    expect(toRetryCondition(impostor)).not.toBe(impostor);
  });

  it('matchers are checked', () => {
    expect(() => retryIf.error()).toThrow(
      'retryIf.error needs at least one error class or predicate, got none',
    );
    expect(() => retryIf.notError()).toThrow(
      'retryIf.notError needs at least one error class or predicate, got none',
    );
    expect(() => retryIf.error(Busy, 'x' as never)).toThrow(
      'retryIf.error argument 2 must be an Error class or a predicate function, got "x"',
    );
  });
});
