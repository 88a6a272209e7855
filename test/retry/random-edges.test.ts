import { describe, expect, it } from 'vitest';
import { errorOf } from '../../src/retry/attempt-state.js';
import { getRetrying, Retrying, retrying } from '../../src/retry/index.js';
import {
  assertRandomSource,
  defaultRandom,
  seededRandom,
  uniform,
} from '../../src/retry/random.js';
import { attemptState as at, failed, succeeded } from './helpers.js';

describe('seededRandom', () => {
  it('gives mulberry32 numbers: the same for a seed, whatever its fraction', () => {
    const r = seededRandom(42);
    expect([r(), r(), r()]).toEqual([0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
    expect(seededRandom(42.9)()).toBe(0.6011037519201636);
    expect(seededRandom(-1)()).toBe(0.8964226141106337);
    const zero = seededRandom(0);
    expect([zero(), zero()]).toEqual([0.26642920868471265, 0.0003297457005828619]);
  });

  it('refuses a seed that is not a finite number', () => {
    expect(() => seededRandom(Number.NaN)).toThrow(
      'seededRandom: seed must be a finite number, got NaN',
    );
    expect(() => seededRandom('1' as never)).toThrow(
      'seededRandom: seed must be a finite number, got 1',
    );
    expect(() => seededRandom(Number.POSITIVE_INFINITY)).toThrow(/got Infinity/);
  });

  it('the default source is Math.random', () => {
    const value = defaultRandom();
    expect(value).toBeGreaterThanOrEqual(0);
    expect(value).toBeLessThan(1);
    expect(() => assertRandomSource('r', 1)).toThrow('r must be a function, got 1');
    expect(() => assertRandomSource('r', () => 0)).not.toThrow();
  });
});

describe('uniform', () => {
  const never = () => {
    throw new Error('drawn');
  };
  it('is low + r·(high − low); low when high ≤ low; high when it is infinite', () => {
    expect(uniform(() => 0.5, 10, 20)).toBe(15);
    expect(uniform(() => 0, 10, 20)).toBe(10);
    expect(uniform(never, 10, 10)).toBe(10);
    expect(uniform(never, 10, 5)).toBe(10);
    expect(uniform(never, 0, Number.POSITIVE_INFINITY)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('errorOf', () => {
  it('is the error of a failed attempt, else undefined', () => {
    const error = new Error('x');
    expect(errorOf(at(1, { outcome: failed(error) }))).toBe(error);
    expect(errorOf(at(1, { outcome: succeeded(error) }))).toBeUndefined();
    expect(errorOf(at(1))).toBeUndefined();
  });
});

describe('the @retrying decorator and getRetrying', () => {
  it('names the runner after the method unless a name is given', () => {
    const decorate = retrying({});
    const method = async () => 1;
    const wrapped = decorate(method, { kind: 'method', name: 'load' } as never);
    expect(getRetrying(wrapped)?.options.name).toBe('load');
    const named = retrying({ name: 'mine' })(method, { kind: 'method', name: 'load' } as never);
    expect(getRetrying(named)?.options.name).toBe('mine');
    const symbol = retrying()(method, { kind: 'method', name: Symbol('s') } as never);
    expect(getRetrying(symbol)?.options.name).toBe('Symbol(s)');
  });

  it('refuses anything but a method, and bad options at once', () => {
    expect(() => retrying()(async () => 1, { kind: 'field', name: 'x' } as never)).toThrow(
      '@retrying() decorates methods only, not "field"',
    );
    expect(() => retrying()(async () => 1, undefined as never)).toThrow(
      '@retrying() decorates methods only, not undefined',
    );
    expect(() => retrying({ wait: 1 } as never)).toThrow(/wait must be a function/);
  });

  it('getRetrying finds the runner of a wrapped function only', () => {
    const r = new Retrying();
    expect(getRetrying(r.wrap(() => 1))).toBe(r);
    expect(getRetrying(() => 1)).toBeUndefined();
    expect(getRetrying(Object.assign(() => 1, { retrying: {} }))).toBeUndefined();
    expect(getRetrying({ retrying: r })).toBeUndefined();
    expect(getRetrying(undefined)).toBeUndefined();
  });
});
