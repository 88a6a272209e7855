import type { AttemptState } from './attempt-state.js';
import { uniform } from './random.js';
import {
  assertDuration,
  assertFunction,
  assertKnownKeys,
  assertNumberInRange,
  assertPlainObject,
  showValue,
} from './validate.js';

/**
 * Computes the delay in milliseconds before the next attempt, from the state of the attempt that
 * just failed (`state.attempt` is 1 after the first failure).
 */
export interface WaitStrategy {
  (state: AttemptState<unknown>): number;
  /** The sum of both delays. */
  plus(other: WaitLike): WaitStrategy;
  /** Human-readable form, for logs and `dogged plan`. */
  readonly description: string;
}

/** A wait strategy or any plain function of the attempt state returning milliseconds. */
export type WaitLike = WaitStrategy | ((state: AttemptState<unknown>) => number);

function makeWait(
  compute: (state: AttemptState<unknown>) => number,
  description: string,
): WaitStrategy {
  const strategy = ((state: AttemptState<unknown>) => compute(state)) as WaitStrategy & {
    description: string;
  };
  strategy.plus = (other) => {
    const b = toWait(other, 'wait.plus(other)');
    return makeWait((s) => compute(s) + b(s), `${description} + ${b.description}`);
  };
  Object.defineProperty(strategy, 'description', { value: description });
  return Object.freeze(strategy);
}

/** Accepts a strategy or a plain function; anything else is a `TypeError` naming `where`. */
export function toWait(like: unknown, where = 'wait'): WaitStrategy {
  assertFunction(where, like);
  if (typeof (like as Partial<WaitStrategy>).plus === 'function' && 'description' in like)
    return like as WaitStrategy;
  const fn = like as (state: AttemptState<unknown>) => number;
  return makeWait((s) => checkDelay(fn(s), fn.name || 'custom wait'), fn.name || 'custom');
}

/** A delay a strategy produced must be usable: a number, not NaN, not negative. */
export function checkDelay(delay: unknown, where: string): number {
  if (typeof delay !== 'number' || Number.isNaN(delay) || delay < 0) {
    throw new TypeError(
      `${where} returned ${showValue(delay)}; a wait must return a non-negative number of milliseconds`,
    );
  }
  return delay;
}

function clamp(value: number, min: number, max: number): number {
  // Stryker disable next-line EqualityOperator: `<=` is equivalent: at value === min both branches give min
  return value < min ? min : Math.min(value, max);
}

/**
 * `multiplier · base^(attempt − 1)` without overflow: past `Number.MAX_VALUE` it is `Infinity`
 * (then capped by the caller's `max`), and a zero multiplier stays 0 instead of `0 · ∞ = NaN`.
 */
function exponent(multiplier: number, base: number, attempt: number): number {
  if (multiplier === 0) return 0;
  const power = base ** Math.max(0, attempt - 1);
  const value = multiplier * power;
  return Number.isNaN(value) ? Number.POSITIVE_INFINITY : value;
}

/** Options shared by the exponential family. All in milliseconds. */
export interface ExponentialOptions {
  /**
   * The first delay, before growth.
   * @default 1000
   */
  multiplier?: number;
  /**
   * Growth factor per attempt; at least 1.
   * @default 2
   */
  base?: number;
  /**
   * Lower bound of every delay.
   * @default 0
   */
  min?: number;
  /**
   * Upper bound of every delay (`Infinity` for none).
   * @default Infinity
   */
  max?: number;
}

interface ResolvedExponential {
  multiplier: number;
  base: number;
  min: number;
  max: number;
}

const EXPONENTIAL_KEYS = ['multiplier', 'base', 'min', 'max'] as const;

function resolveExponential(
  where: string,
  options: unknown,
  // Stryker disable next-line ArrayDeclaration: a default holding a made-up key differs only for an option of that very name, which no caller or user passes
  extraKeys: readonly string[] = [],
): ResolvedExponential {
  const o = (options ?? {}) as Record<string, unknown>;
  assertPlainObject(`${where} options`, o);
  assertKnownKeys(where, o, [...EXPONENTIAL_KEYS, ...extraKeys]);
  const multiplier = o.multiplier ?? 1000;
  const base = o.base ?? 2;
  const min = o.min ?? 0;
  const max = o.max ?? Number.POSITIVE_INFINITY;
  assertDuration(`${where}: multiplier`, multiplier);
  assertNumberInRange(`${where}: base`, base, 1, Number.MAX_VALUE);
  assertDuration(`${where}: min`, min);
  assertDuration(`${where}: max`, max, true);
  if (min > max)
    throw new TypeError(`${where}: min (${min}) must not be greater than max (${max})`);
  return { multiplier, base, min, max };
}

