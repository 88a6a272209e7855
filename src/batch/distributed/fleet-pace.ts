import type { Redis } from 'ioredis';
import { AdaptiveRate, type AdaptiveRateState } from '../../retry/adaptive-rate.js';
import { defaultRandom, type RandomSource } from '../../retry/random.js';
import { type HostRate, OUTAGE_FAILURES, OUTAGE_GRACE_MS } from '../host-limits.js';

/**
 * How stale a worker's copy of a host's pace may be, and how often answers are sent in (a
 * throttle sends in the worker's own answers with it; the other workers' may be this late).
 */
const SYNC_MS = 50;
/** Answers buffered per host before a flush is forced. */
const MAX_BUFFERED = 1000;
/** Attempts of a compare-and-set of a host's pace before giving up on this update. */
const CAS_ATTEMPTS = 8;
/** How long an idle host's pace and pause are kept in Redis. */
const KEEP_MS = 3_600_000;
/** The shortest pause after a throttle without `Retry-After`. */
const MIN_THROTTLE_PAUSE_MS = 10;
/** A start this far behind its slot keeps the schedule (as the local runner's host limits). */
const MAX_LAG_MS = 10;

/** Takes the next start slot of a host: GCRA, the slots spaced `interval` apart fleet-wide. */
const SLOT_SCRIPT = `
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local maxWait = tonumber(ARGV[3])
local start = tat
if start < now - math.max(interval, ${MAX_LAG_MS}) then start = now end
if start - now > maxWait then return {0, string.format('%.3f', start)} end
redis.call('SET', KEYS[1], string.format('%.3f', math.max(start, now) + interval), 'PX', math.ceil(interval + maxWait) + ${KEEP_MS})
return {1, string.format('%.3f', math.max(start, now))}
`;

/**
 * A throttle pauses the host (its Retry-After, or a pause doubled per throttle in a row) unless
 * the throttled request was sent before the current pause began. Returns when the host opens.
 */
const PAUSE_SCRIPT = `
local h = redis.call('HMGET', KEYS[1], 'until', 'since', 'throttles')
local untilAt = tonumber(h[1] or '0')
local since = tonumber(h[2] or '-1')
local n = tonumber(h[3] or '0')
local now = tonumber(ARGV[1])
local sentAt = tonumber(ARGV[2])
local retryAfter = tonumber(ARGV[3])
if sentAt >= since then
  n = n + 1
  local pause = retryAfter
  if pause < 0 then
    pause = math.min(tonumber(ARGV[4]) * 2 ^ math.min(n - 1, 30), tonumber(ARGV[5])) * (0.5 + 0.5 * tonumber(ARGV[6]))
  end
  untilAt = math.max(untilAt, now + pause)
  redis.call('HSET', KEYS[1], 'until', string.format('%.3f', untilAt), 'since', string.format('%.3f', now), 'throttles', n)
  redis.call('PEXPIRE', KEYS[1], math.ceil(untilAt - now) + ${KEEP_MS})
end
return string.format('%.3f', math.max(now, untilAt))
`;

/**
 * A failure that may be the host's counts towards an outage (as `HostLimits.failed`): past
 * `OUTAGE_FAILURES` in a row, the host is paused (250 ms doubled per failure, at most 2 s) for
 * the first `OUTAGE_GRACE_MS` of the outage. Returns when it is probed again, or '' when the
 * line's failure is its own.
 */
const FAILED_SCRIPT = `
local n = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local now = tonumber(ARGV[1])
local sentAt = tonumber(ARGV[2])
if n < ${OUTAGE_FAILURES} then return '' end
local outage = tonumber(redis.call('HGET', KEYS[1], 'outage') or '-1')
if outage < 0 then
  outage = now
  redis.call('HSET', KEYS[1], 'outage', string.format('%.3f', now))
end
if now - outage >= ${OUTAGE_GRACE_MS} then return '' end
local h = redis.call('HMGET', KEYS[1], 'until', 'since')
local untilAt = tonumber(h[1] or '0')
local since = tonumber(h[2] or '-1')
if sentAt >= since then
  local pause = math.min(250 * 2 ^ math.min(n - ${OUTAGE_FAILURES}, 30), 2000) * (0.5 + 0.5 * tonumber(ARGV[3]))
  untilAt = math.max(untilAt, now + pause)
  redis.call('HSET', KEYS[1], 'until', string.format('%.3f', untilAt), 'since', string.format('%.3f', now))
end
redis.call('PEXPIRE', KEYS[1], ${KEEP_MS})
return string.format('%.3f', math.max(now, untilAt))
`;

