import {
  AdaptiveRate,
  type AdaptiveRateOptions,
  type AdaptiveRateSnapshot,
} from './adaptive-rate.js';
import type { Clock } from './clock.js';
import { PacedBucket, type RateLimiter } from './rate-limiter.js';
import { readClock } from './storm-validate.js';
import { assertAbortSignal, assertPlainObject } from './validate.js';

/** Options of {@link AdaptiveRateLimiter}: those of {@link AdaptiveRate}, and a clock. */
export interface AdaptiveRateLimiterOptions extends AdaptiveRateOptions {
  /**
   * The source of time and sleep. Tests pass `FakeClock` from `dogged/testing`.
   * @default systemClock
   * @example { clock: new FakeClock() }
   */
  clock?: Clock;
}

/** A read-only picture of an {@link AdaptiveRateLimiter}. */
export interface AdaptiveRateLimiterSnapshot extends AdaptiveRateSnapshot {
  /** Callers waiting in `acquire()`. */
  readonly waiting: number;
}

/** The burst the bucket allows, in seconds of the current rate (see the class comment). */
const BURST_SECONDS = 0.1;

/**
 * A client-side rate limit that finds the server's limit by itself: it does not limit at all
 * until the server first throttles (a 429), then paces requests just under the rate the server
 * was seen to accept, and probes upward again from time to time (the {@link AdaptiveRate}
 * model: an estimate of the server's limit from what it accepted, a cut to `beta` times it, a
 * CUBIC curve back).
 *
 * The bucket holds a tenth of a second of the current rate (`max(rate / 10, 1)` tokens) and
 * starts empty at the first throttle: requests go out paced, never in a burst larger than that,
 * not even after a pause (a `Retry-After` cooldown) during which a larger bucket would have
 * refilled and let every waiting caller out at once into the server's limit.
 *
 * Call `acquire()` before each request, then `onThrottle(sentAt)` for a 429 (or another "slow
 * down" answer) and `onSuccess(sentAt)` for any other response, with the clock time the request
 * was sent. Share one limiter per server.
 *
 * @example
 * const limiter = new AdaptiveRateLimiter();
 * async function call(url: string): Promise<Response> {
 *   await limiter.acquire();
 *   const sentAt = Date.now();
 *   const response = await fetch(url);
 *   if (response.status === 429) limiter.onThrottle(sentAt);
 *   else limiter.onSuccess(sentAt);
 *   return response;
 * }
 */
export class AdaptiveRateLimiter implements RateLimiter {
  readonly #clock: Clock;
  readonly #pace: AdaptiveRate;
  /** Created at the first throttle: until then nothing is limited. */
  #bucket: PacedBucket | undefined;

  constructor(options?: AdaptiveRateLimiterOptions) {
    if (options !== undefined) assertPlainObject('AdaptiveRateLimiter options', options);
    const { clock, ...rest } = options ?? {};
    this.#pace = new AdaptiveRate(rest, 'AdaptiveRateLimiter');
    this.#clock = readClock('AdaptiveRateLimiter', clock);
  }

  /** Requests per second allowed now; `Infinity` until the first throttle. */
  get rate(): number {
    return this.#pace.rateAt(this.#clock.now());
  }

  get waiting(): number {
    return this.#bucket?.waiting ?? 0;
  }

  acquire(signal?: AbortSignal): Promise<void> {
    if (signal !== undefined) assertAbortSignal('AdaptiveRateLimiter.acquire(signal)', signal);
    if (!this.#bucket) return signal?.aborted ? Promise.reject(signal.reason) : Promise.resolve();
    this.#update();
    return this.#bucket.acquire(signal);
  }

  tryAcquire(): boolean {
    if (!this.#bucket) return true;
    this.#update();
    return this.#bucket.tryTake();
  }

  /**
   * The server said "slow down" (a 429, a throttling error) to a request sent at `sentAtMs`
   * (clock time; now when not given): cut the pace under the rate it accepts. A throttle of a
   * request sent before the last cut is stale and changes nothing, so a burst of requests in
   * flight does not collapse the rate with one cut each.
   */
  onThrottle(sentAtMs?: number): void {
    const now = this.#clock.now();
    if (this.#pace.throttled(now, sentAtMs ?? now)) this.#update();
  }

  /** Any response that was not a throttle, to a request sent at `sentAtMs` (clock time). */
  onSuccess(sentAtMs?: number): void {
    const now = this.#clock.now();
    this.#pace.accepted(now, sentAtMs ?? now);
    // Stryker disable next-line ConditionalExpression: `true` is equivalent: until the first throttle creates the bucket the pace is unlimited and #update() returns at once (`false` is killed)
    if (this.#bucket) this.#update();
  }

  /** A frozen picture of the limiter now. */
  snapshot(): AdaptiveRateLimiterSnapshot {
    return Object.freeze({ ...this.#pace.snapshot(this.#clock.now()), waiting: this.waiting });
  }

  /** The snapshot, so `JSON.stringify(limiter)` and loggers show it. */
  toJSON(): AdaptiveRateLimiterSnapshot {
    return this.snapshot();
  }

  /** Brings the bucket to the pace's rate now (the curve moves with time, not only with answers). */
  #update(): void {
    const rate = this.#pace.rateAt(this.#clock.now());
    // Stryker disable next-line ConditionalExpression: `false` is equivalent: #update() only runs once a throttle cut the pace, and rateAt() is then finite (`true` is killed)
    if (!Number.isFinite(rate)) return;
    const bucket = this.#bucket;
    // The curve moves a little with every answer: re-planning the head waiter's sleep for a
    // change under 1% costs more than it is worth.
    // Stryker disable next-line EqualityOperator: `<=` differs only for a change of exactly 1% to the last bit, which no curve produces; the threshold saves re-planning, either side paces within 1%
    if (bucket && Math.abs(rate - bucket.perSecond) < bucket.perSecond * 0.01) return;
    const capacity = Math.max(rate * BURST_SECONDS, 1);
    if (bucket) bucket.setRate(rate, capacity);
    else this.#bucket = new PacedBucket(this.#clock, rate, capacity, 0);
  }
}