function fmt(options: Record<string, unknown>): string {
  // Stryker disable next-line MethodExpression: equivalent: every caller passes resolved options, with no undefined value to filter out
  const parts = Object.entries(options)
    .filter(
      ([, v]) =>
        // Stryker disable next-line ConditionalExpression: equivalent: every caller passes resolved options, with no undefined value to filter out
        v !== undefined,
    )
    .map(([k, v]) => `${k}: ${v}`);
  // Stryker disable next-line StringLiteral: equivalent: every caller passes resolved options, never an empty set
  return parts.length ? `{ ${parts.join(', ')} }` : '';
}

/** Options of {@link wait.exponentialJitter}. */
export interface ExponentialJitterOptions extends ExponentialOptions {
  /**
   * Upper bound of the uniform random amount added to each delay.
   * @default 1000
   */
  jitter?: number;
}

/** Options of {@link wait.urllib3}. */
export interface Urllib3BackoffOptions {
  /** The backoff factor in milliseconds (urllib3's `backoff_factor` × 1000). */
  backoffFactor: number;
  /**
   * Cap on each delay.
   * @default 120000
   */
  backoffMax?: number;
  /**
   * Upper bound of the uniform random amount added to each delay (urllib3's `backoff_jitter` × 1000).
   * @default 0
   */
  backoffJitter?: number;
}

/** Options of {@link wait.incrementing}. */
export interface IncrementingOptions {
  /**
   * The first delay.
   * @default 0
   */
  start?: number;
  /**
   * Added per attempt (may be negative; the delay never goes below 0).
   * @default 1000
   */
  increment?: number;
  /**
   * Upper bound.
   * @default Infinity
   */
  max?: number;
}

/** Options of {@link wait.decorrelatedJitter}. */
export interface DecorrelatedJitterOptions {
  /**
   * The smallest delay, and the first delay's lower bound.
   * @default 1000
   */
  base?: number;
  /**
   * Upper bound.
   * @default Infinity
   */
  max?: number;
}

/**
 * Wait strategies. Every formula uses `n = state.attempt`, the number of the attempt that just
 * failed (1 before the first retry), and milliseconds throughout. Random strategies draw from
 * `state.random` (the run's `random` option), so a seeded source makes them exact.
 */
