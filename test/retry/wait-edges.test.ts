import { describe, expect, it } from 'vitest';
import { wait } from '../../src/retry/index.js';
import { checkDelay, toWait, urllib3Backoff } from '../../src/retry/wait.js';
import { attemptState as at, failed, scripted, succeeded } from './helpers.js';

const never = () => {
  throw new Error('no random number may be drawn');
};

describe('wait strategies: descriptions', () => {
  it('each strategy describes itself with its resolved options', () => {
    expect(wait.none().description).toBe('wait.none()');
    expect(wait.fixed(250).description).toBe('wait.fixed(250)');
    expect(wait.random(1, 9).description).toBe('wait.random(1, 9)');
    expect(wait.incrementing().description).toBe(
      'wait.incrementing({ start: 0, increment: 1000, max: Infinity })',
    );
    expect(wait.exponential().description).toBe(
      'wait.exponential({ multiplier: 1000, base: 2, min: 0, max: Infinity })',
    );
    expect(wait.fullJitter({ multiplier: 200, max: 20_000 }).description).toBe(
      'wait.fullJitter({ multiplier: 200, base: 2, min: 0, max: 20000 })',
    );
    expect(wait.equalJitter({ base: 3, min: 5 }).description).toBe(
      'wait.equalJitter({ multiplier: 1000, base: 3, min: 5, max: Infinity })',
    );
    expect(wait.decorrelatedJitter().description).toBe(
      'wait.decorrelatedJitter({ base: 1000, max: Infinity })',
    );
    expect(wait.exponentialJitter({ jitter: 7 }).description).toBe(
      'wait.exponentialJitter({ multiplier: 1000, base: 2, min: 0, max: Infinity, jitter: 7 })',
    );
    expect(wait.exponentialJitter().description).toContain('jitter: 1000 }');
    expect(wait.urllib3({ backoffFactor: 100 }).description).toBe(
      'wait.urllib3({ backoffFactor: 100, backoffMax: 120000, backoffJitter: 0 })',
    );
    expect(wait.chain(wait.fixed(1), () => 2).description).toBe(
      'wait.chain(wait.fixed(1), custom)',
    );
    expect(wait.fromError(() => undefined).description).toBe('wait.fromError(pick, wait.none())');
    function retryAfter() {
      return undefined;
    }
    expect(wait.fromError(retryAfter, wait.fixed(3)).description).toBe(
      'wait.fromError(retryAfter, wait.fixed(3))',
    );
  });

  it('strategies are frozen, with a read-only description', () => {
    const w = wait.fixed(1);
    expect(Object.isFrozen(w)).toBe(true);
    expect(Object.getOwnPropertyDescriptor(w, 'description')?.writable).toBe(false);
  });
});

describe('toWait and checkDelay', () => {
  it('keeps a strategy, wraps a plain function', () => {
    const w = wait.fixed(1);
    expect(toWait(w)).toBe(w);
    const impostor = Object.assign(() => 1, { plus: () => undefined });
    expect(toWait(impostor)).not.toBe(impostor);
    const described = Object.assign(() => 1, { description: 'x' });
    expect(toWait(described)).not.toBe(described);
    function backoff() {
      return 12;
    }
    const named = toWait(backoff);
    expect(named.description).toBe('backoff');
    expect(named(at(1))).toBe(12);
    expect(() => toWait('x')).toThrow('wait must be a function, got "x"');
  });

  it('a plain function that returns a bad delay is named in the error', () => {
    function broken() {
      return -1;
    }
    expect(() => toWait(broken)(at(1))).toThrow(
      'broken returned -1; a wait must return a non-negative number of milliseconds',
    );
    expect(() => toWait(() => '5' as unknown as number)(at(1))).toThrow(
      'custom wait returned "5"; a wait must return a non-negative number of milliseconds',
    );
  });

  it('checkDelay lets 0 and Infinity through, not NaN, negatives or non-numbers', () => {
    expect(checkDelay(0, 'w')).toBe(0);
    expect(checkDelay(Number.POSITIVE_INFINITY, 'w')).toBe(Number.POSITIVE_INFINITY);
    expect(() => checkDelay(Number.NaN, 'w')).toThrow('w returned NaN;');
    expect(() => checkDelay(-0.5, 'w')).toThrow('w returned -0.5;');
    expect(() => checkDelay(undefined, 'w')).toThrow('w returned undefined;');
  });

  it('plus refuses what is not a function', () => {
    // @ts-expect-error: not a function
    expect(() => wait.none().plus(3)).toThrow('wait.plus(other) must be a function, got 3');
  });
});

