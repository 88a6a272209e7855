import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { Semaphore } from 'redis-semaphore';
import type { RandomSource } from '../../retry/random.js';
import { pause } from '../../retry/timer.js';
import type { HostRate } from '../host-limits.js';
import { HOST_MAX_PAUSE_MS } from '../options.js';
import { FleetPace } from './fleet-pace.js';
import type { FleetBudgetSpec } from './job-config.js';
import type { JobKeys } from './keys.js';

/** What a worker waits for in-process at most; a longer hold sends the line back to the queue. */
const MAX_LOCAL_WAIT_MS = 2000;
/** How often the head of a host's local queue asks Redis for a free slot. */
const SLOT_POLL_MS = 20;
/** A leased slot of a worker that died is free again after this (leases are refreshed). */
const LEASE_MS = 10_000;
/** Retry-budget tokens are counted in hundredths (rate-limiter-flexible counts integers). */
const SCALE = 100;

/** The fleet-wide limits of one job. */
export interface FleetLimits {
  readonly perHost: number;
  /** The pacing of each host, fleet-wide (as the local runner's `rate`). */
  readonly rate: HostRate;
  readonly budget: FleetBudgetSpec | false;
  /** Whether a throttle (429, 503 + Retry-After) pauses the host for every worker. */
  readonly cooldown: boolean;
  readonly random?: RandomSource | undefined;
}

/** The answer to "may this line start now?". */
export type Admission =
  | { readonly ok: true; readonly release: () => Promise<void> }
  | {
      readonly ok: false;
      readonly until: number;
      readonly reason: 'cooldown' | 'busy' | 'rate' | 'budget';
    };

/**
 * Fleet-wide politeness for one job, in Redis, shared by every worker on every machine:
 * - per-host concurrency: a lease-based semaphore per host (redis-semaphore: leases of a dead
 *   worker expire);
 * - per-host pace and pauses ({@link FleetPace}): the host's adaptive rate (or a fixed one),
 *   starts spaced at it fleet-wide, and a throttle (429, 503 + Retry-After) seen by any worker
 *   pausing the host for every worker;
 * - the retry budget (the `RetryBudget` model per host: each first attempt deposits
 *   `percentCanRetry` of a token, each retry takes one, a retry that succeeds gives it back, plus
 *   a reserve), counted by rate-limiter-flexible in fixed windows of `ttlMs`.
 *
 * In one process only the head of each host's queue asks Redis, so waiting costs a few requests
 * per second per worker and host, not one per waiting line.
 */
export class FleetGate {
  readonly #redis: Redis;
  readonly #keys: JobKeys;
  readonly #limits: FleetLimits;
  /** The hosts' pace and pauses. */
  readonly pace: FleetPace;
  readonly #budget: RateLimiterRedis | undefined;
  readonly #deposit: number;
  /** Budget deposits on their way to Redis. */
  readonly #deposits = new Set<Promise<void>>();
  /** Per host: the tail of the local admission chain and how many wait in it. */
  readonly #queues = new Map<string, { tail: Promise<void>; waiting: number }>();

  constructor(redis: Redis, keys: JobKeys, limits: FleetLimits) {
    this.#redis = redis;
    this.#keys = keys;
    this.#limits = limits;
    this.pace = new FleetPace(redis, keys, {
      rate: limits.rate,
      maxPauseMs: HOST_MAX_PAUSE_MS,
      pause: limits.cooldown,
      random: limits.random,
    });
    const budget = limits.budget;
    this.#deposit = budget ? Math.round(budget.percentCanRetry * SCALE) : 0;
    this.#budget = budget
      ? new RateLimiterRedis({
          storeClient: redis,
          keyPrefix: keys.budget,
          points:
            Math.max(1, Math.round(budget.minRetriesPerSecond * (budget.ttlMs / 1000))) * SCALE,
          duration: Math.max(1, Math.round(budget.ttlMs / 1000)),
        })
      : undefined;
  }

