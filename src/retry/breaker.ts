import { BrokenCircuitError, type CircuitRefusal } from './breaker-error.js';
import {
  type CircuitBreakerOptions,
  type ResolvedBreakerOptions,
  resolveBreakerOptions,
} from './breaker-options.js';
import { Emitter, type Listener, type Subscription } from './events.js';
import { SlidingCounters } from './sliding-window.js';
import {
  assertDuration,
  assertFunction,
  assertNonNegativeInteger,
  assertPlainObject,
  showValue,
} from './validate.js';

/** `closed`: requests flow; `open`: they fail fast; `half-open`: a few probes test the water. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** Why the state changed. */
export type CircuitChangeReason =
  | 'failure-threshold'
  | 'failure-ratio'
  | 'half-open-delay-elapsed'
  | 'probe-succeeded'
  | 'probe-failed'
  | 'probe-lost';

/** What state-change listeners receive. Frozen. */
export interface CircuitStateChange {
  readonly from: CircuitState;
  readonly to: CircuitState;
  readonly reason: CircuitChangeReason;
  /** When the change took effect, on the breaker's clock. */
  readonly atMs: number;
  /** When an open circuit will half-open (on the breaker's clock); `undefined` unless `to` is open. */
  readonly retryAtMs: number | undefined;
  /** The half-open delay in force after the change, in milliseconds. */
  readonly halfOpenAfterMs: number;
  /** The failure that last counted against the circuit, if reported. */
  readonly lastFailure: unknown;
}

/** Permission to make one request. Report how it went exactly once; later reports are ignored. */
export interface CircuitPermit {
  readonly allowed: true;
  /** The state that granted it. */
  readonly state: 'closed' | 'half-open';
  /** A half-open probe: its outcome closes or re-opens the circuit. */
  readonly isProbe: boolean;
  /** The request worked. */
  success(): void;
  /** The request failed; the error (optional) becomes the `cause` of later refusals. */
  failure(error?: unknown): void;
  /** No verdict (the caller aborted, the error says nothing about the server): frees the slot. */
  release(): void;
}

/**
 * The serialised state of a breaker, from `toJSON()`, for `CircuitBreaker.fromJSON()` after a
 * restart. Times are relative to the moment `toJSON()` ran (the clock of one process means
 * nothing to the next), so the time the process was down is not subtracted: a restored open
 * circuit waits its full remaining delay, which errs on the side of the server.
 */
export interface CircuitBreakerJSON {
  readonly version: 1;
  readonly mode: 'consecutive' | 'ratio';
  readonly state: CircuitState;
  /** The half-open delay in force (it grows with failed probes), in milliseconds. */
  readonly halfOpenAfterMs: number;
  /** When open: milliseconds left before it half-opens. Otherwise 0. */
  readonly halfOpenInMs: number;
  /** Consecutive mode: failures in a row so far. Otherwise 0. */
  readonly consecutiveFailures: number;
}

const STATES: readonly CircuitState[] = ['closed', 'open', 'half-open'];

/**
 * A circuit breaker: after enough failures it stops sending requests to a dependency that is
 * down (failing fast instead), then lets a few probes through to see whether it is back.
 *
 * - **closed**: every request gets a permit. In `consecutive` mode (the default) `threshold`
 *   failures in a row open the circuit; in `ratio` mode a failure ratio of at least
 *   `failureRatio` over the last `windowMs`, once `minimumRequests` outcomes are in it, does.
 * - **open**: requests are refused with the time at which the circuit half-opens:
 *   `halfOpenAfterMs` after it opened.
 * - **half-open**: up to `halfOpenProbes` requests are let through as probes, the others are
 *   refused. The first probe to succeed closes the circuit (and resets the delay); the first to
 *   fail, or to stay silent longer than the delay, re-opens it with the delay multiplied by
 *   `halfOpenBackoffFactor`, capped at `maxHalfOpenAfterMs`.
 *
 * The breaker sets no timers: time-driven changes happen when it is next asked (`state`,
 * `tryAcquire()`, `execute()`, `toJSON()`), dated when they were due. Outcomes reported by a
 * permit granted before the latest state change are ignored: a slow request from before the
 * circuit opened neither closes it nor counts against the next closed period.
 *
 * @example
 * const breaker = new CircuitBreaker({ threshold: 5, halfOpenAfterMs: 10_000 });
 * breaker.onOpen(({ retryAtMs }) => console.warn('inventory is down until', retryAtMs));
 * const stock = await breaker.execute(() => fetchStock(sku)); // throws BrokenCircuitError when open
 */