/** Replaces a value only if it is still what was read. */
const CAS_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if (current or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ${KEEP_MS})
return 1
`;

interface HostCopy {
  /** The stored state as read (the compare-and-set compares against it). */
  raw: string;
  pace: AdaptiveRate;
  readAt: number;
  /** Answers not sent in yet: [now, sentAt] pairs. */
  pending: [number, number][];
  flushing: Promise<void> | undefined;
}

/** Options of {@link FleetPace}. */
export interface FleetPaceOptions {
  readonly rate: HostRate;
  /** The longest pause after throttles without Retry-After. */
  readonly maxPauseMs: number;
  /** Whether a throttle pauses the host fleet-wide (the job's `cooldown`). */
  readonly pause: boolean;
  readonly random?: RandomSource | undefined;
}

/**
 * The pace and the pauses of each host of a job, shared by every worker through Redis, with the
 * local runner's semantics (see `HostLimits`):
 *
 * - the host's {@link AdaptiveRate} lives in Redis as its state; each worker reads it at most
 *   every 100 ms, sends its answers in every 100 ms, and applies a throttle at once, each change
 *   a compare-and-set of the whole state (so no update is lost between workers);
 * - starts are spaced fleet-wide by a GCRA slot in Redis at the pace's rate (or the fixed rate,
 *   which also caps an adaptive one);
 * - a throttle pauses the host for every worker (its Retry-After, or a pacing interval doubled
 *   per throttle in a row); answers to requests sent before the pause began do not extend it.
 */
export class FleetPace {
  readonly #redis: Redis;
  readonly #keys: { readonly pace: string; readonly limit: string; readonly pause: string };
  readonly #o: FleetPaceOptions;
  readonly #cap: number;
  readonly #random: RandomSource;
  readonly #hosts = new Map<string, HostCopy>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    redis: Redis,
    keys: { readonly pace: string; readonly limit: string; readonly pause: string },
    options: FleetPaceOptions,
  ) {
    this.#redis = redis;
    this.#keys = keys;
    this.#o = options;
    this.#cap = typeof options.rate === 'number' ? options.rate : Number.POSITIVE_INFINITY;
    this.#random = options.random ?? defaultRandom;
    this.#timer = setInterval(() => void this.flush().catch(() => {}), SYNC_MS);
    this.#timer.unref();
  }

  get #adaptive(): boolean {
    return this.#o.rate !== 'none';
  }

  /** Request starts per second allowed to `host` now (`Infinity`: not paced). */
  async rateOf(host: string, now: number): Promise<number> {
    if (!this.#adaptive) return this.#cap;
    const copy = await this.#copy(host, now);
    return Math.min(this.#cap, copy.pace.rateAt(now));
  }

  /**
   * Takes the next start slot of `host` fleet-wide at `rate`: resolves with when to start (at
   * most `maxWaitMs` from now), or with `until` when the next free slot is later than that.
   */
  async slot(
    host: string,
    now: number,
    rate: number,
    maxWaitMs: number,
  ): Promise<{ readonly at: number } | { readonly until: number }> {
    const [ok, at] = (await this.#redis.eval(
      SLOT_SCRIPT,
      1,
      `${this.#keys.pace}:${host}`,
      now,
      1000 / rate,
      maxWaitMs,
    )) as [number, string];
    return ok === 1 ? { at: Number(at) } : { until: Number(at) };
  }

  /** When the host's pause ends (epoch ms; 0 when none). */
  async pausedUntil(host: string): Promise<number> {
    if (!this.#o.pause) return 0;
    const value = await this.#redis.hget(`${this.#keys.pause}:${host}`, 'until');
    return value === null ? 0 : Number(value);
  }

  /** An answer from `host` that was not a throttle (sent in with the next flush). */
  answered(host: string, now: number, sentAt: number): void {
    const copy = this.#hosts.get(host);
    if (!copy) {
      // Nothing read yet for this host: keep the answer until the first read.
      this.#hosts.set(host, {
        raw: '',
        pace: new AdaptiveRate(),
        readAt: 0,
        pending: [[now, sentAt]],
        flushing: undefined,
      });
      return;
    }
    copy.pending.push([now, sentAt]);
    if (copy.pending.length >= MAX_BUFFERED) void this.#flushHost(host, copy).catch(() => {});
  }

  /**
   * A throttle from `host` (a 429, or a 503 with Retry-After) to a request sent at `sentAt`: cuts
   * the fleet's pace of the host and pauses it. Resolves with when the host opens again.
   */
  async throttled(
    host: string,
    now: number,
    sentAt: number,
    retryAfterMs: number | undefined,
  ): Promise<number> {
    let rate = this.#cap;
    if (this.#adaptive) {
      const copy = await this.#copy(host, now);
      // This worker's answers not yet sent in go first: the estimate is of what was accepted.
      const answers = copy.pending;
      copy.pending = [];
      await this.#change(host, copy, (pace) => {
        for (const [at, sent] of answers) pace.accepted(at, sent);
        pace.throttled(now, sentAt);
      });
      rate = Math.min(this.#cap, copy.pace.rateAt(now));
    }
    if (!this.#o.pause) return now;
    const base = Math.max(MIN_THROTTLE_PAUSE_MS, Number.isFinite(rate) ? 1000 / rate : 0);
    const until = (await this.#redis.eval(
      PAUSE_SCRIPT,
      1,
      `${this.#keys.pause}:${host}`,
      now,
      sentAt,
      retryAfterMs ?? -1,
      base,
      this.#o.maxPauseMs,
      this.#random(),
    )) as string;
    return Number(until);
  }

  /**
   * A failure of a request to `host` that may be the host's (a connection error, a timeout, a
   * 502, 503 or 504): counts towards an outage. Resolves with when the host is probed again
   * while it is in an outage of less than 30 s (the line should wait for then without spending
   * a retry), or undefined.
   */
  async failed(host: string, now: number, sentAt: number): Promise<number | undefined> {
    const until = (await this.#redis.eval(
      FAILED_SCRIPT,
      1,
      `${this.#keys.pause}:${host}`,
      now,
      sentAt,
      this.#random(),
    )) as string;
    return until === '' ? undefined : Number(until);
  }

  /** Sends in every host's buffered answers. */
  async flush(): Promise<void> {
    await Promise.all([...this.#hosts].map(([host, copy]) => this.#flushHost(host, copy)));
  }

  /** Stops the periodic flush after a last one. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush().catch(() => {});
  }

  async #flushHost(host: string, copy: HostCopy): Promise<void> {
    if (copy.flushing) return copy.flushing;
    if (copy.pending.length === 0) {
      // Nothing to send: only forget hosts nobody asked about for a while.
      if (Date.now() - copy.readAt > 60_000) this.#hosts.delete(host);
      return;
    }
    const answers = copy.pending;
    copy.pending = [];
    copy.flushing = (async () => {
      if (this.#adaptive)
        await this.#change(host, copy, (pace) => {
          for (const [now, sentAt] of answers) pace.accepted(now, sentAt);
        });
      // An answer ends a run of throttles (the next pause without Retry-After starts short) and
      // a run of failures (an outage).
      const key = `${this.#keys.pause}:${host}`;
      await this.#redis
        .pipeline()
        .hset(key, 'throttles', 0, 'failures', 0)
        .hdel(key, 'outage')
        .exec();
    })().finally(() => {
      copy.flushing = undefined;
    });
    return copy.flushing;
  }

  /** This worker's copy of the host's pace, read again when older than `SYNC_MS`. */
  async #copy(host: string, now: number): Promise<HostCopy> {
    let copy = this.#hosts.get(host);
    if (copy && now - copy.readAt < SYNC_MS) return copy;
    const raw = (await this.#redis.get(`${this.#keys.limit}:${host}`)) ?? '';
    const pace = raw === '' ? new AdaptiveRate() : AdaptiveRate.fromState(parseState(raw));
    if (!copy) {
      copy = { raw, pace, readAt: now, pending: [], flushing: undefined };
      this.#hosts.set(host, copy);
    } else {
      copy.raw = raw;
      copy.pace = pace;
      copy.readAt = now;
    }
    return copy;
  }

  /** Applies `change` to the stored pace of `host` (compare-and-set, read again on a conflict). */
  async #change(host: string, copy: HostCopy, change: (pace: AdaptiveRate) => void): Promise<void> {
    const key = `${this.#keys.limit}:${host}`;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const pace =
        copy.raw === '' ? new AdaptiveRate() : AdaptiveRate.fromState(parseState(copy.raw));
      change(pace);
      const next = JSON.stringify(pace.state());
      if ((await this.#redis.eval(CAS_SCRIPT, 1, key, copy.raw, next)) === 1) {
        copy.raw = next;
        copy.pace = pace;
        copy.readAt = Date.now();
        return;
      }
      copy.raw = (await this.#redis.get(key)) ?? '';
    }
    // Other workers kept changing it: this update is dropped (the pace is an estimate).
  }
}

function parseState(raw: string): AdaptiveRateState {
  return JSON.parse(raw) as AdaptiveRateState;
}
