import type { AttemptState } from './attempt-state.js';
import {
  assertAbortSignal,
  assertDuration,
  assertFunction,
  assertPositiveInteger,
} from './validate.js';

/**
 * Decides whether to give up. Called after an attempt that the retry condition wants to retry,
 * once the next delay is known (`state.upcomingDelayMs`); `true` ends the run.
 */
export interface StopStrategy {
  (state: AttemptState<unknown>): boolean;
  /** Stops when either strategy would. */
  or(other: StopLike): StopStrategy;
  /** Stops only when both strategies would. */
  and(other: StopLike): StopStrategy;
  /** Human-readable form, for logs and `dogged plan`. */
  readonly description: string;
}

/** A stop strategy or any plain function of the attempt state. */
export type StopLike = StopStrategy | ((state: AttemptState<unknown>) => boolean);

function makeStop(
  test: (state: AttemptState<unknown>) => boolean,
  description: string,
): StopStrategy {
  const strategy = ((state: AttemptState<unknown>) => test(state)) as StopStrategy & {
    description: string;
  };
  strategy.or = (other) => {
    const b = toStop(other, 'stop.or(other)');
    return makeStop((s) => test(s) || b(s), `${description} | ${b.description}`);
  };
  strategy.and = (other) => {
    const b = toStop(other, 'stop.and(other)');
    return makeStop((s) => test(s) && b(s), `(${description} & ${b.description})`);
  };
  Object.defineProperty(strategy, 'description', { value: description });
  return Object.freeze(strategy);
}

/** Accepts a strategy or a plain function; anything else is a `TypeError` naming `where`. */
export function toStop(like: unknown, where = 'stop'): StopStrategy {
  assertFunction(where, like);
  if (typeof (like as Partial<StopStrategy>).or === 'function' && 'description' in like)
    return like as StopStrategy;
  const fn = like as (state: AttemptState<unknown>) => boolean;
  return makeStop((s) => fn(s) === true, fn.name || 'custom');
}

/**
 * Stop strategies.
 *
 * @example
 * // Give up after 5 attempts or when the next sleep would cross 30 s, whichever comes first.
 * stop.afterAttempt(5).or(stop.beforeDelay(30_000))
 */
export const stop = {
  /**
   * Stops once `attempts` attempts have been made: `state.attempt >= attempts`.
   * @example stop.afterAttempt(3) // at most 3 attempts: the first try and 2 retries
   */
  afterAttempt(attempts: number): StopStrategy {
    assertPositiveInteger('stop.afterAttempt(attempts)', attempts);
    return makeStop((s) => s.attempt >= attempts, `stop.afterAttempt(${attempts})`);
  },

  /**
   * Stops once `ms` milliseconds have passed since the first attempt started:
   * `state.elapsedMs >= ms`. The last sleep may end past `ms`; see {@link stop.beforeDelay}.
   * @example stop.afterDelay(10_000)
   */
  afterDelay(ms: number): StopStrategy {
    assertDuration('stop.afterDelay(ms)', ms);
    return makeStop((s) => s.elapsedMs >= ms, `stop.afterDelay(${ms})`);
  },

  /**
   * Stops when the next sleep would reach or cross `ms` milliseconds since the first attempt
   * started: `state.elapsedMs + state.upcomingDelayMs >= ms`. The run never sleeps past `ms`.
   * @example stop.beforeDelay(60_000) // never start an attempt more than a minute in
   */
  beforeDelay(ms: number): StopStrategy {
    assertDuration('stop.beforeDelay(ms)', ms);
    return makeStop((s) => s.elapsedMs + (s.upcomingDelayMs ?? 0) >= ms, `stop.beforeDelay(${ms})`);
  },

  /**
   * Stops (gives up gracefully, with the last outcome) once `signal` has aborted. Unlike the
   * run's `signal` option, it does not interrupt the attempt in flight or a sleep.
   * @example stop.afterAttempt(5).or(stop.onAbort(shutdown.signal))
   */
  onAbort(signal: AbortSignal): StopStrategy {
    assertAbortSignal('stop.onAbort(signal)', signal);
    return makeStop(() => signal.aborted, 'stop.onAbort(signal)');
  },

  /** Never stops: retries until success, a non-retriable outcome, or an abort. Use with care. */
  never: makeStop(() => false, 'stop.never'),
} as const;
