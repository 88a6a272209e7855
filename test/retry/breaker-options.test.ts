import { describe, expect, it } from 'vitest';
import { resolveBreakerOptions } from '../../src/retry/breaker-options.js';
import { systemClock } from '../../src/retry/clock.js';
import { FakeClock } from '../../src/testing/index.js';

const W = 'CircuitBreaker';

function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    return (error as Error).message;
  }
  throw new Error('did not throw');
}

describe('resolveBreakerOptions', () => {
  it('the consecutive defaults', () => {
    const o = resolveBreakerOptions(W, undefined);
    expect({ ...o, isFailure: undefined }).toEqual({
      mode: 'consecutive',
      threshold: 5,
      halfOpenAfterMs: 10_000,
      maxHalfOpenAfterMs: 120_000,
      halfOpenBackoffFactor: 2,
      halfOpenProbes: 1,
      isFailure: undefined,
      name: undefined,
      clock: systemClock,
    });
    expect(Object.isFrozen(o)).toBe(true);
    // Aborts are not failures; everything else is.
    expect(o.isFailure(new Error('x'))).toBe(true);
    expect(o.isFailure('x')).toBe(true);
    expect(o.isFailure(AbortSignal.abort().reason)).toBe(false);
  });

  it('the ratio defaults', () => {
    const clock = new FakeClock();
    const isFailure = () => true;
    const o = resolveBreakerOptions(W, { mode: 'ratio', clock, isFailure, name: 'api' });
    expect(o).toEqual({
      mode: 'ratio',
      failureRatio: 0.5,
      minimumRequests: 10,
      windowMs: 30_000,
      halfOpenAfterMs: 10_000,
      maxHalfOpenAfterMs: 120_000,
      halfOpenBackoffFactor: 2,
      halfOpenProbes: 1,
      isFailure,
      name: 'api',
      clock,
    });
  });

  it('maxHalfOpenAfterMs defaults to halfOpenAfterMs when that is above 120 s', () => {
    expect(resolveBreakerOptions(W, { halfOpenAfterMs: 300_000 }).maxHalfOpenAfterMs).toBe(300_000);
    expect(resolveBreakerOptions(W, { halfOpenAfterMs: 120_000 }).maxHalfOpenAfterMs).toBe(120_000);
    expect(
      resolveBreakerOptions(W, { halfOpenAfterMs: 5, maxHalfOpenAfterMs: 5 }).maxHalfOpenAfterMs,
    ).toBe(5);
  });

  it('accepts the boundaries', () => {
    expect(() =>
      resolveBreakerOptions(W, {
        mode: 'ratio',
        failureRatio: 1,
        minimumRequests: 1,
        windowMs: 0.5,
        halfOpenAfterMs: 0,
        maxHalfOpenAfterMs: 0,
        halfOpenBackoffFactor: 1,
        halfOpenProbes: 1,
      }),
    ).not.toThrow();
    expect(resolveBreakerOptions(W, { threshold: 1 }).mode).toBe('consecutive');
    expect(resolveBreakerOptions(W, { mode: 'consecutive' }).mode).toBe('consecutive');
  });

  it.each([
    [{ mode: 'count' }, `${W}: mode must be 'consecutive' or 'ratio', got "count"`],
    [{ mode: 1 }, `${W}: mode must be 'consecutive' or 'ratio', got 1`],
    [
      { halfOpenAfterMs: -1 },
      `${W}: halfOpenAfterMs must be a non-negative number of milliseconds, got -1`,
    ],
    [
      { maxHalfOpenAfterMs: Number.NaN },
      `${W}: maxHalfOpenAfterMs must be a non-negative number of milliseconds, got NaN`,
    ],
    [
      { halfOpenAfterMs: 2000, maxHalfOpenAfterMs: 1999 },
      `${W}: maxHalfOpenAfterMs (1999) must not be less than halfOpenAfterMs (2000)`,
    ],
    [
      { halfOpenBackoffFactor: 0.99 },
      `${W}: halfOpenBackoffFactor must be a finite number, at least 1, got 0.99`,
    ],
    [{ halfOpenProbes: 0 }, `${W}: halfOpenProbes must be a positive integer, got 0`],
    [{ isFailure: true }, `${W}: isFailure must be a function, got true`],
    [{ name: 5 }, `${W}: name must be a string, got 5`],
    [{ threshold: 1.5 }, `${W}: threshold must be a positive integer, got 1.5`],
    [
      { clock: {} },
      `${W}: clock must be an object with now() and sleep(ms, signal), got an object`,
    ],
    [
      { mode: 'ratio', failureRatio: 0 },
      `${W}: failureRatio must be a number above 0 and at most 1, got 0`,
    ],
    [
      { mode: 'ratio', failureRatio: 1.01 },
      `${W}: failureRatio must be a number above 0 and at most 1, got 1.01`,
    ],
    [
      { mode: 'ratio', failureRatio: Number.NaN },
      `${W}: failureRatio must be a number above 0 and at most 1, got NaN`,
    ],
    [
      { mode: 'ratio', failureRatio: '0.5' },
      `${W}: failureRatio must be a number above 0 and at most 1, got "0.5"`,
    ],
    [
      { mode: 'ratio', minimumRequests: 0 },
      `${W}: minimumRequests must be a positive integer, got 0`,
    ],
    [
      { mode: 'ratio', windowMs: 0 },
      `${W}: windowMs must be a finite number greater than 0, got 0`,
    ],
    [
      { mode: 'ratio', threshold: 3 },
      `${W}: unknown option "threshold"; threshold is for mode: 'consecutive'; the ratio mode uses failureRatio`,
    ],
    [
      { failureRatio: 0.5 },
      `${W}: unknown option "failureRatio"; failureRatio needs mode: 'ratio'`,
    ],
    [
      { minimumRequests: 5 },
      `${W}: unknown option "minimumRequests"; minimumRequests needs mode: 'ratio'`,
    ],
    [{ windowMs: 5 }, `${W}: unknown option "windowMs"; windowMs needs mode: 'ratio'`],
    [{ resetTimeout: 5 }, `${W}: unknown option "resetTimeout"; use halfOpenAfterMs`],
  ])('%o is refused', (options, message) => {
    expect(messageOf(() => resolveBreakerOptions(W, options))).toBe(message);
  });
});
