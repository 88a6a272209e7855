import { describe, expect, it } from 'vitest';
import { seededRandom, wait } from '../../src/retry/index.js';
import { attemptState as at, failed, scripted } from './helpers.js';

const seq = (strategy: (s: ReturnType<typeof at>) => number, n: number, random = () => 0.5) =>
  Array.from({ length: n }, (_, i) => strategy(at(i + 1, { random })));

describe('wait.none and wait.fixed', () => {
  it('none is always 0', () => {
    expect(seq(wait.none(), 3)).toEqual([0, 0, 0]);
  });
  it('fixed returns the same delay for every attempt', () => {
    expect(seq(wait.fixed(750), 4)).toEqual([750, 750, 750, 750]);
  });
  it('rejects a negative or NaN delay at construction, naming it', () => {
    expect(() => wait.fixed(-1)).toThrow(
      /wait\.fixed\(ms\) must be a non-negative number of milliseconds, got -1/,
    );
    expect(() => wait.fixed(Number.NaN)).toThrow(/got NaN/);
    expect(() => wait.fixed(Number.POSITIVE_INFINITY)).toThrow(TypeError);
  });
});

describe('wait.random', () => {
  it('is min + r·(max − min)', () => {
    const w = wait.random(100, 900);
    expect(w(at(1, { random: () => 0 }))).toBe(100);
    expect(w(at(1, { random: () => 0.25 }))).toBe(300);
    expect(w(at(1, { random: () => 0.5 }))).toBe(500);
  });
  it('rejects min > max', () => {
    expect(() => wait.random(5, 1)).toThrow(/minMs \(5\) must not be greater than maxMs \(1\)/);
  });
});

describe('wait.incrementing', () => {
  it('is start + increment·(n − 1), capped', () => {
    expect(seq(wait.incrementing({ start: 500, increment: 250, max: 1200 }), 5)).toEqual([
      500, 750, 1000, 1200, 1200,
    ]);
  });
  it('never goes below 0 with a negative increment', () => {
    expect(seq(wait.incrementing({ start: 300, increment: -200 }), 3)).toEqual([300, 100, 0]);
  });
  it('defaults to 0, 1000, 2000, ...', () => {
    expect(seq(wait.incrementing(), 3)).toEqual([0, 1000, 2000]);
  });
});

describe('wait.exponential', () => {
  it("matches Tenacity's wait_exponential(multiplier=1, min=2, max=10)", () => {
    expect(seq(wait.exponential({ multiplier: 1000, min: 2000, max: 10_000 }), 6)).toEqual([
      2000, 2000, 4000, 8000, 10_000, 10_000,
    ]);
  });
  it('is multiplier·base^(n − 1) with defaults 1000 and 2', () => {
    expect(seq(wait.exponential(), 4)).toEqual([1000, 2000, 4000, 8000]);
    expect(seq(wait.exponential({ multiplier: 100, base: 3 }), 4)).toEqual([100, 300, 900, 2700]);
  });
  it('does not overflow at attempt 10,000', () => {
    const w = wait.exponential({ multiplier: 1000, max: 30_000 });
    expect(w(at(10_000))).toBe(30_000);
    expect(wait.exponential()(at(10_000))).toBe(Number.POSITIVE_INFINITY);
    expect(wait.exponential({ multiplier: 0, max: 5 })(at(10_000))).toBe(0);
  });
  it('validates its options loudly', () => {
    expect(() => wait.exponential({ min: 10, max: 5 })).toThrow(
      /min \(10\) must not be greater than max \(5\)/,
    );
    expect(() => wait.exponential({ multiplier: -1 })).toThrow(
      /multiplier must be a non-negative number/,
    );
    expect(() => wait.exponential({ base: 0.5 })).toThrow(/base must be a finite number from 1/);
    expect(() => wait.exponential({ max: Number.NaN })).toThrow(/max .*got NaN/);
    // @ts-expect-error: unknown option
    expect(() => wait.exponential({ factor: 2 })).toThrow(/unknown option "factor"/);
  });
});

describe('wait.fullJitter', () => {
  it('is U(min, clamp(multiplier·base^(n − 1), min, max))', () => {
    const w = wait.fullJitter({ multiplier: 200, max: 1000 });
    expect(w(at(1, { random: () => 0.5 }))).toBe(100);
    expect(w(at(2, { random: () => 0.5 }))).toBe(200);
    expect(w(at(3, { random: () => 0.25 }))).toBe(200);
    expect(w(at(4, { random: () => 0.999 }))).toBeCloseTo(999, 6);
    expect(w(at(9, { random: () => 0.5 }))).toBe(500);
    expect(wait.fullJitter({ multiplier: 1000, min: 400 })(at(1, { random: () => 0 }))).toBe(400);
  });
  it('with a seeded source gives the same delays every time', () => {
    const a = seq(wait.fullJitter({ multiplier: 200, max: 20_000 }), 6, seededRandom(3));
    const b = seq(wait.fullJitter({ multiplier: 200, max: 20_000 }), 6, seededRandom(3));
    expect(a).toEqual(b);
    a.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(Math.min(20_000, 200 * 2 ** i));
    });
  });
  it('stays finite and capped at attempt 10,000', () => {
    expect(
      wait.fullJitter({ multiplier: 200, max: 20_000 })(at(10_000, { random: () => 0.5 })),
    ).toBe(10_000);
  });
});

