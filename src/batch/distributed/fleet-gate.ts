import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { RandomSource } from '../../retry/random.js';
import { pause } from '../../retry/timer.js';
import type { HostRate } from '../host-limits.js';
import { HOST_MAX_PAUSE_MS } from '../options.js';
import { FleetPace } from './fleet-pace.js';
import { HostSlots } from './host-slots.js';
import type { FleetBudgetSpec } from './job-config.js';
import type { JobKeys } from './keys.js';

/** What a worker waits for in-process at most; a longer hold sends the line back to the queue. */
const MAX_LOCAL_WAIT_MS = 2000;
/** Retry-budget tokens are counted in hundredths (rate-limiter-flexible counts integers). */
const SCALE = 100;
/** How often budget deposits and refunds gathered in-process are sent to Redis. */
const BUDGET_FLUSH_MS = 1000;
/** A pacing slice: the starts a worker takes at once cover at most this long at the host's rate. */
const SLICE_MS = 100;

/** The fleet-wide limits of one job. */
export interface FleetLimits {
  readonly perHost: number;
  /**
   * The most requests this worker has in flight at once (its concurrency): it never leases more
   * of a host's slots than that, headroom included. Unbounded when not given.
   */
  readonly workerConcurrency?: number | undefined;
  /** The pacing of each host, fleet-wide (as the local runner's `rate`). */
  readonly rate: HostRate;
  readonly budget: FleetBudgetSpec | false;
  /** Whether a throttle (429, 503 + Retry-After) pauses the host for every worker. */
  readonly cooldown: boolean;
  readonly random?: RandomSource | undefined;
}

/** A pause this long or longer holds a line that waited into it; a shorter one is waited out. */
const HOLD_PAUSE_MS = 250;

/** The answer to "may this line start now?". */
export type Admission =
  | { readonly ok: true; readonly release: () => void }
  | {
      readonly ok: false;
      readonly until: number;
      readonly reason: 'cooldown' | 'busy' | 'rate' | 'budget';
    };

/**
 * Fleet-wide politeness for one job, in Redis, shared by every worker on every machine, at a
 * cost of a few round trips per host and second, not per request:
 * - per-host concurrency ({@link HostSlots}): a worker leases some of a host's `perHost` slots
 *   for a few seconds and hands them out locally; the leases of a dead worker expire in seconds;
 * - per-host pace and pauses ({@link FleetPace}): the host's adaptive rate (or a fixed one),
 *   starts spaced at it fleet-wide (a worker takes the starts of the next ~100 ms at once), and a
 *   throttle (429, 503 + Retry-After) seen by any worker pausing the host for every worker (read
 *   at most every 250 ms, at once after a throttle);
 * - the retry budget (the `RetryBudget` model per host: each first attempt deposits
 *   `percentCanRetry` of a token, each retry takes one, a retry that succeeds gives it back, plus
 *   a reserve), counted by rate-limiter-flexible in fixed windows of `ttlMs`; deposits and
 *   refunds are summed in-process and sent every second.
 *
 * In one process the lines of a host wait in line and only the head waits on the fleet, so a
 * line waiting costs nothing in Redis.
 */
export class FleetGate {
  readonly #limits: FleetLimits;
  /** The hosts' pace and pauses. */
  readonly pace: FleetPace;
  readonly #slots: HostSlots;
  readonly #budget: RateLimiterRedis | undefined;
  readonly #deposit: number;
  /** Budget points per host gathered in-process, not yet sent. */
  readonly #unsent = new Map<string, number>();
  #budgetFlush: Promise<void> | undefined;
  readonly #budgetTimer: NodeJS.Timeout | undefined;
  /** Per host: the starts taken from the fleet's schedule and not used yet (epoch ms, in order). */
  readonly #starts = new Map<string, number[]>();
  /** Per host: the tail of the local admission chain and how many wait in it. */
  readonly #queues = new Map<string, { tail: Promise<void>; waiting: number }>();

