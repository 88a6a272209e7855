import type { Clock } from './clock.js';
import { PacedBucket, type RateLimiter } from './rate-limiter.js';
import { readClock, readOptions } from './storm-validate.js';
import { assertAbortSignal, assertPositiveNumber, showValue } from './validate.js';

/** Options of {@link AdaptiveRateLimiter}. The defaults are the AWS SDKs'. */
export interface AdaptiveRateLimiterOptions {
  /**
   * The lowest rate a run of throttles can push the limiter down to, in requests per second.
   * @default 0.5
   * @example { minRate: 2 }
   */
  minRate?: number;
  /**
   * CUBIC's multiplicative decrease: a throttle multiplies the rate by `beta` (0 to 1).
   * @default 0.7
   * @example { beta: 0.5 } // halve the rate on each throttle
   */
  beta?: number;
  /**
   * CUBIC's `C`, in requests/s per s³: how fast the rate grows back. With the defaults the rate
   * regains its level before a throttle from 100 requests/s in ∛(100 · 0.3 / 0.4) ≈ 4.2 s.
   * @default 0.4
   * @example { scaleConstant: 1 } // recover faster
   */
  scaleConstant?: number;
  /**
   * Weight of the newest half-second when measuring the response rate (an exponential moving
   * average; above 0, at most 1; 1 keeps only the newest).
   * @default 0.8
   * @example { smoothing: 0.5 }
   */
  smoothing?: number;
  /**
   * The source of time and sleep. Tests pass `FakeClock` from `dogged/testing`.
   * @default systemClock
   * @example { clock: new FakeClock() }
   */
  clock?: Clock;
}

/** A read-only picture of an {@link AdaptiveRateLimiter}. */
export interface AdaptiveRateSnapshot {
  /** Requests per second allowed now; `Infinity` until the first throttle. */
  readonly rate: number;
  /** Responses per second, measured. */
  readonly measuredRate: number;
  /** `W_max`: the rate at the last throttle (0 before any). */
  readonly lastMaxRate: number;
  /** Throttles recorded. */
  readonly throttles: number;
  readonly waiting: number;
}

const ADAPTIVE_KEYS = ['minRate', 'beta', 'scaleConstant', 'smoothing', 'clock'] as const;
const ADAPTIVE_HINTS: Record<string, string> = {
  perSecond: 'an adaptive limiter finds its rate; for a fixed one use TokenBucketLimiter',
  initialRate: 'an adaptive limiter does not limit until the first throttle',
  maxRate: 'chain a TokenBucketLimiter to cap the rate',
};

/** The burst the bucket allows, in seconds of the current rate (see the class comment). */
const BURST_SECONDS = 0.1;

/** Responses are counted in half-second buckets (the AWS SDKs' `RateClocker`). */
const BUCKET_MS = 500;

/**
 * A client-side rate limit that finds the server's limit by itself, like the AWS SDKs'
 * "adaptive" retry mode: it does not limit at all until the server first throttles (a 429),
 * then follows CUBIC (RFC 8312, as the SDKs use it), with time `t` in seconds:
 *
 * - **Measured rate** `m`: responses per second, counted in half-second buckets and smoothed,
 *   `m ← smoothing · count / Δbucket + (1 − smoothing) · m`.
 * - **On a throttle** ({@link onThrottle}): `W_max = m` (the first time) or `min(m, rate)`;
 *   `K = ∛(W_max · (1 − beta) / C)`; the rate becomes `beta · W_max`: 0.7 · W_max.
 * - **On a success** ({@link onSuccess}), `t` seconds after the last throttle: the rate becomes
 *   `C · (t − K)³ + W_max`. It starts at `beta · W_max`, climbs quickly then flattens as it
 *   nears `W_max` (reached at `t = K`), and past it probes higher, slowly then faster.
 * - Always: rate = `min(that, 2 · m)` (never far above what is really sent), at least `minRate`;
 *   the bucket holds a tenth of a second of it, `max(rate / 10, 1)` tokens, and starts empty at
 *   the first throttle. Requests go out paced, never in a burst larger than that, not even after
 *   a pause (a `Retry-After` cooldown) during which a bucket of a whole second would have refilled
 *   and let every waiting caller out at once into the server's limit.
 *
 * Call `acquire()` before each request, then `onThrottle()` for a 429 (or another "slow down"
 * answer) and `onSuccess()` for any other response. Share one limiter per server.
 *
 * @example
 * const limiter = new AdaptiveRateLimiter();
 * async function call(url: string): Promise<Response> {
 *   await limiter.acquire();
 *   const response = await fetch(url);
 *   if (response.status === 429) limiter.onThrottle();
 *   else limiter.onSuccess();
 *   return response;
 * }
 */
export class AdaptiveRateLimiter implements RateLimiter {
  readonly #clock: Clock;
  readonly #minRate: number;
  readonly #beta: number;
  readonly #scale: number;
  readonly #smoothing: number;
  /** Created at the first throttle: until then nothing is limited. */
  #bucket: PacedBucket | undefined;
  #lastMaxRate = 0;
  #k = 0;
  #lastThrottleMs = 0;
  #throttles = 0;
  #measuredRate = 0;
  #count = 0;
  /** When the first response was counted: the rate estimate before a bucket has ended. */
  #firstMs: number | undefined;
  #lastBucket: number;