describe('wait.equalJitter', () => {
  it('is e/2 + U(0, e/2)', () => {
    const w = wait.equalJitter({ multiplier: 1000, max: 30_000 });
    expect(w(at(1, { random: () => 0 }))).toBe(500);
    expect(w(at(1, { random: () => 0.5 }))).toBe(750);
    expect(w(at(3, { random: () => 0.5 }))).toBe(3000);
    expect(w(at(10_000, { random: () => 0 }))).toBe(15_000);
  });
});

describe('wait.decorrelatedJitter', () => {
  it('draws U(base, 3·base) first, then U(base, 3·previous), capped', () => {
    const w = wait.decorrelatedJitter({ base: 100, max: 1000 });
    expect(w(at(1, { random: () => 0.5 }))).toBe(200);
    expect(w(at(2, { lastDelayMs: 200, random: () => 0.5 }))).toBe(350);
    expect(w(at(3, { lastDelayMs: 350, random: () => 1 }))).toBe(1000);
    expect(w(at(2, { lastDelayMs: 10, random: () => 0 }))).toBe(100);
  });
  it('rejects base > max', () => {
    expect(() => wait.decorrelatedJitter({ base: 10, max: 1 })).toThrow(
      /base \(10\) must not be greater than max \(1\)/,
    );
  });
});

describe('wait.exponentialJitter', () => {
  it('is clamp(multiplier·base^(n − 1) + U(0, jitter), min, max)', () => {
    const w = wait.exponentialJitter({ multiplier: 1000, jitter: 500, max: 5000 });
    expect(w(at(1, { random: () => 0 }))).toBe(1000);
    expect(w(at(2, { random: () => 0.5 }))).toBe(2250);
    expect(w(at(4, { random: () => 0.5 }))).toBe(5000);
    expect(w(at(10_000, { random: () => 0.5 }))).toBe(5000);
  });
});

describe('wait.urllib3', () => {
  it('gives 0, 200, 400, 800, 1600 ms for backoffFactor 100 (urllib3 2.x)', () => {
    expect(seq(wait.urllib3({ backoffFactor: 100 }), 5)).toEqual([0, 200, 400, 800, 1600]);
  });
  it('gives 0, 1, 2, 4, 8 s for backoffFactor 500', () => {
    expect(seq(wait.urllib3({ backoffFactor: 500 }), 5)).toEqual([0, 1000, 2000, 4000, 8000]);
  });
  it('adds U(0, backoffJitter) after the first retry and caps at backoffMax', () => {
    const w = wait.urllib3({ backoffFactor: 1000, backoffJitter: 500, backoffMax: 5000 });
    expect(w(at(1, { random: () => 0.5 }))).toBe(0);
    expect(w(at(2, { random: () => 0.5 }))).toBe(2250);
    expect(w(at(3, { random: () => 0.5 }))).toBe(4250);
    expect(w(at(4, { random: () => 0.5 }))).toBe(5000);
    expect(w(at(10_000, { random: () => 0.5 }))).toBe(5000);
  });
  it('defaults backoffMax to 120 s', () => {
    expect(wait.urllib3({ backoffFactor: 1000 })(at(20))).toBe(120_000);
  });
});

describe('wait.chain', () => {
  it('uses one strategy per attempt, repeating the last', () => {
    expect(seq(wait.chain(wait.fixed(100), wait.fixed(200), wait.fixed(5000)), 5)).toEqual([
      100, 200, 5000, 5000, 5000,
    ]);
  });
  it('accepts plain functions and rejects an empty chain', () => {
    expect(
      seq(
        wait.chain(() => 7),
        2,
      ),
    ).toEqual([7, 7]);
    expect(() => wait.chain()).toThrow(/at least one wait strategy/);
    // @ts-expect-error: not a strategy
    expect(() => wait.chain(5)).toThrow(/wait\.chain argument 1 must be a function, got 5/);
  });
});

describe('wait.fromError and plus', () => {
  it('takes the delay from the error, falling back when it has none', () => {
    const w = wait.fromError((e) => (e as { retryAfterMs?: number }).retryAfterMs, wait.fixed(50));
    expect(w(at(1, { outcome: failed({ retryAfterMs: 3000 }) }))).toBe(3000);
    expect(w(at(1, { outcome: failed(new Error('x')) }))).toBe(50);
  });
  it('rejects a negative delay picked from the error', () => {
    const w = wait.fromError(() => -5);
    expect(() => w(at(1, { outcome: failed(new Error('x')) }))).toThrow(/returned -5/);
  });
  it('plus sums two strategies, including plain functions', () => {
    const w = wait
      .fixed(1000)
      .plus(wait.random(0, 100))
      .plus(() => 1);
    expect(w(at(1, { random: scripted(0.5) }))).toBe(1051);
    expect(w.description).toBe('wait.fixed(1000) + wait.random(0, 100) + custom');
  });
  it('a plain function returning NaN is reported when it runs', () => {
    const w = wait.fixed(1).plus(() => Number.NaN);
    expect(() => w(at(1))).toThrow(/returned NaN/);
  });
});
