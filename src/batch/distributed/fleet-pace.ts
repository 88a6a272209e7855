import { setTimeout as delay } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { AdaptiveRate, type AdaptiveRateState } from '../../retry/adaptive-rate.js';
import { defaultRandom, type RandomSource } from '../../retry/random.js';
import type { HostSnapshot } from '../host-events.js';
import { type HostRate, OUTAGE_FAILURES, OUTAGE_GRACE_MS } from '../host-limits.js';

/**
 * How stale a worker's copy of a paced host's pace may be, and how often answers are sent in (a
 * throttle sends in the worker's own answers with it; the other workers' may be this late).
 */
const SYNC_MS = 50;
/** The same for a host that never throttled (nothing to pace yet: the answers only count later). */
const IDLE_SYNC_MS = 250;
/**
 * How long a cut after a long Retry-After waits for the other workers' answers: two of their
 * flushes (the interval of the flush timer and of a paced host's flushes), or while the host was
 * not paced yet (its first throttle), one of its slower flushes and a tick of the timer.
 */
const CUT_DELAY_MS = 2 * SYNC_MS + 10;
const FIRST_CUT_DELAY_MS = IDLE_SYNC_MS + SYNC_MS + 10;
/** How stale a worker's copy of a host's pause may be (its own throttles apply at once). */
const PAUSE_READ_MS = 250;
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

/**
 * Takes the next `count` start slots of a host: GCRA, the slots spaced `interval` apart
 * fleet-wide. Returns {1, first start, count} or {0, the next free start} when it is too far.
 */
const SLOT_SCRIPT = `
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local maxWait = tonumber(ARGV[3])
local count = math.max(1, tonumber(ARGV[4]))
local start = tat
if start < now - math.max(interval, ${MAX_LAG_MS}) then start = now end
if start - now > maxWait then return {0, string.format('%.3f', start), 0} end
start = math.max(start, now)
redis.call('SET', KEYS[1], string.format('%.3f', start + count * interval), 'PX', math.ceil(count * interval + maxWait) + ${KEEP_MS})
return {1, string.format('%.3f', start), count}
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

/**
 * Answers came: the pace takes them (a compare-and-set of its state, unless ARGV[1] is '-': not
 * paced), they end a run of throttles and of failures (an outage). One round trip for a flush:
 * returns {1 when the state was replaced (or not paced), the state now, when the pause ends}.
 */
const ANSWERED_SCRIPT = `
local replaced = 1
local current = redis.call('GET', KEYS[1]) or ''
if ARGV[1] ~= '-' then
  if current == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ${KEEP_MS})
    current = ARGV[2]
  else
    replaced = 0
  end
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'throttles', 0, 'failures', 0)
  redis.call('HDEL', KEYS[2], 'outage')