  /**
   * Waits (briefly, in-process) until a request to `host` may start fleet-wide. Resolves with a
   * permit to release when the request ends, or with the time to come back when the hold is
   * longer than a worker should wait for.
   */
  async admit(
    host: string,
    options: { isRetry: boolean; signal?: AbortSignal },
  ): Promise<Admission> {
    const queue = this.#queues.get(host) ?? { tail: Promise.resolve(), waiting: 0 };
    this.#queues.set(host, queue);
    // Too many lines of one busy host waiting here: give their worker slots to other hosts.
    if (queue.waiting >= this.#limits.perHost * 2)
      return { ok: false, until: Date.now() + 200 + Math.random() * 300, reason: 'busy' };
    queue.waiting++;
    let done = (): void => {};
    const turn = queue.tail;
    queue.tail = new Promise<void>((resolve) => {
      done = resolve;
    });
    try {
      await turn;
      return await this.#admitHead(host, options);
    } finally {
      queue.waiting--;
      done();
      if (queue.waiting === 0 && this.#queues.get(host) === queue) this.#queues.delete(host);
    }
  }

  async #admitHead(
    host: string,
    options: { isRetry: boolean; signal?: AbortSignal },
  ): Promise<Admission> {
    const deadline = Date.now() + MAX_LOCAL_WAIT_MS;
    let lease: Semaphore | undefined;
    for (;;) {
      if (options.signal?.aborted) return { ok: false, until: Date.now(), reason: 'busy' };
      const held = await this.pace.pausedUntil(host);
      const now = Date.now();
      if (held > now) {
        if (held > deadline)
          return { ok: false, until: held + Math.random() * 100, reason: 'cooldown' };
        await pause(held - now, options.signal);
        continue;
      }
      const semaphore = new Semaphore(
        this.#redis,
        `${this.#keys.slots}:${host}`,
        this.#limits.perHost,
        {
          lockTimeout: LEASE_MS,
          refreshInterval: LEASE_MS / 3,
          acquireAttemptsLimit: 1,
          onLockLost: () => {},
        },
      );
      if (await semaphore.tryAcquire()) {
        lease = semaphore;
        break;
      }
      if (Date.now() + SLOT_POLL_MS > deadline)
        return { ok: false, until: Date.now() + 100 + Math.random() * 200, reason: 'busy' };
      await pause(SLOT_POLL_MS * (0.5 + Math.random()), options.signal);
    }
    const release = async (): Promise<void> => {
      await lease?.release().catch(() => {});
    };
    if (options.isRetry && this.#budget) {
      const refusedFor = await this.#takeRetryToken(host);
      if (refusedFor !== undefined) {
        await release();
        return {
          ok: false,
          until: Date.now() + refusedFor + Math.random() * 100,
          reason: 'budget',
        };
      }
    }
    const rate = await this.pace.rateOf(host, Date.now());
    if (Number.isFinite(rate)) {
      const slot = await this.pace.slot(host, Date.now(), rate, deadline - Date.now());
      if ('until' in slot) {
        await release();
        return { ok: false, until: slot.until + Math.random() * (1000 / rate), reason: 'rate' };
      }
      const wait = slot.at - Date.now();
      if (wait > 0) await pause(wait, options.signal);
    }
    // A first attempt deposits its share of a retry token (not awaited: nothing waits on it).
    if (!options.isRetry && this.#budget && this.#deposit > 0) {
      const deposit = this.#budget.reward(host, this.#deposit).then(
        () => {},
        () => {},
      );
      this.#deposits.add(deposit);
      void deposit.finally(() => this.#deposits.delete(deposit));
    }
    return { ok: true, release };
  }

  /** Undefined when a retry token was taken; else how long until the budget's window renews. */
  async #takeRetryToken(host: string): Promise<number | undefined> {
    const budget = this.#budget as RateLimiterRedis;
    try {
      await budget.consume(host, SCALE);
      return undefined;
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      // A refused retry takes nothing: give back what the failed consume counted.
      await budget.reward(host, SCALE);
      return error.msBeforeNext;
    }
  }

  /** A retry that succeeded did the work it was for: its token goes back to the budget. */
  async refundRetry(host: string): Promise<void> {
    await this.#budget?.reward(host, SCALE);
  }

  /** Resolves once every budget deposit made so far has reached Redis (or failed). */
  async settled(): Promise<void> {
    await Promise.all([...this.#deposits]);
  }

  /** Stops the pace's background flush after sending in what it holds. */
  async close(): Promise<void> {
    await this.settled();
    await this.pace.close();
  }
}