  constructor(options?: AdaptiveRateLimiterOptions) {
    const o = readOptions('AdaptiveRateLimiter', options, ADAPTIVE_KEYS, ADAPTIVE_HINTS);
    const minRate = o.minRate ?? 0.5;
    const beta = o.beta ?? 0.7;
    const scaleConstant = o.scaleConstant ?? 0.4;
    const smoothing = o.smoothing ?? 0.8;
    assertPositiveNumber('AdaptiveRateLimiter: minRate', minRate);
    if (typeof beta !== 'number' || !(beta > 0 && beta < 1)) {
      throw new TypeError(
        `AdaptiveRateLimiter: beta must be a number above 0 and below 1, got ${showValue(beta)}`,
      );
    }
    assertPositiveNumber('AdaptiveRateLimiter: scaleConstant', scaleConstant);
    if (typeof smoothing !== 'number' || !(smoothing > 0 && smoothing <= 1)) {
      throw new TypeError(
        `AdaptiveRateLimiter: smoothing must be a number above 0 and at most 1, got ${showValue(smoothing)}`,
      );
    }
    this.#clock = readClock('AdaptiveRateLimiter', o.clock);
    this.#minRate = minRate;
    this.#beta = beta;
    this.#scale = scaleConstant;
    this.#smoothing = smoothing;
    this.#lastBucket = this.#bucketOf(this.#clock.now());
  }

  /** Requests per second allowed now; `Infinity` until the first throttle. */
  get rate(): number {
    return this.#bucket ? this.#bucket.perSecond : Number.POSITIVE_INFINITY;
  }

  /** Responses per second, as measured (see the class comment). */
  get measuredRate(): number {
    return this.#measuredRate;
  }

  get waiting(): number {
    return this.#bucket?.waiting ?? 0;
  }

  acquire(signal?: AbortSignal): Promise<void> {
    if (signal !== undefined) assertAbortSignal('AdaptiveRateLimiter.acquire(signal)', signal);
    if (!this.#bucket) return signal?.aborted ? Promise.reject(signal.reason) : Promise.resolve();
    return this.#bucket.acquire(signal);
  }

  tryAcquire(): boolean {
    return this.#bucket ? this.#bucket.tryTake() : true;
  }

  /**
   * The server said "slow down" (a 429, a throttling error): cut the rate by `beta`.
   *
   * Pass `sentAtMs` (the clock time the throttled request was sent) when you have it: a throttle
   * of a request sent before the last cut says nothing about the new rate and is not cut again
   * (one cut per round trip, as TCP does), so a burst of requests in flight does not collapse
   * the rate to `minRate` with one cut each.
   */
  onThrottle(sentAtMs?: number): void {
    const now = this.#clock.now();
    const measured = this.#measure(now);
    if (sentAtMs !== undefined && this.#throttles > 0 && sentAtMs < this.#lastThrottleMs) return;
    const rateToUse = this.#bucket ? Math.min(measured, this.#bucket.perSecond) : measured;
    this.#throttles++;
    this.#lastMaxRate = rateToUse;
    this.#k = Math.cbrt((rateToUse * (1 - this.#beta)) / this.#scale);
    this.#lastThrottleMs = now;
    this.#setRate(Math.min(rateToUse * this.#beta, 2 * measured));
  }

  /** Any response that was not a throttle: let the rate grow back along the CUBIC curve. */
  onSuccess(): void {
    const now = this.#clock.now();
    const measured = this.#measure(now);
    if (!this.#bucket) return;
    const t = (now - this.#lastThrottleMs) / 1000;
    const cubic = this.#scale * (t - this.#k) ** 3 + this.#lastMaxRate;
    this.#setRate(Math.min(cubic, 2 * measured));
  }

  /** A frozen picture of the limiter now. */
  snapshot(): AdaptiveRateSnapshot {
    return Object.freeze({
      rate: this.rate,
      measuredRate: this.#measuredRate,
      lastMaxRate: this.#lastMaxRate,
      throttles: this.#throttles,
      waiting: this.waiting,
    });
  }

  /** The snapshot, so `JSON.stringify(limiter)` and loggers show it. */
  toJSON(): AdaptiveRateSnapshot {
    return this.snapshot();
  }

  #setRate(rate: number): void {
    const perSecond = Math.max(rate, this.#minRate);
    const capacity = Math.max(rate * BURST_SECONDS, 1);
    if (this.#bucket) this.#bucket.setRate(perSecond, capacity);
    else this.#bucket = new PacedBucket(this.#clock, perSecond, capacity, 0);
  }

  /** Start of the half-second bucket `nowMs` falls in, in seconds. */
  #bucketOf(nowMs: number): number {
    return (Math.floor(nowMs / BUCKET_MS) * BUCKET_MS) / 1000;
  }

  /**
   * Counts one response and returns the measured rate (updated when a bucket ends). Before the
   * first bucket has ended, the rate so far (responses over the time since the first, at least
   * 100 ms): a throttle in the first half second then cuts from what was really sent instead
   * of dropping to `minRate` and crawling back for seconds.
   */
  #measure(nowMs: number): number {
    const bucket = this.#bucketOf(nowMs);
    this.#firstMs ??= nowMs;
    this.#count++;
    if (bucket > this.#lastBucket) {
      const current = this.#count / (bucket - this.#lastBucket);
      this.#measuredRate = current * this.#smoothing + this.#measuredRate * (1 - this.#smoothing);
      this.#count = 0;
      this.#lastBucket = bucket;
    }
    if (this.#measuredRate === 0)
      return this.#count / Math.max((nowMs - this.#firstMs) / 1000, 0.1);
    return this.#measuredRate;
  }
}
