import { describe, expect, it } from 'vitest';
import { stop } from '../../src/retry/index.js';
import { attemptState as at } from './helpers.js';

describe('stop strategies', () => {
  it('afterAttempt stops once n attempts were made', () => {
    const s = stop.afterAttempt(3);
    expect([1, 2, 3, 4].map((n) => s(at(n)))).toEqual([false, false, true, true]);
  });
  it('afterDelay stops once the elapsed time reaches the limit', () => {
    const s = stop.afterDelay(1000);
    expect(s(at(2, { elapsedMs: 999 }))).toBe(false);
    expect(s(at(2, { elapsedMs: 1000 }))).toBe(true);
  });
  it('beforeDelay stops when the next sleep would reach the limit', () => {
    const s = stop.beforeDelay(1000);
    expect(s(at(2, { elapsedMs: 600, upcomingDelayMs: 399 }))).toBe(false);
    expect(s(at(2, { elapsedMs: 600, upcomingDelayMs: 400 }))).toBe(true);
    expect(s(at(2, { elapsedMs: 1200, upcomingDelayMs: 0 }))).toBe(true);
  });
  it('never never stops', () => {
    expect(stop.never(at(1_000_000, { elapsedMs: 1e12 }))).toBe(false);
  });
  it('onAbort stops once its signal has aborted', () => {
    const controller = new AbortController();
    const s = stop.onAbort(controller.signal);
    expect(s(at(1))).toBe(false);
    controller.abort();
    expect(s(at(1))).toBe(true);
  });
  it('or stops when either does; and only when both do', () => {
    const either = stop.afterAttempt(5).or(stop.afterDelay(100));
    const both = stop.afterAttempt(5).and(stop.afterDelay(100));
    expect(either(at(2, { elapsedMs: 100 }))).toBe(true);
    expect(either(at(5, { elapsedMs: 0 }))).toBe(true);
    expect(either(at(2, { elapsedMs: 0 }))).toBe(false);
    expect(both(at(2, { elapsedMs: 100 }))).toBe(false);
    expect(both(at(5, { elapsedMs: 100 }))).toBe(true);
  });
  it('accepts plain functions in combinators and describes itself', () => {
    const s = stop.afterAttempt(2).or(function tooLate(state) {
      return state.elapsedMs > 5;
    });
    expect(s(at(1, { elapsedMs: 6 }))).toBe(true);
    expect(s.description).toBe('stop.afterAttempt(2) | tooLate');
  });
  it('rejects bad input at construction with a TypeError naming it', () => {
    expect(() => stop.afterAttempt(0)).toThrow(
      /stop\.afterAttempt\(attempts\) must be a positive integer, got 0/,
    );
    expect(() => stop.afterAttempt(2.5)).toThrow(/got 2\.5/);
    expect(() => stop.afterAttempt(-3)).toThrow(TypeError);
    expect(() => stop.afterDelay(Number.NaN)).toThrow(
      /stop\.afterDelay\(ms\) must be a non-negative number of milliseconds, got NaN/,
    );
    expect(() => stop.beforeDelay(-1)).toThrow(TypeError);
    // @ts-expect-error: not a signal
    expect(() => stop.onAbort({})).toThrow(/must be an AbortSignal/);
    // @ts-expect-error: not a function
    expect(() => stop.afterAttempt(2).or(3)).toThrow(/stop\.or\(other\) must be a function, got 3/);
  });
});
