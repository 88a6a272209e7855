import type { AttemptState } from './attempt-state.js';
import { type Clock, isClock, systemClock } from './clock.js';
import { defaultRandom, type RandomSource } from './random.js';
import {
  ignoresResults,
  type RetryCondition,
  type RetryConditionLike,
  retryIf,
  toRetryCondition,
} from './retry-if.js';
import { type StopLike, type StopStrategy, stop, toStop } from './stop.js';
import {
  assertAbortSignal,
  assertFunction,
  assertKnownKeys,
  assertPlainObject,
  showValue,
} from './validate.js';
import { toWait, type WaitLike, type WaitStrategy, wait } from './wait.js';

/** A hook: called with the frozen state; may return a promise, which the engine awaits. */
export type RetryHook<T> = (state: AttemptState<T>) => void | Promise<void>;

/**
 * How a run retries. Every field is optional; the defaults are safe for network work: at most 4
 * attempts or 60 s, full-jitter exponential backoff from 200 ms capped at 20 s, and only
 * transient errors retried.
 */
export interface RetryOptions<T = unknown> {
  /**
   * When to give up. Evaluated after an attempt that would be retried, with the next delay known.
   * @default stop.afterAttempt(4).or(stop.beforeDelay(60_000))
   * @example { stop: stop.afterAttempt(3) }
   */
  stop?: StopLike;
  /**
   * How long to sleep before the next attempt, in milliseconds.
   * @default wait.fullJitter({ multiplier: 200, max: 20_000 })
   * @example { wait: wait.exponential({ multiplier: 1000, min: 2000, max: 10_000 }) }
   */
  wait?: WaitLike;
  /**
   * Whether the settled attempt calls for another one. `TryAgain` always does.
   * @default retryIf.transient
   * @example { retry: retryIf.error(ReadTimeoutError).or(retryIf.result((r: Res) => r.status === 'busy')) }
   */
  retry?: RetryConditionLike<T>;
  /**
   * Called before each attempt.
   * @default undefined
   * @example { before: (s) => console.log(`attempt ${s.attempt}`) }
   */
  before?: RetryHook<T>;
  /**
   * Called after each attempt that the retry condition wants to retry, before the stop check.
   * @default undefined
   * @example { after: (s) => metrics.increment('failed_attempts') }
   */
  after?: RetryHook<T>;
  /**
   * Called before each sleep, with `upcomingDelayMs` set: the place to log a retry.
   * @default undefined
   * @example { beforeSleep: logBeforeSleep(console) }
   */
  beforeSleep?: RetryHook<T>;
  /**
   * Called when the stop strategy ends the run; its return value becomes the run's result
   * instead of a thrown `RetryError` (Tenacity's `retry_error_callback`).
   * @default undefined
   * @example { onGiveUp: () => cachedValue }
   */
  onGiveUp?: (state: AttemptState<T>) => T | Promise<T>;
  /**
   * On giving up, throw the last attempt's own error instead of a `RetryError` wrapping it.
   * (A run that gave up on a rejected result still throws `RetryError`.)
   * @default false
   * @example { reraise: true }
   */
  reraise?: boolean;
  /**
   * Aborts the run: a sleep ends at once, an attempt in flight is abandoned, and the run rejects
   * with `signal.reason`. Aborts are never retried.
   * @default undefined
   * @example { signal: AbortSignal.timeout(30_000) }
   */
  signal?: AbortSignal;
  /**
   * The source of time and sleep. Tests pass `FakeClock` from `dogged/testing`.
   * @default systemClock
   * @example { clock: new FakeClock({ autoAdvance: true }) }
   */
  clock?: Clock;
  /**
   * The random source every jittered wait draws from.
   * @default Math.random
   * @example { random: seededRandom(7) }
   */
  random?: RandomSource;
  /**
   * A name for logs and error messages.
   * @default undefined (the decorator uses the method's name)
   * @example { name: 'fetchReport' }
   */
  name?: string;
}

export const RETRY_OPTION_KEYS = [
  'stop',
  'wait',
  'retry',
  'before',
  'after',
  'beforeSleep',
  'onGiveUp',
  'reraise',
  'signal',
  'clock',
  'random',
  'name',
] as const;

const KEY_HINTS: Record<string, string> = {
  retries: 'use stop: stop.afterAttempt(retries + 1)',
  attempts: 'use stop: stop.afterAttempt(attempts)',
  maxAttempts: 'use stop: stop.afterAttempt(maxAttempts)',
  backoff: 'use wait: wait.exponential({...}) or another wait strategy',
  delay: 'use wait: wait.fixed(ms)',
  retryIf: 'the condition option is named retry',
  onRetry: 'use beforeSleep (called before each sleep) or after',
  onFailedAttempt: 'use after (called after each failed attempt)',
  timeout: 'use stop: stop.beforeDelay(ms), or signal: AbortSignal.timeout(ms)',
};