describe('wait strategies: exact values at the boundaries', () => {
  it('random draws min + r·(max − min), and min when they are equal', () => {
    expect(wait.random(100, 300)(at(1, { random: () => 0.25 }))).toBe(150);
    expect(wait.random(7, 7)(at(1, { random: never }))).toBe(7);
    expect(() => wait.random(-1, 3)).toThrow(
      'wait.random(minMs, maxMs): minMs must be a non-negative number of milliseconds, got -1',
    );
    expect(() => wait.random(1, Number.NaN)).toThrow(
      'wait.random(minMs, maxMs): maxMs must be a non-negative number of milliseconds, got NaN',
    );
    expect(() => wait.random(5, 1)).toThrow(
      'wait.random: minMs (5) must not be greater than maxMs (1)',
    );
  });

  it('incrementing: attempt 0 counts as 1; capped at max; never below 0', () => {
    const w = wait.incrementing({ start: 500, increment: 250, max: 1000 });
    expect([0, 1, 2, 3, 4].map((n) => w(at(n)))).toEqual([500, 500, 750, 1000, 1000]);
    const down = wait.incrementing({ start: 100, increment: -60 });
    expect([1, 2, 3].map((n) => down(at(n)))).toEqual([100, 40, 0]);
    expect(() => wait.incrementing({ increment: Number.POSITIVE_INFINITY })).toThrow(
      'wait.incrementing: increment must be a finite number of milliseconds, got Infinity',
    );
    expect(() => wait.incrementing({ increment: '1' as unknown as number })).toThrow(
      'wait.incrementing: increment must be a finite number of milliseconds, got "1"',
    );
    expect(() => wait.incrementing({ start: -1 })).toThrow(
      'wait.incrementing: start must be a non-negative number of milliseconds, got -1',
    );
    expect(() => wait.incrementing({ max: -1 })).toThrow(
      'wait.incrementing: max must be a non-negative number of milliseconds (or Infinity), got -1',
    );
    expect(() => wait.incrementing({ step: 1 } as never)).toThrow(/unknown option "step"/);
    expect(() => wait.incrementing(null as never)).toThrow(/wait\.incrementing options must be/);
  });

  it('exponential: min and max bound it; attempt 0 counts as 1; a zero multiplier stays 0', () => {
    const w = wait.exponential({ multiplier: 100, min: 150, max: 350 });
    expect([0, 1, 2, 3, 4].map((n) => w(at(n)))).toEqual([150, 150, 200, 350, 350]);
    const zero = wait.exponential({ multiplier: 0, max: Number.POSITIVE_INFINITY });
    expect(zero(at(5000))).toBe(0);
    const base3 = wait.exponential({ multiplier: 1, base: 3 });
    expect([1, 2, 3].map((n) => base3(at(n)))).toEqual([1, 3, 9]);
    // Past Number.MAX_VALUE with no cap: Infinity, not NaN.
    expect(wait.exponential({ multiplier: 1 })(at(5000))).toBe(Number.POSITIVE_INFINITY);
    expect(wait.exponential({ min: 5, max: 5 })(at(3))).toBe(5);
  });

  it('exponential options are checked, with their messages', () => {
    expect(() => wait.exponential({ min: 10, max: 5 })).toThrow(
      'wait.exponential: min (10) must not be greater than max (5)',
    );
    expect(() => wait.exponential({ min: -1 })).toThrow(
      'wait.exponential: min must be a non-negative number of milliseconds, got -1',
    );
    expect(() => wait.exponential({ multiplier: Number.POSITIVE_INFINITY })).toThrow(
      'wait.exponential: multiplier must be a finite number of milliseconds, got Infinity',
    );
    expect(() => wait.fullJitter({ base: Number.POSITIVE_INFINITY })).toThrow(
      /wait\.fullJitter: base/,
    );
    expect(() => wait.equalJitter(null as never)).not.toThrow();
    expect(() => wait.equalJitter([] as never)).toThrow(/wait\.equalJitter options must be/);
    expect(() => wait.exponentialJitter({ jitter: -1 })).toThrow(
      'wait.exponentialJitter: jitter must be a non-negative number of milliseconds, got -1',
    );
    expect(() => wait.exponential({ jitter: 1 } as never)).toThrow(/unknown option "jitter"/);
    expect(() => wait.exponential({ base: 1 })).not.toThrow();
  });

  it('fullJitter draws between min and the capped exponential', () => {
    const w = wait.fullJitter({ multiplier: 100, min: 20, max: 300 });
    expect(w(at(1, { random: () => 0.5 }))).toBe(60);
    expect(w(at(3, { random: () => 1 }))).toBe(300);
    expect(w(at(3, { random: () => 0 }))).toBe(20);
    // When the exponential is below min, it is min, drawn from nothing.
    expect(wait.fullJitter({ multiplier: 1, min: 50 })(at(1, { random: never }))).toBe(50);
  });

  it('equalJitter is e/2 + U(0, e/2), and at least min', () => {
    const w = wait.equalJitter({ multiplier: 100, max: 1000 });
    expect(w(at(1, { random: () => 0 }))).toBe(50);
    expect(w(at(1, { random: () => 0.5 }))).toBe(75);
    expect(w(at(2, { random: () => 1 }))).toBe(200);
    expect(w(at(10, { random: () => 0 }))).toBe(500);
    const floored = wait.equalJitter({ multiplier: 100, min: 80 });
    // e = max(100, 80) = 100: U(50, 100) with 0 gives 50, raised to min.
    expect(floored(at(1, { random: () => 0 }))).toBe(80);
    expect(floored(at(1, { random: () => 1 }))).toBe(100);
  });

  it('decorrelatedJitter starts from base, then from the last delay, at least base', () => {
    const w = wait.decorrelatedJitter({ base: 100, max: 1000 });
    expect(w(at(1, { random: () => 1, lastDelayMs: 999 }))).toBe(300);
    expect(w(at(0, { random: () => 1, lastDelayMs: 999 }))).toBe(300);
    expect(w(at(2, { random: () => 1, lastDelayMs: 200 }))).toBe(600);
    expect(w(at(2, { random: () => 1, lastDelayMs: 10 }))).toBe(300);
    expect(w(at(2, { random: () => 0, lastDelayMs: 200 }))).toBe(100);
    expect(w(at(3, { random: () => 1, lastDelayMs: 500 }))).toBe(1000);
    expect(() => wait.decorrelatedJitter({ base: 10, max: 1 })).toThrow(
      'wait.decorrelatedJitter: base (10) must not be greater than max (1)',
    );
    expect(() => wait.decorrelatedJitter({ base: -1 })).toThrow(
      'wait.decorrelatedJitter: base must be a non-negative number of milliseconds, got -1',
    );
    expect(() => wait.decorrelatedJitter({ max: -1 })).toThrow(
      'wait.decorrelatedJitter: max must be a non-negative number of milliseconds (or Infinity), got -1',
    );
    expect(() => wait.decorrelatedJitter({ cap: 1 } as never)).toThrow(/unknown option "cap"/);
    expect(() => wait.decorrelatedJitter(5 as never)).toThrow(
      /wait\.decorrelatedJitter options must be/,
    );
    expect(wait.decorrelatedJitter({ base: 5, max: 5 })(at(4, { random: () => 1 }))).toBe(5);
  });

  it('exponentialJitter adds U(0, jitter) before the bounds', () => {
    const w = wait.exponentialJitter({ multiplier: 100, jitter: 50, min: 120, max: 420 });
    expect(w(at(1, { random: () => 0 }))).toBe(120);
    expect(w(at(1, { random: () => 1 }))).toBe(150);
    expect(w(at(2, { random: () => 0.5 }))).toBe(225);
    expect(w(at(3, { random: () => 1 }))).toBe(420);
    expect(wait.exponentialJitter({ multiplier: 10, jitter: 0 })(at(2, { random: never }))).toBe(
      20,
    );
  });

  it('urllib3: options are checked, jitter only drawn when there is some', () => {
    expect(() => wait.urllib3({ backoffFactor: -1 })).toThrow(
      'wait.urllib3: backoffFactor must be a non-negative number of milliseconds, got -1',
    );
    expect(() => wait.urllib3({ backoffFactor: 1, backoffMax: -1 })).toThrow(
      'wait.urllib3: backoffMax must be a non-negative number of milliseconds (or Infinity), got -1',
    );
    expect(() => wait.urllib3({ backoffFactor: 1, backoffJitter: Number.NaN })).toThrow(
      'wait.urllib3: backoffJitter must be a non-negative number of milliseconds, got NaN',
    );
    expect(() => wait.urllib3({ backoffFactor: 1, factor: 2 } as never)).toThrow(
      /unknown option "factor"/,
    );
    expect(() => wait.urllib3(undefined as never)).toThrow(/wait\.urllib3 options must be/);
    const w = wait.urllib3({ backoffFactor: 100 });
    expect([0, 1, 2, 3].map((n) => w(at(n, { random: never })))).toEqual([0, 0, 200, 400]);
    const j = wait.urllib3({ backoffFactor: 100, backoffJitter: 40 });
    expect(j(at(2, { random: () => 0.5 }))).toBe(220);
    expect(j(at(1, { random: never }))).toBe(0);
  });

  it('urllib3Backoff caps at max and never goes below 0', () => {
    expect(urllib3Backoff(2, 100, 150, 0, never)).toBe(150);
    expect(urllib3Backoff(3, 100, 1000, 10, () => 1)).toBe(410);
    expect(urllib3Backoff(2, 0, 1000, 0, never)).toBe(0);
    expect(urllib3Backoff(1, 100, 1000, 50, never)).toBe(0);
    expect(urllib3Backoff(5000, 100, Number.POSITIVE_INFINITY, 0, never)).toBe(
      Number.POSITIVE_INFINITY,
    );
  });

  it('chain: attempt 0 uses the first, past the end the last', () => {
    const w = wait.chain(wait.fixed(1), wait.fixed(2), wait.fixed(3));
    expect([0, 1, 2, 3, 4, 99].map((n) => w(at(n)))).toEqual([1, 1, 2, 3, 3, 3]);
    expect(wait.chain(wait.fixed(8))(at(5))).toBe(8);
    expect(() => wait.chain()).toThrow('wait.chain needs at least one wait strategy, got none');
    // @ts-expect-error: not a function
    expect(() => wait.chain(wait.fixed(1), 'x')).toThrow(
      'wait.chain argument 2 must be a function, got "x"',
    );
  });

  it('fromError: picks from a failure only; undefined falls back; a bad pick is named', () => {
    const seen: unknown[] = [];
    const w = wait.fromError((error, state) => {
      seen.push(error, state.attempt);
      return error === 'none' ? undefined : 42;
    }, wait.fixed(7));
    expect(w(at(2, { outcome: failed('x') }))).toBe(42);
    expect(seen).toEqual(['x', 2]);
    expect(w(at(1, { outcome: failed('none') }))).toBe(7);
    expect(w(at(1, { outcome: succeeded(1) }))).toBe(7);
    expect(w(at(1))).toBe(7);
    expect(seen).toHaveLength(4);
    expect(wait.fromError(() => 0)(at(1, { outcome: failed('x') }))).toBe(0);
    expect(wait.fromError(() => undefined)(at(1, { outcome: failed('x') }))).toBe(0);
    expect(() => wait.fromError(() => Number.NaN)(at(1, { outcome: failed('x') }))).toThrow(
      'wait.fromError(pick) returned NaN; a wait must return a non-negative number of milliseconds',
    );
    // @ts-expect-error: not a function
    expect(() => wait.fromError(5)).toThrow('wait.fromError(pick) must be a function, got 5');
    // @ts-expect-error: not a function
    expect(() => wait.fromError(() => 1, 5)).toThrow(
      'wait.fromError(pick, fallback) must be a function, got 5',
    );
  });

  it('plus adds both delays for each state', () => {
    const w = wait.exponential({ multiplier: 10 }).plus((s) => s.attempt);
    expect([1, 2, 3].map((n) => w(at(n)))).toEqual([11, 22, 43]);
    const r = wait.random(0, 10).plus(wait.random(0, 100));
    expect(r(at(1, { random: scripted(0.5, 0.25) }))).toBe(30);
  });
});