end
return {replaced, current, redis.call('HGET', KEYS[2], 'until') or '0'}
`;

interface HostCopy {
  /** The stored state as read (the compare-and-set compares against it). */
  raw: string;
  pace: AdaptiveRate;
  readAt: number;
  /** Answers not sent in yet: [now, sentAt] pairs. */
  pending: [number, number][];
  flushing: Promise<void> | undefined;
  /** When its answers were last sent in. */
  flushedAt: number;
}

/** A worker's copy of a host's pause. */
interface PauseCopy {
  until: number;
  readAt: number;
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
 *   every 50 ms (250 ms while the host never throttled), sends its answers in as often (one
 *   round trip, which also reads the host's pause), and applies a throttle at once, each change
 *   a compare-and-set of the whole state (so no update is lost between workers);
 * - starts are spaced fleet-wide by a GCRA schedule in Redis at the pace's rate (or the fixed
 *   rate, which also caps an adaptive one); a worker takes a few starts at once;
 * - a throttle pauses the host for every worker (its Retry-After, or a pacing interval doubled
 *   per throttle in a row); answers to requests sent before the pause began do not extend it.
 *   A worker reads the pause at most every 250 ms (50 ms while the host is paced).
 */
export class FleetPace {
  readonly #redis: Redis;
  readonly #keys: { readonly pace: string; readonly limit: string; readonly pause: string };
  readonly #o: FleetPaceOptions;
  readonly #cap: number;
  readonly #random: RandomSource;
  readonly #hosts = new Map<string, HostCopy>();
  readonly #pauses = new Map<string, PauseCopy>();
  /** Hosts this worker last saw in an outage (a failure answered with a probe time). */
  readonly #down = new Set<string>();
  readonly #timer: NodeJS.Timeout;
  /** Called when this worker cut a host's pace (starts taken at the old rate are stale). */
  onCut: ((host: string) => void) | undefined;

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
    this.#timer = setInterval(() => void this.flush(false).catch(() => {}), SYNC_MS);
    this.#timer.unref();
  }

  get #adaptive(): boolean {
    return this.#o.rate !== 'none';
  }

  /** Request starts per second allowed to `host` now (`Infinity`: not paced). */
  async rateOf(host: string, now: number): Promise<number> {
    const known = this.knownRate(host, now);
    if (known !== undefined) return known;
    const copy = await this.#copy(host, now);
    return Math.min(this.#cap, copy.pace.rateAt(now));
  }

  /** {@link rateOf} when this worker's copy is fresh enough to answer without Redis. */
  knownRate(host: string, now: number): number | undefined {
    if (!this.#adaptive) return this.#cap;
    const copy = this.#hosts.get(host);
    if (!copy || now - copy.readAt >= this.#staleAfter(host, now)) return undefined;
    return Math.min(this.#cap, copy.pace.rateAt(now));
  }

  /** {@link pausedUntil} when this worker's copy is fresh enough to answer without Redis. */
  knownPause(host: string, now: number): number | undefined {
    if (!this.#o.pause) return 0;
    const cached = this.#pauses.get(host);
    if (cached && now - cached.readAt < (this.#paced(host, now) ? SYNC_MS : PAUSE_READ_MS))
      return cached.until;
    return undefined;
  }

  /**
   * How old a copy of a host's pace may be: a paced host's 50 ms; else a little longer than the
   * flushes of answers, whose round trip brings the state back (no read of its own needed).
   */
  #staleAfter(host: string, now: number): number {
    return this.#paced(host, now) ? SYNC_MS : IDLE_SYNC_MS + SYNC_MS;
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
    count = 1,
  ): Promise<{ readonly at: number; readonly count: number } | { readonly until: number }> {
    const [ok, at, granted] = (await this.#redis.eval(
      SLOT_SCRIPT,
      1,
      `${this.#keys.pace}:${host}`,
      now,
      1000 / rate,
      maxWaitMs,
      count,
    )) as [number, string, number];
    return ok === 1 ? { at: Number(at), count: granted } : { until: Number(at) };
  }

  /**
   * How stale this worker's copies of a host's pace and pause may have been at `at`: another
   * worker's cut or pause reaches this one this late at most.
   */
  #lag(host: string, at: number): number {
    return this.#paced(host, at) ? SYNC_MS : Math.max(PAUSE_READ_MS, IDLE_SYNC_MS + SYNC_MS);
  }

  /** Whether `host` is paced now, as far as this worker knows (its copies sync faster then). */
  #paced(host: string, now: number): boolean {
    if (Number.isFinite(this.#cap)) return true;
    const copy = this.#hosts.get(host);
    return copy !== undefined && Number.isFinite(copy.pace.rateAt(now));
  }

  /** When the host's pause ends (epoch ms; 0 when none), as read at most 250 ms ago. */
  async pausedUntil(host: string): Promise<number> {
    const now = Date.now();
    const known = this.knownPause(host, now);
    if (known !== undefined) return known;
    const value = await this.#redis.hget(`${this.#keys.pause}:${host}`, 'until');
    const until = value === null ? 0 : Number(value);
    this.#notePause(host, until, now);
    return until;
  }

  #notePause(host: string, until: number, readAt: number): void {
    this.#pauses.set(host, { until, readAt });
  }

  /** The hosts this worker knows of, as its copies stand at `now` (for metrics). */
  snapshot(now: number): HostSnapshot[] {
    const out: HostSnapshot[] = [];
    for (const host of new Set([...this.#hosts.keys(), ...this.#pauses.keys()])) {
      const copy = this.#hosts.get(host);
      const rate = this.#adaptive
        ? Math.min(this.#cap, copy ? copy.pace.rateAt(now) : Number.POSITIVE_INFINITY)
        : this.#cap;
      out.push({
        host,
        pausedMs: Math.max(0, (this.#pauses.get(host)?.until ?? 0) - now),
        ratePerSecond: Number.isFinite(rate) ? rate : undefined,
        down: this.#down.has(host),
      });
    }
    return out;
  }

  /** An answer from `host` that was not a throttle (sent in with the next flush). */
  answered(host: string, now: number, sentAt: number): void {
    this.#down.delete(host);
    const copy = this.#hosts.get(host);
    if (!copy) {
      // Nothing read yet for this host: keep the answer until the first read.
      this.#hosts.set(host, {
        raw: '',
        pace: new AdaptiveRate(),
        readAt: 0,
        pending: [[now, sentAt]],
        flushing: undefined,
        flushedAt: now,
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
    // A throttle is an answer: the host is up.
    this.#down.delete(host);
    // The request went out on this worker's copies of the host's pace and pause, which may have
    // been this stale: it stands for a request sent then (a throttle of a request sent before
    // another worker's cut reached this one says nothing new, and must not cut or pause again).
    const knownAt = sentAt - this.#lag(host, sentAt);
    // With a Retry-After long enough, the pause does not depend on the cut: it is set at once,
    // and the cut waits until every worker has sent in the answers it held (they flush every
    // SYNC_MS): the estimate of the host's limit is of what the whole fleet had accepted, not
    // of this worker's share (a cut right after a pause counts only the answers since, and half
    // of them missing cut the pace to half the limit, where it stayed for seconds).
    const cutDelay = this.#paced(host, now) ? CUT_DELAY_MS : FIRST_CUT_DELAY_MS;
    const pauseFirst =
      this.#o.pause && this.#adaptive && retryAfterMs !== undefined && retryAfterMs >= 2 * cutDelay;
    let until = pauseFirst ? await this.#pause(host, now, knownAt, retryAfterMs, 0) : now;
    if (pauseFirst) await delay(cutDelay);
    let rate = this.#cap;
    if (this.#adaptive) {
      const cutAt = Date.now();
      const copy = await this.#copy(host, cutAt);
      // This worker's answers not yet sent in go first: the estimate is of what was accepted.
      const answers = copy.pending;
      copy.pending = [];
      await this.#change(host, copy, (pace) => {
        for (const [at, sent] of answers) pace.accepted(at, sent);
        // The estimate spans the time until the throttle came, not until the cut: after a
        // pause-first wait, that much more time with no answer in it (the host was paused)
        // would read as a limit 5-10% under the host's.
        pace.throttled(now, knownAt);
      });
      rate = Math.min(this.#cap, copy.pace.rateAt(cutAt));
      this.onCut?.(host);
    }
    if (!this.#o.pause || pauseFirst) return until;
    const base = Math.max(MIN_THROTTLE_PAUSE_MS, Number.isFinite(rate) ? 1000 / rate : 0);
    until = await this.#pause(host, now, knownAt, retryAfterMs, base);
    return until;
  }

  /** Pauses the host fleet-wide after a throttle (see PAUSE_SCRIPT); when it opens again. */
  async #pause(
    host: string,
    now: number,
    knownAt: number,
    retryAfterMs: number | undefined,
    base: number,
  ): Promise<number> {
    const until = (await this.#redis.eval(
      PAUSE_SCRIPT,
      1,
      `${this.#keys.pause}:${host}`,
      now,
      knownAt,
      retryAfterMs ?? -1,
      base,
      this.#o.maxPauseMs,
      this.#random(),
    )) as string;
    this.#notePause(host, Number(until), Date.now());
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
      sentAt - this.#lag(host, sentAt),
      this.#random(),
    )) as string;
    if (until !== '') {
      this.#notePause(host, Number(until), Date.now());
      this.#down.add(host);
    } else this.#down.delete(host);
    return until === '' ? undefined : Number(until);
  }

  /** Sends in the buffered answers of every host whose turn it is (`force`: of every host). */
  async flush(force = true): Promise<void> {
    const now = Date.now();
    await Promise.all(
      [...this.#hosts]
        .filter(
          ([host, copy]) =>
            force || now - copy.flushedAt >= (this.#paced(host, now) ? SYNC_MS : IDLE_SYNC_MS),
        )
        .map(([host, copy]) => this.#flushHost(host, copy)),
    );
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
      if (Date.now() - copy.readAt > 60_000) {
        this.#hosts.delete(host);
        this.#pauses.delete(host);
      }
      return;
    }
    const answers = copy.pending;
    copy.pending = [];
    copy.flushedAt = Date.now();
    copy.flushing = (async () => {
      const limitKey = `${this.#keys.limit}:${host}`;
      const pauseKey = `${this.#keys.pause}:${host}`;
      // An answer ends a run of throttles (the next pause without Retry-After starts short) and
      // a run of failures (an outage); the same round trip sends the answers to the pace.
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        let pace: AdaptiveRate | undefined;
        let next = '';
        if (this.#adaptive) {
          pace =
            copy.raw === '' ? new AdaptiveRate() : AdaptiveRate.fromState(parseState(copy.raw));
          for (const [now, sentAt] of answers) pace.accepted(now, sentAt);
          next = JSON.stringify(pace.state());
        }
        const [replaced, current, until] = (await this.#redis.eval(
          ANSWERED_SCRIPT,
          2,
          limitKey,
          pauseKey,
          pace ? copy.raw : '-',
          next,
        )) as [number, string, string];
        const readAt = Date.now();
        this.#notePause(host, Number(until), readAt);
        if (replaced === 1) {
          if (pace) {
            copy.raw = next;
            copy.pace = pace;
            copy.readAt = readAt;
          }
          return;
        }
        copy.raw = current;
      }
      // Other workers kept changing it: these answers are dropped (the pace is an estimate).
    })().finally(() => {
      copy.flushing = undefined;
    });
    return copy.flushing;
  }

  /** This worker's copy of the host's pace, read again when older than `SYNC_MS`. */
  async #copy(host: string, now: number): Promise<HostCopy> {
    let copy = this.#hosts.get(host);
    if (copy && now - copy.readAt < this.#staleAfter(host, now)) return copy;
    const raw = (await this.#redis.get(`${this.#keys.limit}:${host}`)) ?? '';
    const pace = raw === '' ? new AdaptiveRate() : AdaptiveRate.fromState(parseState(raw));
    if (!copy) {
      copy = { raw, pace, readAt: now, pending: [], flushing: undefined, flushedAt: now };
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
