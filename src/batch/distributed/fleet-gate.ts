import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { Semaphore } from 'redis-semaphore';
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
  /** Request starts per second per host, fleet-wide; null for none. */
  readonly rate: number | null;
  readonly budget: FleetBudgetSpec | false;
  readonly cooldown: boolean;
}

/** The answer to "may this line start now?". */
export type Admission =
  | { readonly ok: true; readonly release: () => Promise<void> }
  | {
      readonly ok: false;
      readonly until: number;
      readonly reason: 'cooldown' | 'busy' | 'rate' | 'budget';
    };

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Fleet-wide politeness for one job, in Redis, shared by every worker on every machine:
 * - per-host concurrency: a lease-based semaphore per host (redis-semaphore: leases of a dead
 *   worker expire);
 * - per-host rate: starts are spaced `1000 / rate` ms apart: each start takes the one token of
 *   its time slot (rate-limiter-flexible), so any second holds at most `rate + 1` starts;
 * - the per-origin Retry-After cooldown: a 429/503 with Retry-After seen by any worker holds
 *   every worker off that host until then;
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
  readonly #pace: RateLimiterRedis | undefined;
  readonly #intervalMs: number;
  readonly #budget: RateLimiterRedis | undefined;
  readonly #deposit: number;
  /** Per host: the tail of the local admission chain and how many wait in it. */
  readonly #queues = new Map<string, { tail: Promise<void>; waiting: number }>();

  constructor(redis: Redis, keys: JobKeys, limits: FleetLimits) {
    this.#redis = redis;
    this.#keys = keys;
    this.#limits = limits;
    this.#intervalMs = limits.rate ? 1000 / limits.rate : 0;
    this.#pace = limits.rate
      ? new RateLimiterRedis({
          storeClient: redis,
          keyPrefix: keys.pace,
          points: 1,
          duration: Math.ceil(this.#intervalMs / 1000) + 1,
        })
      : undefined;
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
      const held = await this.cooldownUntil(host);
      const now = Date.now();
      if (held > now) {
        if (held > deadline)
          return { ok: false, until: held + Math.random() * 100, reason: 'cooldown' };
        await sleep(held - now, options.signal);
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
      await sleep(SLOT_POLL_MS * (0.5 + Math.random()), options.signal);
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
    if (this.#pace) {
      const at = await this.#paceSlot(host, deadline, options.signal);
      if (at !== undefined) {
        await release();
        return { ok: false, until: at, reason: 'rate' };
      }
    }
    // A first attempt deposits its share of a retry token (not awaited: nothing waits on it).
    if (!options.isRetry && this.#budget && this.#deposit > 0)
      this.#budget.reward(host, this.#deposit).catch(() => {});
    return { ok: true, release };
  }

  /**
   * Takes the token of the current rate slot; when it is taken, waits for the next slot. Resolves
   * undefined once a slot is ours, or the time to come back when that is past `deadline`.
   */
  async #paceSlot(
    host: string,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<number | undefined> {
    const pace = this.#pace as RateLimiterRedis;
    for (;;) {
      const now = Date.now();
      const slot = Math.floor(now / this.#intervalMs);
      try {
        await pace.consume(`${host}:${slot}`, 1);
        return undefined;
      } catch (error) {
        if (!(error instanceof RateLimiterRes)) throw error;
      }
      const next = (slot + 1) * this.#intervalMs;
      if (next > deadline || signal?.aborted) return next + Math.random() * this.#intervalMs;
      await sleep(next - Date.now(), signal);
    }
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

  /** When the host's Retry-After hold ends (epoch ms; 0 when none). */
  async cooldownUntil(host: string): Promise<number> {
    if (!this.#limits.cooldown) return 0;
    const value = await this.#redis.get(`${this.#keys.cooldown}:${host}`);
    return value === null ? 0 : Number(value);
  }

  /** A Retry-After from `host`: hold every worker off it for `ms`. */
  async holdHost(host: string, ms: number): Promise<void> {
    if (!this.#limits.cooldown || !(ms > 0)) return;
    const until = Date.now() + ms;
    if ((await this.cooldownUntil(host)) >= until) return;
    await this.#redis.set(
      `${this.#keys.cooldown}:${host}`,
      String(until),
      'PX',
      Math.ceil(ms) + 1000,
    );
  }
}
