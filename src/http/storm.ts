import { CircuitBreaker, type CircuitPermit } from '../retry/breaker.js';
import type { CircuitBreakerOptions } from '../retry/breaker-options.js';
import { RetryBudget, type RetryBudgetOptions } from '../retry/budget.js';
import type { Clock } from '../retry/clock.js';
import { formatDuration } from '../retry/describe.js';
import { type RateLimiter, TokenBucketLimiter } from '../retry/rate-limiter.js';
import {
  AdaptiveRateLimiter,
  type AdaptiveRateLimiterOptions,
} from '../retry/rate-limiter-adaptive.js';
import { showValue } from '../retry/validate.js';
import { CircuitOpenError, RetryAfterTooLongError } from './errors.js';
import { breakerStateChannel, cooldownChannel, waitChannel } from './observe.js';

/**
 * A client-side rate limit per origin: `{ perSecond, burst }` (a token bucket), `'adaptive'`
 * (AWS SDK style: cut on 429, grows back on success), `{ adaptive: options }`, or any
 * `RateLimiter` object (shared by every origin).
 */
export type RateLimitOption =
  | { perSecond: number; burst?: number }
  | 'adaptive'
  | { adaptive: AdaptiveRateLimiterOptions }
  | RateLimiter
  | false;

/** Retry-storm protection settings of a Session or a mount. */
export interface StormOptions {
  /**
   * The retry budget: retries beyond it fail fast with `BudgetExhaustedError`. Options give one
   * budget per origin; a `RetryBudget` object is shared by every origin (and every session it
   * is given to). `false` turns it off.
   * @default one `new RetryBudget({ ttlMs: 1000 })` per origin (20% of requests, at least 10 retries/s, over 1 s)
   * @example { budget: new RetryBudget({ percentCanRetry: 0.1 }) }
   */
  budget?: RetryBudget | RetryBudgetOptions | false;
  /**
   * A circuit breaker: opt-in. Options give one breaker per origin; a `CircuitBreaker` object is
   * shared. An open circuit fails fast with `CircuitOpenError`.
   * @default false
   * @example { breaker: { mode: 'consecutive', threshold: 5, halfOpenAfterMs: 10_000 } }
   */
  breaker?: CircuitBreaker | CircuitBreakerOptions | false;
  /**
   * A client-side rate limit per origin. `'adaptive'` (the default) does not limit anything
   * until the origin throttles (a 429); then it paces requests just under the rate the origin
   * was seen to accept, and probes upward again from time to time (`AdaptiveRateLimiter`). A
   * fixed `{ perSecond, burst }`, a `RateLimiter` of your own, or `false` for none.
   * @default 'adaptive'
   * @example { rateLimit: { perSecond: 10, burst: 20 } } // or { rateLimit: false }
   */
  rateLimit?: RateLimitOption;
  /**
   * After a 429 or 503 with Retry-After from an origin, hold every new request to that origin
   * until then, not only the one that got it. Answers to requests that were already in flight
   * when the hold began do not extend it; after it, the rate limit paces the requests that
   * waited. A Retry-After beyond the request's `maxRetryAfter` holds nothing (it fails that
   * request only, with `RetryAfterTooLongError`). An answer that came through a proxy of a
   * `ProxyPool` holds that proxy for that origin only (`ProxyPool.hold`, at most
   * `maxRetryAfter`): the other proxies still reach the origin.
   * @default true
   * @example { cooldown: false }
   */
  cooldown?: boolean;
}

const MAX_ORIGINS = 10_000;
/** The window of the Session's default budgets. */
const SESSION_BUDGET_TTL_MS = 1000;

/** What one origin's requests share: budget, breaker, limiter and cooldown. */
export class OriginGuard {
  readonly origin: string;
  readonly budget: RetryBudget | undefined;
  readonly breaker: CircuitBreaker | undefined;
  readonly limiter: RateLimiter | undefined;
  readonly #cooldown: boolean;
  readonly #clock: Clock;
  #cooldownUntil = 0;
  /** Set by the first hold: until then no cooldown is checked against the clock. */
  #held = false;
  /** When the current hold began: answers to requests sent before it do not extend it. */
  #cooldownSince = Number.NEGATIVE_INFINITY;

  constructor(
    origin: string,
    parts: {
      budget?: RetryBudget;
      breaker?: CircuitBreaker;
      limiter?: RateLimiter;
      cooldown: boolean;
      clock: Clock;
    },
  ) {
    this.origin = origin;
    this.budget = parts.budget;
    this.breaker = parts.breaker;
    this.limiter = parts.limiter;
    this.#cooldown = parts.cooldown;
    this.#clock = parts.clock;
  }