export class CircuitBreaker {
  readonly #options: ResolvedBreakerOptions;
  #state: CircuitState = 'closed';
  /** Incremented by every state change; permits remember the epoch that granted them. */
  #epoch = 0;
  #delayMs: number;
  #retryAtMs = 0;
  /** Probes in flight while half-open: id → time granted. */
  readonly #probes = new Map<number, number>();
  #nextProbeId = 0;
  #consecutiveFailures = 0;
  readonly #window: SlidingCounters<'successes' | 'failures'> | undefined;
  #lastFailure: unknown;
  readonly #changes = new Emitter<CircuitStateChange>();
  readonly #opens = new Emitter<CircuitStateChange>();
  readonly #halfOpens = new Emitter<CircuitStateChange>();
  readonly #closes = new Emitter<CircuitStateChange>();

  constructor(options?: CircuitBreakerOptions) {
    this.#options = resolveBreakerOptions('CircuitBreaker', options);
    this.#delayMs = this.#options.halfOpenAfterMs;
    this.#window =
      // Stryker disable next-line ConditionalExpression: `true` is equivalent: a window in consecutive mode is never counted in nor read, only cleared (`false` is killed)
      this.#options.mode === 'ratio'
        ? new SlidingCounters(
            ['successes', 'failures'],
            this.#options.windowMs,
            this.#options.clock,
          )
        : undefined;
  }

  /**
   * A breaker in the state `json` describes (from `toJSON()`, possibly through
   * `JSON.stringify`/`JSON.parse`), with `options` for everything else. A half-open state comes
   * back half-open with no probe in flight; a ratio-mode window comes back empty.
   * @example
   * await writeFile('breaker.json', JSON.stringify(breaker));
   * // after a restart:
   * const breaker = CircuitBreaker.fromJSON(JSON.parse(await readFile('breaker.json', 'utf8')), options);
   */
  static fromJSON(json: CircuitBreakerJSON, options?: CircuitBreakerOptions): CircuitBreaker {
    const breaker = new CircuitBreaker(options);
    breaker.#restore(json);
    return breaker;
  }

  /** The current state (applying a change that has fallen due). */
  get state(): CircuitState {
    this.#tick(this.#options.clock.now());
    return this.#state;
  }

  /** The `name` option. */
  get name(): string | undefined {
    return this.#options.name;
  }

