import type { Clock } from './clock.js';
import { assertNumberAtLeast, EPSILON, readClock, readOptions } from './storm-validate.js';
import { assertAbortSignal, assertPositiveNumber } from './validate.js';

/** A client-side rate limiter: what both {@link TokenBucketLimiter} and the adaptive one offer. */
export interface RateLimiter {
  /**
   * Resolves when the caller may send one request (taking a token), waiting on the clock if
   * needed. Callers are served in the order they called. When `signal` aborts, rejects at once
   * with its reason and leaves no timer behind.
   */
  acquire(signal?: AbortSignal): Promise<void>;
  /** Takes a token if one is free now and nobody is waiting; never waits. */
  tryAcquire(): boolean;
  /** The current rate, in requests per second (`Infinity`: not limiting). */
  readonly rate: number;
  /** How many `acquire()` calls are waiting. */
  readonly waiting: number;
}

/** Token counts are sums of products of decimals: compare with a tolerance. */

interface Waiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * A token bucket with a FIFO line of waiters, paced by a clock; the engine of both limiters.
 * At most one sleep is pending at a time (for the waiter at the head of the line); it is
 * cancelled when the line empties and re-planned when the rate changes.
 * @internal
 */
export class PacedBucket {
  readonly #clock: Clock;
  #perSecond: number;
  #capacity: number;
  #tokens: number;
  #lastRefill: number;
  readonly #line: Waiter[] = [];
  #pumping = false;
  /** Aborts the pending sleep: to re-plan it, or because nobody waits any more. */
  #wake: AbortController | undefined;

  constructor(clock: Clock, perSecond: number, capacity: number, tokens: number) {
    this.#clock = clock;
    this.#perSecond = perSecond;
    this.#capacity = capacity;
    this.#tokens = Math.min(tokens, capacity);
    this.#lastRefill = clock.now();
  }

  get perSecond(): number {
    return this.#perSecond;
  }

  get capacity(): number {
    return this.#capacity;
  }

  /** Tokens available now (before anyone waiting takes them). */
  get tokens(): number {
    this.#refill();
    return this.#tokens;
  }

  get waiting(): number {
    return this.#line.length;
  }

  /** Changes the rate from now on; tokens earned so far were earned at the old rate. */
  setRate(perSecond: number, capacity: number): void {
    this.#refill();
    // Unchanged (the adaptive limiter re-applies its rate on every response): the planned wake
    // stays right, no need to cancel and re-plan it.
    if (perSecond === this.#perSecond && capacity === this.#capacity) return;
    this.#perSecond = perSecond;
    this.#capacity = capacity;
    this.#tokens = Math.min(this.#tokens, capacity);
    this.#wake?.abort();
  }

  tryTake(): boolean {
    if (this.#line.length > 0) return false;
    return this.#take();
  }

  acquire(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    // Stryker disable next-line ConditionalExpression: `false` is equivalent: the pump then serves the free token in the same call (its `true` twin, a grant without a token, is killed by the rate tests)
    if (this.tryTake()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => {
          const index = this.#line.indexOf(waiter);
          // Stryker disable next-line ConditionalExpression: `true` is equivalent: the listener is removed whenever a waiter leaves the line, so an aborting waiter is always found (`false` is killed)
          if (index >= 0) this.#line.splice(index, 1);
          // Stryker disable next-line OptionalChaining: a sleep is always planned (#wake set) while a waiter is in the line
          if (this.#line.length === 0) this.#wake?.abort();
          reject(signal.reason);
        };
        // Stryker disable next-line ObjectLiteral,BooleanLiteral: an AbortSignal fires 'abort' at most once
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.#line.push(waiter);
      if (!this.#pumping) void this.#pump();
    });
  }

  #refill(): void {
    const now = this.#clock.now();
    // Stryker disable next-line EqualityOperator: `>=` is equivalent: at now === lastRefill nothing is earned (`<=`, a clock stepping back, is killed)
    if (now > this.#lastRefill) {
      const earned = ((now - this.#lastRefill) * this.#perSecond) / 1000;
      this.#tokens = Math.min(this.#capacity, this.#tokens + earned);
      this.#lastRefill = now;
    }
  }

  #take(): boolean {
    this.#refill();
    if (this.#tokens < 1 - EPSILON) return false;
    this.#tokens = Math.max(0, this.#tokens - 1);
    return true;
  }

  /** Serves the line, head first, sleeping until each next token is due. */
  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#line.length > 0) {
        if (this.#take()) {
          const waiter = this.#line.shift() as Waiter;
          // Stryker disable next-line ConditionalExpression,OptionalChaining: onAbort is set exactly when the waiter has a signal (`false`, a listener left behind, is killed)
          if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
          waiter.resolve();
          continue;
        }
        const wake = new AbortController();
        this.#wake = wake;
        try {
          await this.#clock.sleep(((1 - this.#tokens) * 1000) / this.#perSecond, wake.signal);
        } catch (error) {
          // Woken on purpose: plan again. A clock that fails on its own would spin: give up.
          if (!wake.signal.aborted) this.#failAll(error);
        } finally /* Stryker disable next-line BlockStatement: a #wake left behind is only ever replaced by the next sleep's or aborted again, a no-op */ {
          this.#wake = undefined;
        }
      }
    } finally {
      this.#pumping = false;
    }
  }

  #failAll(error: unknown): void {
    for (const waiter of this.#line.splice(0)) {
      // Stryker disable next-line ConditionalExpression,OptionalChaining: onAbort is set exactly when the waiter has a signal (`false`, a listener left behind, is killed)
      if (waiter.onAbort) waiter.signal?.removeEventListener('abort', waiter.onAbort);
      waiter.reject(error);
    }
  }
}

