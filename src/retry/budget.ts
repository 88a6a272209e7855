import type { Clock } from './clock.js';
import { SlidingCounters } from './sliding-window.js';
import { assertNumberAtLeast, EPSILON, readClock, readOptions } from './storm-validate.js';
import { assertNumberInRange, assertPositiveInteger, assertPositiveNumber } from './validate.js';

/**
 * Options of {@link RetryBudget}. The defaults are Finagle's numbers: 20% of traffic, and a
 * reserve of 10 retries per second, counted over 10 s (the reserve is a floor here, not an
 * addition: see the class).
 */
export interface RetryBudgetOptions {
  /**
   * How many retries each request earns: every first attempt deposits this fraction of a retry
   * token, every retry withdraws a whole one. `0.2` caps the retries that fail at 20% of the
   * requests made in the last `ttlMs`, so a full outage adds at most 20% load (or the reserve,
   * when that is more). From 0 to 1000.
   * @default 0.2
   * @example { percentCanRetry: 0.1 } // at most 10% extra load during an outage
   */
  percentCanRetry?: number;
  /**
   * Retries always allowed whatever the traffic: a reserve of `minRetriesPerSecond · ttlMs /
   * 1000` tokens that comes back as the retries drawn from it age out of the window. It is what a
   * client making few requests lives on (with the defaults, 100 retries per 10 s); once the
   * deposits of `percentCanRetry` exceed it, it adds nothing.
   * @default 10
   * @example { minRetriesPerSecond: 2 } // a reserve of 20 retries per 10 s
   */
  minRetriesPerSecond?: number;
  /**
   * How long a deposit or a withdrawal counts, in milliseconds. The window moves in tenths of
   * `ttlMs`, so a deposit counts for between 0.9 and 1 times `ttlMs`.
   * @default 10_000
   * @example { ttlMs: 60_000 } // a budget over the last minute
   */
  ttlMs?: number;
  /**
   * The source of time. Tests pass `FakeClock` from `dogged/testing`.
   * @default systemClock
   * @example { clock: new FakeClock() }
   */
  clock?: Clock;
}

const BUDGET_KEYS = ['percentCanRetry', 'minRetriesPerSecond', 'ttlMs', 'clock'] as const;
const BUDGET_HINTS: Record<string, string> = {
  ratio: 'use percentCanRetry',
  percent: 'use percentCanRetry',
  maxTokens: 'this budget has no fixed size; use minRetriesPerSecond for the reserve',
  windowMs: 'the window option is named ttlMs',
  ttl: 'the window option is named ttlMs (milliseconds)',
};

/** Token sums are products of decimal fractions: compare with a tolerance, report rounded. */
const round = (value: number): number => Math.round(value * 1e9) / 1e9;

/** A read-only picture of a {@link RetryBudget}, from `snapshot()` or `toJSON()`. */
export interface RetryBudgetSnapshot {
  /** Retry tokens available now (the larger of deposits and reserve, − charged retries); a retry needs 1. */
  readonly tokens: number;
  /** The reserve: `minRetriesPerSecond · ttlMs / 1000` tokens. */
  readonly reserve: number;
  /** What the current window (the last `ttlMs`) holds. */
  readonly window: {
    /** First attempts recorded. */
    readonly requests: number;
    /** Tokens they deposited: `requests · percentCanRetry`. */
    readonly deposited: number;
    /** Retries charged: granted and not refunded. */
    readonly retries: number;
  };
  /** Counters since the budget was created. */
  readonly totals: {
    readonly requests: number;
    readonly successes: number;
    /** Retries granted. */
    readonly retries: number;
    /** Retries refused because the budget was exhausted. */
    readonly refused: number;
    /** Granted retries that succeeded and got their token back. */
    readonly refunded: number;
  };
  readonly percentCanRetry: number;
  readonly minRetriesPerSecond: number;
  readonly ttlMs: number;
}

/**
 * A retry budget: keeps retries to a bounded share of the traffic, so that when a server goes
 * down its clients do not multiply their load on it exactly when it can least take it.
 *
 * The model is Finagle's `RetryBudget` with a refund for retries that work:
 * - every first attempt ({@link recordRequest}) deposits `percentCanRetry` of a token;
 * - every retry ({@link tryRetry}) withdraws 1 token, or is refused when fewer than 1 is left;
 * - a retry that succeeds ({@link recordSuccess} with its attempt number) gets its token back:
 *   it did the work it was for and was not part of a storm;
 * - deposits and withdrawals count for `ttlMs` (a sliding window); when the deposits of the
 *   window are fewer than a reserve of `minRetriesPerSecond · ttlMs / 1000` tokens, the reserve
 *   stands in for them.
 *
 * So within any window, failed retries ≤ `max(percentCanRetry · requests, reserve)`. In a full
 * outage nothing succeeds and nothing is refunded: the extra load is at most 20% of the
 * requests, or 10 retries per second for a client that sends fewer than 50 (with the
 * defaults). Finagle adds the reserve to the deposits instead; then a client sending 100
 * requests/s into an outage adds 30%, not 20% (measured: 1.32 times the requests upstream in a
 * 5 s outage, against 1.2). When retries succeed with probability `s`, retries ≤
 * `0.2 / (1 − s)` of the requests: 25% extra when one retry in five works, and a server that
 * answers 80% of requests sees every failure retried.
 *
 * Sharing: a budget is a plain object with no I/O. Give the same instance to every caller that
 * talks to the same dependency (several `retry()` loops, several sessions, a whole worker pool
 * in one process) and they draw from one pool, which is what bounds a fleet's load. JavaScript
 * runs one callback at a time, so no locking is needed.
 *
 * @example
 * const budget = new RetryBudget(); // 20% of requests, at least 10 retries/s, over 10 s
 * const report = await retry(
 *   async ({ attempt }) => {
 *     if (attempt === 1) budget.recordRequest();
 *     const value = await fetchReport();
 *     budget.recordSuccess(attempt);
 *     return value;
 *   },
 *   // `or` short-circuits: a token is only withdrawn for a retry that will really happen.
 *   { stop: defaults.stop.or(() => !budget.tryRetry()) },
 * );
 */
