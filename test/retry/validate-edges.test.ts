import { describe, expect, it } from 'vitest';
import { isClock, systemClock } from '../../src/retry/clock.js';
import { clampTimerMs, MAX_TIMER_MS, pause } from '../../src/retry/timer.js';
import {
  assertAbortSignal,
  assertDuration,
  assertFunction,
  assertKnownKeys,
  assertNonNegativeInteger,
  assertNumberInRange,
  assertPlainObject,
  assertPositiveInteger,
  assertPositiveNumber,
  nonNegativeInteger,
  showValue,
} from '../../src/retry/validate.js';

const message = (fn: () => unknown): string => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    return (error as Error).message;
  }
  return 'no error';
};

describe('showValue', () => {
  it.each([
    ['abc', '"abc"'],
    ['x'.repeat(80), JSON.stringify('x'.repeat(80))],
    ['x'.repeat(81), JSON.stringify(`${'x'.repeat(77)}...`)],
    [Number.NaN, 'NaN'],
    [-0, '-0'],
    [0, '0'],
    [1.5, '1.5'],
    [Number.NEGATIVE_INFINITY, '-Infinity'],
    [12n, '12n'],
    [null, 'null'],
    [undefined, 'undefined'],
    [true, 'true'],
    [Symbol('s'), 'Symbol(s)'],
    [[1, 2, 3], 'an array of length 3'],
    [{}, 'an object'],
    [Object.create(null), 'an object'],
    [new Map(), 'a Map'],
  ])('%o shows as %s', (value, text) => {
    expect(showValue(value)).toBe(text);
  });

  it('functions show their name', () => {
    function named() {}
    expect(showValue(named)).toBe('function named');
    expect(showValue(() => {})).toBe('a function');
  });
});

describe('the assertions', () => {
  it('assertFunction', () => {
    expect(message(() => assertFunction('f', 1))).toBe('f must be a function, got 1');
    expect(message(() => assertFunction('f', () => {}))).toBe('no error');
  });

  it('assertDuration, with and without Infinity', () => {
    expect(message(() => assertDuration('d', 0))).toBe('no error');
    expect(message(() => assertDuration('d', -1))).toBe(
      'd must be a non-negative number of milliseconds, got -1',
    );
    expect(message(() => assertDuration('d', -1, true))).toBe(
      'd must be a non-negative number of milliseconds (or Infinity), got -1',
    );
    expect(message(() => assertDuration('d', Number.NaN, true))).toBe(
      'd must be a non-negative number of milliseconds (or Infinity), got NaN',
    );
    expect(message(() => assertDuration('d', '1'))).toBe(
      'd must be a non-negative number of milliseconds, got "1"',
    );
    expect(message(() => assertDuration('d', Number.POSITIVE_INFINITY))).toBe(
      'd must be a finite number of milliseconds, got Infinity',
    );
    expect(message(() => assertDuration('d', Number.POSITIVE_INFINITY, true))).toBe('no error');
  });

  it('the integers', () => {
    expect(message(() => assertPositiveInteger('p', 1))).toBe('no error');
    expect(message(() => assertPositiveInteger('p', 0))).toBe(
      'p must be a positive integer, got 0',
    );
    expect(message(() => assertPositiveInteger('p', 1.5))).toBe(
      'p must be a positive integer, got 1.5',
    );
    expect(message(() => assertPositiveInteger('p', '2'))).toBe(
      'p must be a positive integer, got "2"',
    );
    expect(message(() => assertNonNegativeInteger('n', 0))).toBe('no error');
    expect(message(() => assertNonNegativeInteger('n', -1))).toBe(
      'n must be a non-negative integer, got -1',
    );
    expect(message(() => assertNonNegativeInteger('n', 0.5))).toBe(
      'n must be a non-negative integer, got 0.5',
    );
    expect(message(() => assertNonNegativeInteger('n', null))).toBe(
      'n must be a non-negative integer, got null',
    );
    expect(nonNegativeInteger('n', 3)).toBe(3);
    expect(() => nonNegativeInteger('n', -3)).toThrow('n must be a non-negative integer, got -3');
  });

  it('assertNumberInRange includes both ends', () => {
    expect(message(() => assertNumberInRange('r', 1, 1, 5))).toBe('no error');
    expect(message(() => assertNumberInRange('r', 5, 1, 5))).toBe('no error');
    expect(message(() => assertNumberInRange('r', 0.99, 1, 5))).toBe(
      'r must be a finite number from 1 to 5, got 0.99',
    );
    expect(message(() => assertNumberInRange('r', 5.01, 1, 5))).toBe(
      'r must be a finite number from 1 to 5, got 5.01',
    );
    expect(message(() => assertNumberInRange('r', Number.NaN, 1, 5))).toBe(
      'r must be a finite number from 1 to 5, got NaN',
    );
    expect(
      message(() =>
        assertNumberInRange('r', Number.POSITIVE_INFINITY, 1, Number.POSITIVE_INFINITY),
      ),
    ).toBe('r must be a finite number from 1 to Infinity, got Infinity');
    expect(message(() => assertNumberInRange('r', '2', 1, 5))).toBe(
      'r must be a finite number from 1 to 5, got "2"',
    );
  });

  it('assertPositiveNumber', () => {
    expect(message(() => assertPositiveNumber('n', 0.001))).toBe('no error');
    expect(message(() => assertPositiveNumber('n', 0))).toBe(
      'n must be a finite number greater than 0, got 0',
    );
    expect(message(() => assertPositiveNumber('n', Number.POSITIVE_INFINITY))).toBe(
      'n must be a finite number greater than 0, got Infinity',
    );
    expect(message(() => assertPositiveNumber('n', '1'))).toBe(
      'n must be a finite number greater than 0, got "1"',
    );
  });

  it('assertPlainObject', () => {
    expect(message(() => assertPlainObject('o', {}))).toBe('no error');
    expect(message(() => assertPlainObject('o', null))).toBe(
      'o must be an options object, got null',
    );
    expect(message(() => assertPlainObject('o', []))).toBe(
      'o must be an options object, got an array of length 0',
    );
    expect(message(() => assertPlainObject('o', 'x'))).toBe('o must be an options object, got "x"');
  });

  it('assertKnownKeys gives the hint, or lists the known options', () => {
    expect(message(() => assertKnownKeys('W', { a: 1, b: 2 }, ['a', 'b']))).toBe('no error');
    expect(message(() => assertKnownKeys('W', { c: 1 }, ['a', 'b']))).toBe(
      'W: unknown option "c"; known options: a, b',
    );
    expect(message(() => assertKnownKeys('W', { c: 1 }, ['a'], { c: 'use a' }))).toBe(
      'W: unknown option "c"; use a',
    );
    expect(message(() => assertKnownKeys('W', { c: 1 }, ['a'], { d: 'use a' }))).toBe(
      'W: unknown option "c"; known options: a',
    );
  });

  it('assertAbortSignal takes anything shaped like a signal', () => {
    expect(message(() => assertAbortSignal('s', new AbortController().signal))).toBe('no error');
    expect(
      message(() => assertAbortSignal('s', { aborted: false, addEventListener: () => {} })),
    ).toBe('no error');
    expect(
      message(() => assertAbortSignal('s', { aborted: 'no', addEventListener: () => {} })),
    ).toBe('s must be an AbortSignal, got an object');
    expect(message(() => assertAbortSignal('s', { aborted: false }))).toBe(
      's must be an AbortSignal, got an object',
    );
    expect(message(() => assertAbortSignal('s', null))).toBe('s must be an AbortSignal, got null');
    const signalShapedFunction = Object.assign(() => {}, {
      aborted: false,
      addEventListener: () => {},
    });
    expect(message(() => assertAbortSignal('s', signalShapedFunction))).toBe(
      's must be an AbortSignal, got a function',
    );
    expect(message(() => assertAbortSignal('s', () => {}))).toBe(
      's must be an AbortSignal, got a function',
    );
  });
});