/** Options of {@link TokenBucketLimiter}. */
export interface TokenBucketLimiterOptions {
  /**
   * The sustained rate, in requests per second (fractions allowed: 0.5 is one every 2 s).
   * @default none: required
   * @example { perSecond: 100 }
   */
  perSecond: number;
  /**
   * How many requests may go at once after a quiet spell: the bucket's capacity, at least 1.
   * The bucket starts full. `1` paces requests evenly, `1000 / perSecond` ms apart.
   * @default Math.max(1, perSecond) (one second's worth)
   * @example { perSecond: 10, burst: 1 } // exactly one request every 100 ms
   */
  burst?: number;
  /**
   * The source of time and sleep. Tests pass `FakeClock` from `dogged/testing`.
   * @default systemClock
   * @example { clock: new FakeClock() }
   */
  clock?: Clock;
}

const BUCKET_KEYS = ['perSecond', 'burst', 'clock'] as const;
const BUCKET_HINTS: Record<string, string> = {
  rate: 'the option is named perSecond',
  rps: 'the option is named perSecond',
  capacity: 'the option is named burst',
  intervalMs: 'give a rate instead: perSecond = 1000 / intervalMs',
};

/**
 * A fixed client-side rate limit: a token bucket refilled at `perSecond` tokens per second,
 * holding at most `burst`. Each request takes a token; callers that find none wait, served
 * first come, first served.
 *
 * One limiter is one budget of requests: share the instance among everything that calls the
 * same server (it is a plain object, and JavaScript runs one callback at a time).
 *
 * @example
 * const limiter = new TokenBucketLimiter({ perSecond: 5, burst: 1 });
 * const pages = await Promise.all(
 *   urls.map(async (url) => {
 *     await limiter.acquire(); // one request every 200 ms, in order
 *     return fetchPage(url);
 *   }),
 * );
 */
export class TokenBucketLimiter implements RateLimiter {
  readonly #bucket: PacedBucket;

  constructor(options: TokenBucketLimiterOptions) {
    const o = readOptions('TokenBucketLimiter', options, BUCKET_KEYS, BUCKET_HINTS);
    assertPositiveNumber('TokenBucketLimiter: perSecond', o.perSecond);
    const burst = o.burst ?? Math.max(1, o.perSecond);
    assertNumberAtLeast('TokenBucketLimiter: burst', burst, 1);
    const clock = readClock('TokenBucketLimiter', o.clock);
    this.#bucket = new PacedBucket(clock, o.perSecond, burst, burst);
  }

  acquire(signal?: AbortSignal): Promise<void> {
    if (signal !== undefined) assertAbortSignal('TokenBucketLimiter.acquire(signal)', signal);
    return this.#bucket.acquire(signal);
  }

  tryAcquire(): boolean {
    return this.#bucket.tryTake();
  }

  /** Requests per second. */
  get rate(): number {
    return this.#bucket.perSecond;
  }

  /** The bucket's capacity. */
  get burst(): number {
    return this.#bucket.capacity;
  }

  /** Tokens in the bucket now (fractional: the next one is on its way). */
  get tokens(): number {
    return this.#bucket.tokens;
  }

  get waiting(): number {
    return this.#bucket.waiting;
  }
}