export const wait = {
  /**
   * No delay: 0.
   * @example retry(fn, { wait: wait.none() })
   */
  none(): WaitStrategy {
    return makeWait(() => 0, 'wait.none()');
  },

  /**
   * The same delay every time: `ms`.
   * @example wait.fixed(500) // 500, 500, 500, ...
   */
  fixed(ms: number): WaitStrategy {
    assertDuration('wait.fixed(ms)', ms);
    return makeWait(() => ms, `wait.fixed(${ms})`);
  },

  /**
   * A uniform random delay: `U(minMs, maxMs)`.
   * @example wait.random(100, 900)
   */
  random(minMs: number, maxMs: number): WaitStrategy {
    assertDuration('wait.random(minMs, maxMs): minMs', minMs);
    assertDuration('wait.random(minMs, maxMs): maxMs', maxMs);
    if (minMs > maxMs)
      throw new TypeError(
        `wait.random: minMs (${minMs}) must not be greater than maxMs (${maxMs})`,
      );
    return makeWait((s) => uniform(s.random, minMs, maxMs), `wait.random(${minMs}, ${maxMs})`);
  },

  /**
   * A linear delay: `clamp(start + increment · (n − 1), 0, max)`.
   * @example wait.incrementing({ start: 500, increment: 250, max: 2000 }) // 500, 750, 1000, ... 2000
   */
  incrementing(options: IncrementingOptions = {}): WaitStrategy {
    assertPlainObject('wait.incrementing options', options);
    assertKnownKeys('wait.incrementing', options as Record<string, unknown>, [
      'start',
      'increment',
      'max',
    ]);
    const { start = 0, increment = 1000, max = Number.POSITIVE_INFINITY } = options;
    assertDuration('wait.incrementing: start', start);
    if (typeof increment !== 'number' || !Number.isFinite(increment)) {
      throw new TypeError(
        `wait.incrementing: increment must be a finite number of milliseconds, got ${showValue(increment)}`,
      );
    }
    assertDuration('wait.incrementing: max', max, true);
    return makeWait(
      (s) => clamp(start + increment * Math.max(0, s.attempt - 1), 0, max),
      `wait.incrementing(${fmt({ start, increment, max })})`,
    );
  },

  /**
   * Exponential growth: `clamp(multiplier · base^(n − 1), min, max)`.
   *
   * Safe at any attempt number: past `Number.MAX_VALUE` the value is capped at `max`.
   * @example
   * // Tenacity's wait_exponential(multiplier=1, min=2, max=10): 2 s, 2 s, 4 s, 8 s, 10 s, ...
   * wait.exponential({ multiplier: 1000, min: 2000, max: 10_000 })
   */
  exponential(options: ExponentialOptions = {}): WaitStrategy {
    const o = resolveExponential('wait.exponential', options);
    return makeWait(
      (s) => clamp(exponent(o.multiplier, o.base, s.attempt), o.min, o.max),
      `wait.exponential(${fmt({ ...o })})`,
    );
  },

  /**
   * "Full jitter" (AWS architecture blog): a uniform draw between `min` and the exponential
   * delay: `U(min, clamp(multiplier · base^(n − 1), min, max))`. The best spread of retries in
   * time, and dogged's default (`multiplier: 200, max: 20000`).
   * @example wait.fullJitter({ multiplier: 200, max: 20_000 }) // U(0,200), U(0,400), U(0,800), ...
   */
  fullJitter(options: ExponentialOptions = {}): WaitStrategy {
    const o = resolveExponential('wait.fullJitter', options);
    return makeWait(
      (s) =>
        uniform(s.random, o.min, clamp(exponent(o.multiplier, o.base, s.attempt), o.min, o.max)),
      `wait.fullJitter(${fmt({ ...o })})`,
    );
  },

  /**
   * "Equal jitter": half the exponential delay fixed, half random:
   * `e/2 + U(0, e/2)` with `e = clamp(multiplier · base^(n − 1), min, max)`, then at least `min`.
   * @example wait.equalJitter({ multiplier: 1000, max: 30_000 }) // [500,1000], [1000,2000], ...
   */
  equalJitter(options: ExponentialOptions = {}): WaitStrategy {
    const o = resolveExponential('wait.equalJitter', options);
    return makeWait(
      (s) => {
        const half = clamp(exponent(o.multiplier, o.base, s.attempt), o.min, o.max) / 2;
        return Math.max(o.min, uniform(s.random, half, half * 2));
      },
      `wait.equalJitter(${fmt({ ...o })})`,
    );
  },

  /**
   * "Decorrelated jitter" (Marc Brooker): each delay is drawn from the previous one,
   * `min(max, U(base, 3 · previous))`, where `previous` is the delay slept before this attempt
   * (`state.lastDelayMs`), or `base` before the first retry. Combined with `plus` or `chain`,
   * `previous` is the total that was slept.
   * @example wait.decorrelatedJitter({ base: 500, max: 30_000 }) // U(500,1500), then U(500, 3·that), ...
   */
  decorrelatedJitter(options: DecorrelatedJitterOptions = {}): WaitStrategy {
    assertPlainObject('wait.decorrelatedJitter options', options);
    assertKnownKeys('wait.decorrelatedJitter', options as Record<string, unknown>, ['base', 'max']);
    const { base = 1000, max = Number.POSITIVE_INFINITY } = options;
    assertDuration('wait.decorrelatedJitter: base', base);
    assertDuration('wait.decorrelatedJitter: max', max, true);
    if (base > max)
      throw new TypeError(
        `wait.decorrelatedJitter: base (${base}) must not be greater than max (${max})`,
      );
    return makeWait(
      (s) => {
        const previous = s.attempt <= 1 ? base : Math.max(base, s.lastDelayMs);
        return Math.min(max, uniform(s.random, base, previous * 3));
      },
      `wait.decorrelatedJitter(${fmt({ base, max })})`,
    );
  },

  /**
   * Exponential plus additive jitter (Tenacity's `wait_exponential_jitter`):
   * `clamp(multiplier · base^(n − 1) + U(0, jitter), min, max)`.
   * @example wait.exponentialJitter({ multiplier: 1000, jitter: 500, max: 60_000 }) // 1000 + U(0,500), 2000 + U(0,500), ...
   */
  exponentialJitter(options: ExponentialJitterOptions = {}): WaitStrategy {
    const o = resolveExponential('wait.exponentialJitter', options, ['jitter']);
    const jitter = options.jitter ?? 1000;
    assertDuration('wait.exponentialJitter: jitter', jitter);
    return makeWait(
      (s) =>
        clamp(
          exponent(o.multiplier, o.base, s.attempt) + uniform(s.random, 0, jitter),
          o.min,
          o.max,
        ),
      `wait.exponentialJitter(${fmt({ ...o, jitter })})`,
    );
  },

  /**
   * urllib3 2.x's exact backoff: no delay before the first retry of a run, then
   * `min(backoffMax, backoffFactor · 2^(n − 1) + U(0, backoffJitter))`.
   *
   * With `backoffFactor: 100` the delays are 0, 200, 400, 800, 1600 ms. (urllib3's documentation
   * and many guides quote 0, 1, 2, 4, 8 s for a factor of 1 s; the code has always computed
   * 0, 2, 4, 8, 16 s. dogged follows the code; use `backoffFactor: 500` for 0, 1, 2, 4, 8 s.)
   * @example wait.urllib3({ backoffFactor: 1000, backoffJitter: 500 }) // 0, 2000+U(0,500), 4000+U(0,500), ...
   */
  urllib3(options: Urllib3BackoffOptions): WaitStrategy {
    assertPlainObject('wait.urllib3 options', options);
    assertKnownKeys('wait.urllib3', options as unknown as Record<string, unknown>, [
      'backoffFactor',
      'backoffMax',
      'backoffJitter',
    ]);
    const { backoffFactor, backoffMax = 120_000, backoffJitter = 0 } = options;
    assertDuration('wait.urllib3: backoffFactor', backoffFactor);
    assertDuration('wait.urllib3: backoffMax', backoffMax, true);
    assertDuration('wait.urllib3: backoffJitter', backoffJitter);
    return makeWait(
      (s) => urllib3Backoff(s.attempt, backoffFactor, backoffMax, backoffJitter, s.random),
      `wait.urllib3(${fmt({ backoffFactor, backoffMax, backoffJitter })})`,
    );
  },

  /**
   * One strategy per attempt, the last one repeating: attempt `n` uses `waits[min(n, k) − 1]`.
   * @example wait.chain(wait.fixed(100), wait.fixed(100), wait.fixed(5000)) // 100, 100, 5000, 5000, ...
   */
  chain(...waits: WaitLike[]): WaitStrategy {
    if (waits.length === 0)
      throw new TypeError('wait.chain needs at least one wait strategy, got none');
    const strategies = waits.map((w, i) => toWait(w, `wait.chain argument ${i + 1}`));
    const last = strategies.length - 1;
    return makeWait(
      (s) => (strategies[Math.min(Math.max(s.attempt, 1), last + 1) - 1] as WaitStrategy)(s),
      `wait.chain(${strategies.map((w) => w.description).join(', ')})`,
    );
  },

  /**
   * The delay given by the error itself (a Retry-After header, a rate-limit reset time); when
   * `pick` returns undefined (or the attempt returned a value), `fallback` decides.
   * @example
   * wait.fromError((err) => (err instanceof RateLimited ? err.retryAfterMs : undefined), wait.fullJitter())
   */
  fromError(
    pick: (error: unknown, state: AttemptState<unknown>) => number | undefined,
    fallback: WaitLike = wait.none(),
  ): WaitStrategy {
    assertFunction('wait.fromError(pick)', pick);
    const other = toWait(fallback, 'wait.fromError(pick, fallback)');
    return makeWait(
      (s) => {
        const outcome = s.outcome;
        if (outcome && !outcome.ok) {
          const ms = pick(outcome.error, s);
          if (ms !== undefined) return checkDelay(ms, 'wait.fromError(pick)');
        }
        return other(s);
      },
      `wait.fromError(${pick.name || 'pick'}, ${other.description})`,
    );
  },
} as const;

/**
 * urllib3's formula on its own, for callers that count retries themselves (the HTTP policy counts
 * consecutive errors since the last redirect).
 */
export function urllib3Backoff(
  consecutiveErrors: number,
  factor: number,
  max: number,
  jitter: number,
  random: () => number,
): number {
  if (consecutiveErrors <= 1) return 0;
  const value = exponent(factor, 2, consecutiveErrors) + (jitter > 0 ? random() * jitter : 0);
  return Math.max(0, Math.min(max, value));
}