/** The engine's view of the options: validated, strategies wrapped, defaults filled in. */
export interface ResolvedOptions<T> {
  readonly stop: StopStrategy;
  readonly wait: WaitStrategy;
  readonly retry: RetryCondition<T>;
  /** The condition can only retry failures: a success needs no evaluation. */
  readonly skipResults: boolean;
  /**
   * The state of every run's first attempt (it depends on nothing but the options): frozen,
   * so one shared copy is as good as a new one, and cheaper.
   */
  readonly firstState: AttemptState<T>;
  readonly before: RetryHook<T> | undefined;
  readonly after: RetryHook<T> | undefined;
  readonly beforeSleep: RetryHook<T> | undefined;
  readonly onGiveUp: ((state: AttemptState<T>) => T | Promise<T>) | undefined;
  readonly reraise: boolean;
  readonly signal: AbortSignal | undefined;
  readonly clock: Clock;
  readonly random: RandomSource;
  readonly name: string | undefined;
}

/** dogged's defaults, exported so users can build on them. */
export const defaults = Object.freeze({
  stop: stop.afterAttempt(4).or(stop.beforeDelay(60_000)),
  wait: wait.fullJitter({ multiplier: 200, max: 20_000 }),
  retry: retryIf.transient as RetryCondition<unknown>,
});

function optionalHook<T>(where: string, value: unknown): RetryHook<T> | undefined {
  if (value === undefined) return undefined;
  assertFunction(`retry options: ${where}`, value);
  return value as RetryHook<T>;
}

function firstState<T>(
  signal: AbortSignal | undefined,
  name: string | undefined,
  random: RandomSource,
): AttemptState<T> {
  return Object.freeze({
    attempt: 1,
    elapsedMs: 0,
    idleMs: 0,
    lastDelayMs: 0,
    upcomingDelayMs: undefined,
    outcome: undefined,
    signal,
    name,
    random,
  });
}

/** Validates options at the boundary; every mistake is a `TypeError` naming the option. */
export function resolveOptions<T>(
  options: RetryOptions<T> | undefined,
  where = 'retry options',
): ResolvedOptions<T> {
  if (options === undefined) return DEFAULT_RESOLVED as ResolvedOptions<T>;
  assertPlainObject(where, options);
  assertKnownKeys(where, options as Record<string, unknown>, RETRY_OPTION_KEYS, KEY_HINTS);
  const o = options;
  if (o.reraise !== undefined && typeof o.reraise !== 'boolean') {
    throw new TypeError(`${where}: reraise must be a boolean, got ${showValue(o.reraise)}`);
  }
  if (o.signal !== undefined) assertAbortSignal(`${where}: signal`, o.signal);
  if (o.clock !== undefined && !isClock(o.clock)) {
    throw new TypeError(
      `${where}: clock must have now() and sleep(ms, signal) methods, got ${showValue(o.clock)}`,
    );
  }
  if (o.random !== undefined) assertFunction(`${where}: random`, o.random);
  if (o.name !== undefined && typeof o.name !== 'string') {
    throw new TypeError(`${where}: name must be a string, got ${showValue(o.name)}`);
  }
  const retry =
    o.retry === undefined
      ? (defaults.retry as RetryCondition<T>)
      : toRetryCondition<T>(o.retry, `${where}: retry`);
  const random = (o.random as RandomSource | undefined) ?? defaultRandom;
  return Object.freeze({
    firstState: firstState<T>(o.signal, o.name, random),
    stop: o.stop === undefined ? defaults.stop : toStop(o.stop, `${where}: stop`),
    wait: o.wait === undefined ? defaults.wait : toWait(o.wait, `${where}: wait`),
    retry,
    skipResults: ignoresResults(retry),
    before: optionalHook<T>('before', o.before),
    after: optionalHook<T>('after', o.after),
    beforeSleep: optionalHook<T>('beforeSleep', o.beforeSleep),
    onGiveUp: optionalHook<T>('onGiveUp', o.onGiveUp) as ResolvedOptions<T>['onGiveUp'],
    reraise: o.reraise ?? false,
    signal: o.signal,
    clock: o.clock ?? systemClock,
    random,
    name: o.name,
  });
}

const DEFAULT_RESOLVED: ResolvedOptions<unknown> = Object.freeze({
  stop: defaults.stop,
  wait: defaults.wait,
  retry: defaults.retry,
  skipResults: true,
  firstState: firstState(undefined, undefined, defaultRandom),
  before: undefined,
  after: undefined,
  beforeSleep: undefined,
  onGiveUp: undefined,
  reraise: false,
  signal: undefined,
  clock: systemClock,
  random: defaultRandom,
  name: undefined,
});