  constructor(redis: Redis, keys: JobKeys, limits: FleetLimits, worker?: string) {
    this.#limits = limits;
    this.pace = new FleetPace(redis, keys, {
      rate: limits.rate,
      maxPauseMs: HOST_MAX_PAUSE_MS,
      pause: limits.cooldown,
      random: limits.random,
    });
    this.pace.onCut = (host) => this.dropStarts(host);
    this.#slots = new HostSlots(
      redis,
      { leases: `${keys.slots}:lease`, wants: `${keys.slots}:want` },
      limits.perHost,
      `${worker ?? 'worker'}:${randomBytes(4).toString('hex')}`,
      limits.workerConcurrency,
    );
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
    if (this.#budget) {
      this.#budgetTimer = setInterval(() => void this.#flushBudget(), BUDGET_FLUSH_MS);
      this.#budgetTimer.unref();
    }
  }

  /**
   * Waits (briefly, in-process) until a request to `host` may start fleet-wide. Resolves with a
   * permit to release when the request ends, or with the time to come back when the hold is
   * longer than a worker should wait for. Admitted at once (nothing holds the host): the
   * permit itself, no promise.
   */
  admit(
    host: string,
    options: { isRetry: boolean; signal?: AbortSignal },
  ): Admission | Promise<Admission> {
    return this.#admitNow(host, options.isRetry) ?? this.#admitQueued(host, options);
  }

  async #admitQueued(
    host: string,
    options: { isRetry: boolean; signal?: AbortSignal },
  ): Promise<Admission> {
    // The lines of a host wait in line here, in order (they hold no worker slot meanwhile).
    const queue = this.#queues.get(host) ?? { tail: Promise.resolve(), waiting: 0 };
    this.#queues.set(host, queue);
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

  /**
   * The admission of a first attempt when nothing holds it and this worker's copies say so (no
   * line of the host waiting, no pause, a free leased slot, no pace): no Redis, no wait.
   */
  #admitNow(host: string, isRetry: boolean): Admission | undefined {
    if (isRetry || this.#queues.has(host)) return undefined;
    const now = Date.now();
    const pause = this.pace.knownPause(host, now);
    if (pause === undefined || pause > now) return undefined;
    if (this.pace.knownRate(host, now) !== Number.POSITIVE_INFINITY) return undefined;
    if (!this.#slots.tryAcquire(host)) return undefined;
    if (this.#budget && this.#deposit > 0) this.#gather(host, this.#deposit);
    return { ok: true, release: this.#releaser(host) };
  }

  /**
   * After a line waited (for a slot, for its start): undefined when the host is not paused (a
   * short pause, a pacing interval's, is waited out); else the line is held for the pause (a
   * Retry-After's), not sent into it.
   */
  async #pausedSince(
    host: string,
    signal: AbortSignal | undefined,
  ): Promise<Extract<Admission, { ok: false }> | undefined> {
    const until = await this.pace.pausedUntil(host);
    const left = until - Date.now();
    if (left <= 0) return undefined;
    if (left < HOLD_PAUSE_MS) {
      await pause(left, signal);
      return undefined;
    }
    return { ok: false, until: until + Math.random() * 100, reason: 'cooldown' };
  }

  /** The release of a slot of `host`, once; done at once (nothing to wait for). */
  #releaser(host: string): () => void {
    let released = false;
    return () => {
      if (!released) {
        released = true;
        this.#slots.release(host);
      }
    };
  }

  async #admitHead(
    host: string,
    options: { isRetry: boolean; signal?: AbortSignal },
  ): Promise<Admission> {
    const deadline = Date.now() + MAX_LOCAL_WAIT_MS;
    for (;;) {
      if (options.signal?.aborted) return { ok: false, until: Date.now(), reason: 'busy' };
      const held = await this.pace.pausedUntil(host);
      const now = Date.now();
      if (held <= now) break;
      if (held > deadline)
        return { ok: false, until: held + Math.random() * 100, reason: 'cooldown' };
      await pause(held - now, options.signal);
    }
    if (!(await this.#slots.acquire(host, deadline, options.signal)))
      return { ok: false, until: Date.now() + 100 + Math.random() * 200, reason: 'busy' };
    const release = this.#releaser(host);
    // A throttle may have paused the host while the line waited for a slot (the slot came
    // free because a request ended, often with that very throttle).
    const held = await this.#pausedSince(host, options.signal);
    if (held !== undefined) {
      release();
      return held;
    }
    if (options.isRetry && this.#budget) {
      const refusedFor = await this.#takeRetryToken(host);
      if (refusedFor !== undefined) {
        release();
        return {
          ok: false,
          until: Date.now() + refusedFor + Math.random() * 100,
          reason: 'budget',
        };
      }
    }
    const rate = await this.pace.rateOf(host, Date.now());
    if (Number.isFinite(rate)) {
      const start = await this.#start(host, rate, deadline);
      if ('until' in start) {
        release();
        return { ok: false, until: start.until + Math.random() * (1000 / rate), reason: 'rate' };
      }
      const wait = start.at - Date.now();
      if (wait > 0) {
        await pause(wait, options.signal);
        // A throttle may have paused the host while the line waited for its start.
        const until = this.pace.knownPause(host, Date.now()) ?? (await this.pace.pausedUntil(host));
        if (until - Date.now() >= HOLD_PAUSE_MS) {
          release();
          return { ok: false, until: until + Math.random() * 100, reason: 'cooldown' };
        }
      }
    }
    // A first attempt deposits its share of a retry token (sent with the next flush).
    if (!options.isRetry && this.#budget && this.#deposit > 0) this.#gather(host, this.#deposit);
    return { ok: true, release };
  }

  /**
   * The next start of `host` at `rate`: one of the starts this worker took from the fleet's
   * schedule, or the next ones (as many as fit in {@link SLICE_MS}, at least one). A start that
   * has gone by unused is dropped (using it late would burst).
   */
  async #start(
    host: string,
    rate: number,
    deadline: number,
  ): Promise<{ readonly at: number } | { readonly until: number }> {
    const interval = 1000 / rate;
    const now = Date.now();
    const taken = this.#starts.get(host);
    while (taken?.length && (taken[0] as number) < now - interval) taken.shift();
    const next = taken?.shift();
    if (next !== undefined) return { at: next };
    const wanted = Math.max(1, Math.min(this.#limits.perHost, Math.floor(SLICE_MS / interval)));
    const slot = await this.pace.slot(host, now, rate, deadline - now, wanted);
    if ('until' in slot) return slot;
    const starts = Array.from({ length: slot.count - 1 }, (_, i) => slot.at + (i + 1) * interval);
    if (starts.length) this.#starts.set(host, starts);
    return { at: slot.at };
  }

  /** Forgets the starts taken of `host` (its pace changed: they were spaced at the old rate). */
  dropStarts(host: string): void {
    this.#starts.delete(host);
  }

  /** Undefined when a retry token was taken; else how long until the budget's window renews. */
  async #takeRetryToken(host: string): Promise<number | undefined> {
    const budget = this.#budget as RateLimiterRedis;
    // The deposits gathered here count first.
    if (this.#unsent.size) await this.#flushBudget();
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

  #gather(host: string, points: number): void {
    this.#unsent.set(host, (this.#unsent.get(host) ?? 0) + points);
  }

  /** Sends the gathered deposits and refunds (one reward per host). */
  async #flushBudget(): Promise<void> {
    if (this.#budgetFlush) await this.#budgetFlush.catch(() => {});
    const budget = this.#budget;
    if (!budget || this.#unsent.size === 0) return;
    const unsent = [...this.#unsent];
    this.#unsent.clear();
    this.#budgetFlush = Promise.all(
      unsent.map(([host, points]) => budget.reward(host, points).then(() => {})),
    )
      .then(() => {})
      .catch(() => {})
      .finally(() => {
        this.#budgetFlush = undefined;
      });
    await this.#budgetFlush;
  }

  /** A retry that succeeded did the work it was for: its token goes back to the budget. */
  async refundRetry(host: string): Promise<void> {
    if (this.#budget) this.#gather(host, SCALE);
  }

  /** Resolves once every budget deposit and refund made so far has reached Redis (or failed). */
  async settled(): Promise<void> {
    await this.#flushBudget();
  }

  /** Sends in what it holds and gives its slots back. */
  async close(): Promise<void> {
    clearInterval(this.#budgetTimer);
    await this.settled();
    await this.#slots.close();
    await this.pace.close();
  }
}