  /**
   * Asks to make one request: a permit to report on, or a refusal saying until when.
   * @example
   * const permit = breaker.tryAcquire();
   * if (!permit.allowed) throw new BrokenCircuitError(permit);
   * try { const result = await call(); permit.success(); return result; }
   * catch (error) { permit.failure(error); throw error; }
   */
  tryAcquire(): CircuitPermit | CircuitRefusal {
    const now = this.#options.clock.now();
    this.#tick(now);
    if (this.#state === 'closed') return this.#permit(undefined);
    if (this.#state === 'open') return this.#refusal('open', this.#retryAtMs, now);
    if (this.#probes.size < this.#options.halfOpenProbes) {
      // Stryker disable next-line UpdateOperator: probe ids only need to be distinct Map keys; counting down gives distinct ids too
      const id = this.#nextProbeId++;
      this.#probes.set(id, now);
      return this.#permit(id);
    }
    return this.#refusal('half-open', Math.min(...this.#probes.values()) + this.#delayMs, now);
  }

  /**
   * Runs `fn` under the breaker: throws `BrokenCircuitError` without calling it when refused,
   * otherwise reports its outcome (errors that `isFailure` rejects release the permit instead)
   * and returns or rethrows what `fn` did.
   */
  async execute<T>(fn: () => T | Promise<T>): Promise<T> {
    assertFunction('CircuitBreaker.execute(fn)', fn);
    const permit = this.tryAcquire();
    if (!permit.allowed) throw new BrokenCircuitError(permit, this.#options.name);
    let value: T;
    try {
      value = await fn();
    } catch (error) {
      if (this.#options.isFailure(error)) permit.failure(error);
      else permit.release();
      throw error;
    }
    permit.success();
    return value;
  }

  /** Every state change. Listeners run synchronously, right after the change. */
  onStateChange(listener: Listener<CircuitStateChange>): Subscription {
    return this.#changes.subscribe(listener);
  }

  /** The circuit opened (from closed, or from half-open after a failed or lost probe). */
  onOpen(listener: Listener<CircuitStateChange>): Subscription {
    return this.#opens.subscribe(listener);
  }

  /** The half-open delay elapsed: probes may go through. */
  onHalfOpen(listener: Listener<CircuitStateChange>): Subscription {
    return this.#halfOpens.subscribe(listener);
  }

  /** A probe succeeded: the circuit closed. */
  onClose(listener: Listener<CircuitStateChange>): Subscription {
    return this.#closes.subscribe(listener);
  }

  /** The state, for `fromJSON()` after a restart. */
  toJSON(): CircuitBreakerJSON {
    const now = this.#options.clock.now();
    this.#tick(now);
    return Object.freeze({
      version: 1,
      mode: this.#options.mode,
      state: this.#state,
      halfOpenAfterMs: this.#delayMs,
      halfOpenInMs: this.#state === 'open' ? Math.max(0, this.#retryAtMs - now) : 0,
      consecutiveFailures: this.#consecutiveFailures,
    });
  }

  #permit(probeId: number | undefined): CircuitPermit {
    const epoch = this.#epoch;
    let settled = false;
    const settle = (verdict: 'success' | 'failure' | 'release', error?: unknown): void => {
      if (settled) return;
      settled = true;
      this.#report(epoch, probeId, verdict, error);
    };
    return Object.freeze({
      allowed: true as const,
      state: probeId === undefined ? ('closed' as const) : ('half-open' as const),
      isProbe: probeId !== undefined,
      success: () => settle('success'),
      failure: (error?: unknown) => settle('failure', error),
      release: () => settle('release'),
    });
  }

  #refusal(state: 'open' | 'half-open', retryAtMs: number, now: number): CircuitRefusal {
    return Object.freeze({
      allowed: false as const,
      state,
      retryAtMs,
      retryAfterMs: Math.max(0, retryAtMs - now),
      lastFailure: this.#lastFailure,
    });
  }

  #report(
    epoch: number,
    probeId: number | undefined,
    verdict: 'success' | 'failure' | 'release',
    error: unknown,
  ): void {
    const now = this.#options.clock.now();
    this.#tick(now);
    if (epoch !== this.#epoch) return; // granted before the latest change: stale
    if (probeId !== undefined) {
      if (!this.#probes.delete(probeId)) return;
      if (verdict === 'success') this.#enter('closed', 'probe-succeeded', now);
      else if (verdict === 'failure') {
        this.#lastFailure = error;
        this.#enter('open', 'probe-failed', now);
      }
      return;
    }
    if (verdict === 'release') return;
    const options = this.#options;
    if (verdict === 'success') {
      this.#consecutiveFailures = 0;
      this.#window?.add('successes');
      return;
    }
    this.#lastFailure = error;
    if (options.mode === 'consecutive') {
      this.#consecutiveFailures++;
      if (this.#consecutiveFailures >= options.threshold)
        this.#enter('open', 'failure-threshold', now);
      return;
    }
    const window = this.#window as SlidingCounters<'successes' | 'failures'>;
    window.add('failures');
    const failures = window.sum('failures');
    const total = failures + window.sum('successes');
    if (total >= options.minimumRequests && failures / total >= options.failureRatio)
      this.#enter('open', 'failure-ratio', now);
  }

  /** Applies the changes time has brought about by `now`, each dated when it fell due. */
  #tick(now: number): void {
    for (;;) {
      if (this.#state === 'open' && now >= this.#retryAtMs) {
        this.#enter('half-open', 'half-open-delay-elapsed', this.#retryAtMs);
        continue;
      }
      // Stryker disable next-line ConditionalExpression,LogicalOperator,EqualityOperator: equivalent: probes exist only while half-open (#enter clears them), and with none Math.min() is Infinity, a deadline never reached (`false`, `!==` and `<= 0` are killed)
      if (this.#state === 'half-open' && this.#probes.size > 0) {
        const oldest = Math.min(...this.#probes.values());
        const deadline = oldest + this.#delayMs;
        // `now > oldest`: with a zero delay a probe still gets until time moves on.
        if (now >= deadline && now > oldest) {
          this.#enter('open', 'probe-lost', deadline);
          continue;
        }
      }
      return;
    }
  }

  #enter(to: CircuitState, reason: CircuitChangeReason, atMs: number): void {
    const from = this.#state;
    const options = this.#options;
    this.#state = to;
    // Stryker disable next-line UpdateOperator: epochs are only compared for equality; counting down keeps them distinct
    this.#epoch++;
    this.#probes.clear();
    if (to === 'open') {
      if (from === 'half-open') {
        this.#delayMs = Math.min(
          this.#delayMs * options.halfOpenBackoffFactor,
          options.maxHalfOpenAfterMs,
        );
      }
      this.#retryAtMs = atMs + this.#delayMs;
    } else if (to === 'closed') {
      this.#delayMs = options.halfOpenAfterMs;
      this.#consecutiveFailures = 0;
      this.#window?.clear();
      this.#lastFailure = undefined;
    }
    const change: CircuitStateChange = Object.freeze({
      from,
      to,
      reason,
      atMs,
      retryAtMs: to === 'open' ? this.#retryAtMs : undefined,
      halfOpenAfterMs: this.#delayMs,
      lastFailure: this.#lastFailure,
    });
    const specific =
      to === 'open' ? this.#opens : to === 'half-open' ? this.#halfOpens : this.#closes;
    const errors: unknown[] = [];
    for (const emitter of [this.#changes, specific]) {
      try {
        emitter.emit(change);
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length === 1) throw errors[0];
    // Stryker disable next-line EqualityOperator: `>= 1` is equivalent: a single error was thrown on the line before (`<= 1` and `false` are killed)
    if (errors.length > 1) throw new AggregateError(errors, 'several circuit listeners threw');
  }

  #restore(json: unknown): void {
    const where = 'CircuitBreaker.fromJSON(json)';
    assertPlainObject(where, json);
    const j = json as Record<string, unknown>;
    if (j.version !== 1) {
      throw new TypeError(`${where}: version must be 1, got ${showValue(j.version)}`);
    }
    if (!STATES.includes(j.state as CircuitState)) {
      throw new TypeError(
        `${where}: state must be 'closed', 'open' or 'half-open', got ${showValue(j.state)}`,
      );
    }
    assertDuration(`${where}: halfOpenAfterMs`, j.halfOpenAfterMs);
    assertDuration(`${where}: halfOpenInMs`, j.halfOpenInMs);
    assertNonNegativeInteger(`${where}: consecutiveFailures`, j.consecutiveFailures);
    const options = this.#options;
    const now = options.clock.now();
    this.#state = j.state as CircuitState;
    this.#delayMs = Math.min(
      Math.max(j.halfOpenAfterMs, options.halfOpenAfterMs),
      options.maxHalfOpenAfterMs,
    );
    // Stryker disable next-line ConditionalExpression: `true` is equivalent: #retryAtMs is only read while open, and #enter('open') sets it anew (`false` is killed)
    if (this.#state === 'open') this.#retryAtMs = now + Math.min(j.halfOpenInMs, this.#delayMs);
    if (this.#state === 'closed' && options.mode === 'consecutive')
      this.#consecutiveFailures = j.consecutiveFailures;
  }
}