describe('timers and the system clock, without waiting', () => {
  it('clampTimerMs keeps delays within what setTimeout takes', () => {
    expect(MAX_TIMER_MS).toBe(2_147_483_647);
    expect(clampTimerMs(-5)).toBe(0);
    expect(clampTimerMs(Number.NaN)).toBe(0);
    expect(clampTimerMs(0)).toBe(0);
    expect(clampTimerMs(0.5)).toBe(0.5);
    expect(clampTimerMs(MAX_TIMER_MS)).toBe(MAX_TIMER_MS);
    expect(clampTimerMs(Number.POSITIVE_INFINITY)).toBe(MAX_TIMER_MS);
  });

  it('the system clock: no sleep for 0, NaN or a negative delay; an aborted signal rejects', async () => {
    await expect(systemClock.sleep(0)).resolves.toBeUndefined();
    await expect(systemClock.sleep(-1)).resolves.toBeUndefined();
    await expect(systemClock.sleep(Number.NaN)).resolves.toBeUndefined();
    const reason = new Error('stop');
    await expect(systemClock.sleep(10, AbortSignal.abort(reason))).rejects.toBe(reason);
    const controller = new AbortController();
    const sleeping = systemClock.sleep(Number.POSITIVE_INFINITY, controller.signal);
    controller.abort(reason);
    await expect(sleeping).rejects.toBe(reason);
    expect(Object.isFrozen(systemClock)).toBe(true);
    expect(typeof systemClock.now()).toBe('number');
  });

  it('pause resolves at once on an aborted signal, and when it aborts', async () => {
    await expect(pause(10_000, AbortSignal.abort())).resolves.toBeUndefined();
    const controller = new AbortController();
    const paused = pause(Number.POSITIVE_INFINITY, controller.signal);
    controller.abort();
    await expect(paused).resolves.toBeUndefined();
  });

  it('isClock wants now() and sleep()', () => {
    expect(isClock(systemClock)).toBe(true);
    expect(isClock({ now: () => 0, sleep: () => Promise.resolve() })).toBe(true);
    expect(isClock({ now: () => 0 })).toBe(false);
    expect(isClock({ sleep: () => Promise.resolve() })).toBe(false);
    expect(isClock(null)).toBe(false);
    expect(isClock(() => 0)).toBe(false);
  });
});
