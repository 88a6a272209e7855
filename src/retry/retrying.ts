import { type Attempt, execute } from './engine.js';
import { type ResolvedOptions, type RetryOptions, resolveOptions } from './options.js';
import { type RetryStatistics, StatisticsRecorder } from './statistics.js';
import {
  assertAbortSignal,
  assertFunction,
  assertKnownKeys,
  assertPlainObject,
} from './validate.js';

/** Per-call options of {@link Retrying.run}. */
export interface RunOptions {
  /**
   * Aborts this call only (combined with the `Retrying`'s own `signal`, if any).
   * @default undefined
   * @example retrying.run(fetchReport, { signal: AbortSignal.timeout(10_000) })
   */
  signal?: AbortSignal;
}

/** A function wrapped by {@link Retrying.wrap}: same arguments, always async, retried. */
export interface RetryingFunction<A extends unknown[], R> {
  (...args: A): Promise<R>;
  /** The `Retrying` behind this function. */
  readonly retrying: Retrying<R>;
  /** Shorthand for `retrying.statistics`. */
  readonly statistics: RetryStatistics;
  /** The same function with some options replaced (Tenacity's `retry_with`). */
  with(overrides: RetryOptions<R>): RetryingFunction<A, R>;
}

/**
 * A reusable retry configuration: validated once, run many times, with statistics.
 *
 * @example
 * const polite = new Retrying({ stop: stop.afterAttempt(5), wait: wait.fullJitter({ multiplier: 500 }) });
 * const report = await polite.run(() => fetchReport(id));
 * const fetchUser = polite.wrap((id: string) => api.getUser(id));
 * console.log(polite.statistics.retries);
 */
export class Retrying<T = unknown> {
  readonly #options: Readonly<RetryOptions<T>>;
  readonly #resolved: ResolvedOptions<T>;
  readonly #stats = new StatisticsRecorder();

  constructor(options: RetryOptions<T> = {}) {
    this.#resolved = resolveOptions(options, 'Retrying options');
    this.#options = Object.freeze({ ...options });
  }

  /** The options as given (frozen copy). */
  get options(): Readonly<RetryOptions<T>> {
    return this.#options;
  }

  /** Runs `fn` until it succeeds, the retry condition declines, the stop strategy ends it, or an abort. */
  run<R extends T>(fn: Attempt<R>, runOptions?: RunOptions): Promise<R> {
    if (typeof fn !== 'function') return Promise.reject(fnTypeError(fn));
    let signal = this.#resolved.signal;
    if (runOptions !== undefined) {
      try {
        assertPlainObject('Retrying.run options', runOptions);
        assertKnownKeys('Retrying.run options', runOptions as Record<string, unknown>, ['signal']);
        if (runOptions.signal !== undefined) {
          assertAbortSignal('Retrying.run options: signal', runOptions.signal);
          signal = signal ? AbortSignal.any([signal, runOptions.signal]) : runOptions.signal;
        }
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return execute(this.#resolved as unknown as ResolvedOptions<R>, fn, this.#stats, signal);
  }

  /**
   * Returns `fn` retried: the wrapped function passes its arguments and `this` through and
   * always returns a promise.
   * @example const getUser = new Retrying({ stop: stop.afterAttempt(3) }).wrap(api.getUser.bind(api));
   */
  wrap<A extends unknown[], R extends T>(
    fn: (...args: A) => R | PromiseLike<R>,
  ): RetryingFunction<A, R> {
    assertFunction('Retrying.wrap(fn)', fn);
    return wrapWith(this as unknown as Retrying<R>, fn);
  }

  /** A new `Retrying` with some options replaced; this one is unchanged. */
  with(overrides: RetryOptions<T>): Retrying<T> {
    assertPlainObject('Retrying.with(overrides)', overrides);
    return new Retrying<T>({ ...this.#options, ...overrides });
  }

  /** A frozen snapshot of this instance's counters and of its most recent run. */
  get statistics(): RetryStatistics {
    return this.#stats.snapshot(this.#resolved.clock.now());
  }

  /** Zeroes the counters. */
  resetStatistics(): void {
    this.#stats.calls = 0;
    this.#stats.attempts = 0;
    this.#stats.retries = 0;
    this.#stats.successes = 0;
    this.#stats.failures = 0;
    this.#stats.giveUps = 0;
    this.#stats.aborts = 0;
    this.#stats.idleMs = 0;
    this.#stats.last = undefined;
  }
}

function fnTypeError(fn: unknown): TypeError {
  try {
    assertFunction('the function to retry', fn);
  } catch (error) {
    return error as TypeError;
  }
  // Stryker disable next-line StringLiteral: unreachable: fnTypeError() is only called for a non-function, for which assertFunction() throws above
  return new TypeError('the function to retry must be a function');
}

/** Shared by `wrap()` and the decorator. */
export function wrapWith<A extends unknown[], R>(
  retrying: Retrying<R>,
  fn: (...args: A) => R | PromiseLike<R>,
): RetryingFunction<A, R> {
  const wrapped = function (this: unknown, ...args: A): Promise<R> {
    return retrying.run(() => fn.apply(this, args));
  } as RetryingFunction<A, R>;
  Object.defineProperties(wrapped, {
    name: { value: fn.name ? `retrying ${fn.name}` : 'retrying' },
    retrying: { value: retrying },
    statistics: { get: () => retrying.statistics },
    with: { value: (overrides: RetryOptions<R>) => wrapWith(retrying.with(overrides), fn) },
  });
  return wrapped;
}