  /** Milliseconds left of this origin's Retry-After hold (0 when none). */
  get cooldownMs(): number {
    return Math.max(0, this.#cooldownUntil - this.#clock.now());
  }

  /**
   * A Retry-After from this origin, to a request sent at `sentAtMs` (clock time): hold new
   * requests until it has passed, unless the request was sent before the current hold began
   * (it was in flight then: its answer is the same news, and must not chain holds end to end).
   */
  holdFor(ms: number, sentAtMs: number = this.#clock.now()): void {
    if (!this.#cooldown || sentAtMs <= this.#cooldownSince) return;
    const now = this.#clock.now();
    if (now + ms <= this.#cooldownUntil) return;
    this.#held = true;
    this.#cooldownUntil = now + ms;
    this.#cooldownSince = now;
    // Stryker disable next-line ConditionalExpression: publishing to a channel without subscribers does nothing; the check only saves building the message
    if (cooldownChannel.hasSubscribers) cooldownChannel.publish({ origin: this.origin, ms });
  }

  /**
   * Admits a request at once, when nothing stands between it and the origin: no circuit
   * breaker, no cooldown, and the rate limiter (if any) had a token, now taken: `'admitted'`.
   * Otherwise call {@link admit}, which waits for them: `'limited'` when the limiter was asked
   * and had no token (pass it to `admit`, so that the limiter is not asked twice), `'wait'`.
   */
  admitNow(): 'admitted' | 'limited' | 'wait' {
    if (this.breaker || (this.#held && this.#cooldownUntil > this.#clock.now())) return 'wait';
    return !this.limiter || this.limiter.tryAcquire() ? 'admitted' : 'limited';
  }

  /**
   * Waits for what stands between a request and the origin (the cooldown, then the rate limit),
   * then asks the breaker. Resolves with the breaker's permit (if any) to report the outcome to.
   */
  async admit(
    context: {
      method: string;
      url: string;
      attempt: number;
      /** The logical request, for `dogged:wait`. */
      request?: object;
      signal: AbortSignal | undefined;
      maxRetryAfterMs: number;
      sleep: (ms: number) => Promise<void>;
    },
    /** {@link admitNow} said `'limited'`: the limiter has no token now, wait for one. */
    limited = false,
  ): Promise<CircuitPermit | undefined> {
    const held = this.cooldownMs;
    if (held > 0) {
      if (held > context.maxRetryAfterMs) {
        throw new RetryAfterTooLongError({
          retryAfterMs: held,
          maxRetryAfterMs: context.maxRetryAfterMs,
          method: context.method,
          url: context.url,
          attempts: context.attempt,
        });
      }
      await context.sleep(held);
      this.#waited(context.request, 'cooldown', held);
    }
    // A free token is taken at once, without a promise hop (the common case).
    if (this.limiter && (limited || !this.limiter.tryAcquire())) {
      const since = this.#clock.now();
      await this.limiter.acquire(context.signal);
      this.#waited(context.request, 'rate-limit', this.#clock.now() - since);
    }
    if (!this.breaker) return undefined;
    const permit = this.breaker.tryAcquire();
    if (permit.allowed) return permit;
    throw new CircuitOpenError(
      `the circuit for ${this.origin} is ${permit.state}: failing fast; it lets a request through in ${formatDuration(permit.retryAfterMs)}`,
      {
        method: context.method,
        url: context.url,
        attempts: context.attempt,
        // Stryker disable next-line ConditionalExpression: a cause of undefined is no cause (DoggedError passes { cause } on only when it is defined)
        ...(permit.lastFailure !== undefined && { cause: permit.lastFailure }),
        phase: 'none',
      },
    );
  }

  #waited(request: object | undefined, reason: 'cooldown' | 'rate-limit', ms: number): void {
    // Stryker disable next-line ConditionalExpression: publishing to a channel without subscribers does nothing; the check only saves building the message
    if (waitChannel.hasSubscribers)
      waitChannel.publish({ request, origin: this.origin, reason, ms: Math.max(0, ms) });
  }

  /** The origin said "slow down" (429) to a request sent at `sentAtMs`: an adaptive limiter cuts its rate. */
  throttled(sentAtMs: number): void {
    if (this.limiter instanceof AdaptiveRateLimiter) this.limiter.onThrottle(sentAtMs);
  }

  /** Any other answer, to a request sent at `sentAtMs`: an adaptive limiter grows back. */
  answered(sentAtMs: number): void {
    if (this.limiter instanceof AdaptiveRateLimiter) this.limiter.onSuccess(sentAtMs);
  }
}

/** Breakers whose transitions are published on `dogged:breaker:state` (once each). */
const observedBreakers = new WeakSet<CircuitBreaker>();

/** Publishes a breaker's state changes (a shared breaker under the first origin it serves). */
function observeBreaker(breaker: CircuitBreaker, origin: string): void {
  if (observedBreakers.has(breaker)) return;
  observedBreakers.add(breaker);
  breaker.onStateChange((change) => {
    // Stryker disable next-line ConditionalExpression: publishing to a channel without subscribers does nothing; the check only saves building the message
    if (breakerStateChannel.hasSubscribers)
      breakerStateChannel.publish({
        origin,
        from: change.from,
        to: change.to,
        reason: change.reason,
      });
  });
}

function isRateLimiter(value: unknown): value is RateLimiter {
  return (
    // Stryker disable next-line ConditionalExpression,LogicalOperator: the only caller passes an object, never null (checked before: rateLimit is neither a primitive nor null there); with `||` a primitive still fails the acquire checks below
    value !== null &&
    // Stryker disable next-line ConditionalExpression: the only caller passes an object (checked before: rateLimit is neither a primitive nor null there)
    typeof value === 'object' &&
    typeof (value as RateLimiter).acquire === 'function' &&
    typeof (value as RateLimiter).tryAcquire === 'function'
  );
}

/** Checks storm options at the boundary; returns a factory of per-origin guards. */
export class StormControl {
  readonly #options: StormOptions;
  readonly #clock: Clock;
  readonly #where: string;
  readonly #guards = new Map<string, OriginGuard>();
  /** The guard used last: already the most recent in `#guards`, no reordering needed. */
  #last: OriginGuard | undefined;

  constructor(options: StormOptions, clock: Clock, where: string) {
    this.#options = options;
    this.#clock = clock;
    this.#where = where;
    // Bad options fail here, at the boundary, not at the first request: build one guard's
    // parts once and drop them.
    this.#make('');
    const { cooldown } = options;
    if (cooldown !== undefined && typeof cooldown !== 'boolean')
      throw new TypeError(`${where}: cooldown must be a boolean, got ${showValue(cooldown)}`);
  }

  /** The guard of `origin`, made on first use (the least recently used are forgotten past 10,000 origins). */
  forOrigin(origin: string): OriginGuard {
    const last = this.#last;
    // Stryker disable next-line ConditionalExpression: a shortcut only: without it the map finds the same guard, already the most recent
    if (last !== undefined && last.origin === origin) return last;
    let guard = this.#guards.get(origin);
    this.#last = guard;
    if (guard) {
      this.#guards.delete(origin);
      this.#guards.set(origin, guard);
      return guard;
    }
    guard = this.#make(origin);
    this.#guards.set(origin, guard);
    this.#last = guard;
    if (this.#guards.size > MAX_ORIGINS) {
      const oldest = this.#guards.keys().next().value;
      // Stryker disable next-line ConditionalExpression: the map holds more than 10,000 guards here, so it has a first key
      if (oldest !== undefined) this.#guards.delete(oldest);
    }
    return guard;
  }

  #make(origin: string): OriginGuard {
    const o = this.#options;
    const clock = this.#clock;
    // The Session's budgets count over 1 s, not 10: healthy traffic before an outage must not
    // bank retries that the outage then spends. Over 2 s, a 5 s outage under a steady load cost
    // 1.24 times the requests upstream; over 1 s, 1.20 (bench/real-limits.ts, against nginx).
    const budget =
      o.budget === false
        ? undefined
        : o.budget instanceof RetryBudget
          ? o.budget
          : new RetryBudget({ ttlMs: SESSION_BUDGET_TTL_MS, ...(o.budget ?? {}), clock });
    const breaker =
      o.breaker === undefined || o.breaker === false
        ? undefined
        : o.breaker instanceof CircuitBreaker
          ? o.breaker
          : new CircuitBreaker({ name: origin, ...o.breaker, clock } as CircuitBreakerOptions);
    const r = o.rateLimit ?? 'adaptive';
    let limiter: RateLimiter | undefined;
    if (r === 'adaptive') limiter = new AdaptiveRateLimiter({ clock });
    else if (
      // Stryker disable next-line ConditionalExpression: r is never undefined (?? 'adaptive'); the check narrows the type
      r !== undefined &&
      r !== false
    ) {
      if (
        typeof r !== 'object' ||
        // Stryker disable next-line ConditionalExpression: r is never null here (null ?? 'adaptive' gives 'adaptive'); the check narrows the type
        r === null
      )
        throw new TypeError(
          `${this.#where}: rateLimit must be { perSecond, burst }, 'adaptive', { adaptive: options }, a RateLimiter or false, got ${showValue(r)}`,
        );
      if (isRateLimiter(r)) limiter = r;
      else if ('adaptive' in r) limiter = new AdaptiveRateLimiter({ ...r.adaptive, clock });
      else limiter = new TokenBucketLimiter({ ...r, clock });
    }
    if (breaker && origin !== '') observeBreaker(breaker, origin);
    return new OriginGuard(origin, {
      ...(budget && { budget }),
      ...(breaker && { breaker }),
      ...(limiter && { limiter }),
      cooldown: o.cooldown !== false,
      clock,
    });
  }
}