export class RetryBudget {
  readonly #percentCanRetry: number;
  readonly #minRetriesPerSecond: number;
  readonly #ttlMs: number;
  readonly #reserve: number;
  readonly #window: SlidingCounters<'requests' | 'retries'>;
  #requests = 0;
  #successes = 0;
  #retries = 0;
  #refused = 0;
  #refunded = 0;

  constructor(options?: RetryBudgetOptions) {
    const o = readOptions('RetryBudget', options, BUDGET_KEYS, BUDGET_HINTS);
    const percentCanRetry = o.percentCanRetry ?? 0.2;
    const minRetriesPerSecond = o.minRetriesPerSecond ?? 10;
    const ttlMs = o.ttlMs ?? 10_000;
    assertNumberInRange('RetryBudget: percentCanRetry', percentCanRetry, 0, 1000);
    assertNumberAtLeast('RetryBudget: minRetriesPerSecond', minRetriesPerSecond, 0);
    assertPositiveNumber('RetryBudget: ttlMs', ttlMs);
    const clock = readClock('RetryBudget', o.clock);
    this.#percentCanRetry = percentCanRetry;
    this.#minRetriesPerSecond = minRetriesPerSecond;
    this.#ttlMs = ttlMs;
    this.#reserve = (minRetriesPerSecond * ttlMs) / 1000;
    this.#window = new SlidingCounters(['requests', 'retries'], ttlMs, clock);
  }

  /** Records a first attempt: deposits `percentCanRetry` of a token. Retries are not requests. */
  recordRequest(): void {
    this.#requests++;
    this.#window.add('requests');
  }

  /**
   * Asks for one retry: withdraws a token and returns `true`, or returns `false` when less
   * than one token is left (then nothing is withdrawn: fail fast with the last real outcome).
   */
  tryRetry(): boolean {
    // Stryker disable next-line EqualityOperator: `<=` differs only for a balance of exactly 1 - EPSILON, which sums of deposits (multiples of percentCanRetry) and whole withdrawals do not reach
    if (this.#tokens() < 1 - EPSILON) {
      this.#refused++;
      return false;
    }
    this.#retries++;
    this.#window.add('retries');
    return true;
  }

  /**
   * Records a success. Pass the attempt number that succeeded (1-based, as `AttemptState`
   * has it): when it is above 1 the success came from a retry, and that retry's token is
   * refunded. A first-attempt success only counts. A refund never exceeds the retries charged
   * in the window, so a wrong attempt number cannot inflate the budget.
   * @default attempt = 1
   * @example budget.recordSuccess(state.attempt)
   */
  recordSuccess(attempt = 1): void {
    assertPositiveInteger('RetryBudget.recordSuccess(attempt)', attempt);
    this.#successes++;
    if (attempt > 1) this.#refunded += this.#window.takeBack('retries', 1);
  }

  /** A frozen picture of the budget now. */
  snapshot(): RetryBudgetSnapshot {
    const requests = this.#window.sum('requests');
    return Object.freeze({
      tokens: round(this.#tokens()),
      reserve: round(this.#reserve),
      window: Object.freeze({
        requests,
        deposited: round(requests * this.#percentCanRetry),
        retries: this.#window.sum('retries'),
      }),
      totals: Object.freeze({
        requests: this.#requests,
        successes: this.#successes,
        retries: this.#retries,
        refused: this.#refused,
        refunded: this.#refunded,
      }),
      percentCanRetry: this.#percentCanRetry,
      minRetriesPerSecond: this.#minRetriesPerSecond,
      ttlMs: this.#ttlMs,
    });
  }

  /** The snapshot, so `JSON.stringify(budget)` and loggers show it. */
  toJSON(): RetryBudgetSnapshot {
    return this.snapshot();
  }

  #tokens(): number {
    const deposits = this.#window.sum('requests') * this.#percentCanRetry;
    return Math.max(deposits, this.#reserve) - this.#window.sum('retries');
  }
}
