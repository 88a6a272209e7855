import { describe, expect, it } from 'vitest';
import { stop } from '../../src/retry/index.js';
import { toStop } from '../../src/retry/stop.js';
import { attemptState as at } from './helpers.js';

describe('stop strategies: descriptions and combinators', () => {
  it('each strategy describes itself', () => {
    expect(stop.afterAttempt(3).description).toBe('stop.afterAttempt(3)');
    expect(stop.afterDelay(1000).description).toBe('stop.afterDelay(1000)');
    expect(stop.beforeDelay(250).description).toBe('stop.beforeDelay(250)');
    expect(stop.onAbort(new AbortController().signal).description).toBe('stop.onAbort(signal)');
    expect(stop.never.description).toBe('stop.never');
  });

  it('or and and describe both sides', () => {
    const a = stop.afterAttempt(2);
    const b = stop.afterDelay(10);
    expect(a.or(b).description).toBe('stop.afterAttempt(2) | stop.afterDelay(10)');
    expect(a.and(b).description).toBe('(stop.afterAttempt(2) & stop.afterDelay(10))');
    expect(a.and(b).or(stop.never).description).toBe(
      '(stop.afterAttempt(2) & stop.afterDelay(10)) | stop.never',
    );
  });

  it('and accepts a plain function, which must return true exactly', () => {
    const both = stop.afterAttempt(2).and((s) => s.elapsedMs > 5);
    expect(both.description).toBe('(stop.afterAttempt(2) & custom)');
    expect(both(at(2, { elapsedMs: 6 }))).toBe(true);
    expect(both(at(2, { elapsedMs: 5 }))).toBe(false);
    expect(both(at(1, { elapsedMs: 6 }))).toBe(false);
    const truthy = toStop(() => 1 as unknown as boolean);
    expect(truthy(at(1))).toBe(false);
  });

  it('and/or refuse what is not a function, naming the combinator', () => {
    // @ts-expect-error: not a function
    expect(() => stop.never.and('x')).toThrow('stop.and(other) must be a function, got "x"');
    expect(() => toStop(5)).toThrow('stop must be a function, got 5');
  });

  it('toStop keeps a strategy and wraps a plain function, named or not', () => {
    const s = stop.afterAttempt(2);
    expect(toStop(s)).toBe(s);
    function giveUp() {
      return true;
    }
    const named = toStop(giveUp);
    expect(named).not.toBe(giveUp);
    expect(named.description).toBe('giveUp');
    expect(named(at(1))).toBe(true);
    // A function with an `or` but no description is not a strategy.
    const impostor = Object.assign(() => true, { or: () => undefined });
    const wrapped = toStop(impostor);
    expect(wrapped).not.toBe(impostor);
    expect(wrapped.description).toBe('custom');
    expect(typeof wrapped.and).toBe('function');
    // A function with a description but no `or` is not one either.
    const described = Object.assign(() => true, { description: 'mine' });
    expect(toStop(described)).not.toBe(described);
  });

  it('strategies are frozen and their description is read-only', () => {
    const s = stop.afterAttempt(2);
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.getOwnPropertyDescriptor(s, 'description')?.writable).toBe(false);
  });

  it('beforeDelay without an upcoming delay compares the elapsed time alone', () => {
    const s = stop.beforeDelay(1000);
    expect(s(at(2, { elapsedMs: 999 }))).toBe(false);
    expect(s(at(2, { elapsedMs: 1000 }))).toBe(true);
  });

  it('afterAttempt(1) stops after the first attempt; afterDelay(0) at once', () => {
    expect(stop.afterAttempt(1)(at(1))).toBe(true);
    expect(stop.afterDelay(0)(at(1, { elapsedMs: 0 }))).toBe(true);
    expect(stop.afterDelay(5)(at(1, { elapsedMs: 4 }))).toBe(false);
  });
});
