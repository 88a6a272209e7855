import { AdaptiveRate } from '../retry/adaptive-rate.js';
import { defaultRandom, type RandomSource } from '../retry/random.js';
import type { HostSnapshot } from './host-events.js';

/**
 * How a batch paces each host: `'adaptive'` (find the host's limit from its 429s and pace just
 * under it), a number (request starts per second per host at most, and lower when the host
 * throttles), or `'none'` (no pacing; a `Retry-After` still pauses the host).
 */
export type HostRate = number | 'adaptive' | 'none';

/** Options of {@link HostLimits}. */
export interface HostLimitsOptions {
  /** Requests in flight per host. */
  readonly perHost: number;
  /** The pacing of each host. */
  readonly rate: HostRate;
  /** The longest pause after throttles without a `Retry-After`, ms. */
  readonly maxPauseMs: number;
  /** The jitter of those pauses. */
  readonly random?: RandomSource | undefined;
}

/** Failures in a row (connection errors, 502, 503, 504) that make a host's outage. */
export const OUTAGE_FAILURES = 20;
/** How long an outage holds a host's lines (without spending their retries) at most. */
export const OUTAGE_GRACE_MS = 30_000;
/** The first pause of a host in an outage, doubled at each failed probe up to the second. */
const OUTAGE_PAUSE_MS = 250;
const OUTAGE_MAX_PAUSE_MS = 2000;
/** The shortest pause after a throttle without `Retry-After` (one pacing interval, at least). */
const MIN_THROTTLE_PAUSE_MS = 10;
/** How far behind its pacing slot a start may be and still keep the schedule. */
const MAX_LAG_MS = 10;
/** Hosts remembered at most; the least recently used idle ones are forgotten beyond. */
const MAX_HOSTS = 10_000;

/** What a batch knows of one host. */
interface HostState {
  inFlight: number;
  /** The earliest start of the next request (pacing). */
  nextStart: number;
  /** No request starts before this (a `Retry-After`, a throttle's or an outage's pause). */
  pausedUntil: number;
  /** When that pause was set: answers to requests sent before it do not extend it. */
  pausedSince: number;
  /** Throttles in a row, with no accepted answer between them. */
  throttles: number;
  /** Failures in a row (connection errors, 502, 503, 504), with no answer between them. */
  failures: number;
  /** When the current outage began (the failure that made `OUTAGE_FAILURES`). */
  outageSince: number | undefined;
  readonly pace: AdaptiveRate | undefined;
}

/**
 * The per-host side of a batch: at most `perHost` requests in flight to one `host:port`, starts
 * paced under the host's rate (found from its throttles, or fixed), and the host's signals
 * obeyed for all its lines at once:
 *
 * - **A throttle** (a 429, or a 503 with `Retry-After`) pauses the host: for the `Retry-After`,
 *   or without one for a pacing interval doubled at each further throttle in a row (at most
 *   `maxPauseMs`); and lowers its pace. Answers to requests that were already in flight when a
 *   pause began do not extend it: one pause per round of requests, not one per request.
 * - **An outage** (20 failures in a row: connection errors, timeouts, 502, 503, 504, with no
 *   answer between them) pauses the host for 250 ms, doubled at each failed probe (at most
 *   2 s), and sends one request at a time until one gets an answer. For its first
 *   30 seconds the outage is the host's failure, not its lines': {@link failed} says so, and the
 *   lines wait for the host without spending their retries (an upstream restarting loses
 *   nothing). A host down for longer is treated as dead: its lines spend their retries again
 *   (at the host's full concurrency) and fail in their own time.
 *
 * Memory is bounded: the least recently used idle hosts are forgotten past 10,000.
 */
export class HostLimits {
  readonly #perHost: number;
  readonly #rate: HostRate;
  readonly #cap: number;
  readonly #maxPauseMs: number;
  readonly #random: RandomSource;
  readonly #hosts = new Map<string, HostState>();
  /** The host {@link #state} returned last (it is last in `#hosts`), and its state. */
  #lastHost: string | undefined;
  #last: HostState | undefined;

  constructor(options: HostLimitsOptions) {
    this.#perHost = options.perHost;
    this.#rate = options.rate;
    this.#cap = typeof options.rate === 'number' ? options.rate : Number.POSITIVE_INFINITY;
    this.#maxPauseMs = options.maxPauseMs;
    this.#random = options.random ?? defaultRandom;
  }

  /**
   * 0 when a request to `host` may start at `now`; else when it may (epoch ms), or `Infinity`
   * when the host is at its concurrency limit (it frees up when a request ends).
   */
  readyAt(host: string, now: number): number {
    const h = this.#hosts.get(host);
    if (!h) return 0;
    const limit = this.#inOutage(h, now) ? 1 : this.#perHost;
    if (h.inFlight >= limit) return Number.POSITIVE_INFINITY;
    const at = Math.max(h.pausedUntil, h.nextStart);
    return at <= now ? 0 : at;
  }

  /** A request to `host` starts at `now` (call only when {@link readyAt} said 0). */
  start(host: string, now: number): void {
    const h = this.#state(host);
    h.inFlight++;
    const rate = this.rateOf(host, now);
    if (!Number.isFinite(rate)) return;
    const interval = 1000 / rate;
    // Timers fire late, by a millisecond or more: a start a little behind its slot keeps the
    // schedule (the lateness does not push every later slot back), so the pace holds on
    // average; a start long after its slot (an idle host) begins a new schedule.
    const slot = h.nextStart >= now - Math.max(interval, MAX_LAG_MS) ? h.nextStart : now;
    h.nextStart = Math.max(slot, h.pausedUntil) + interval;
  }

  /** A request to `host` ended (whatever its outcome). */
  finish(host: string): void {
    const h = this.#hosts.get(host);
    if (h && h.inFlight > 0) h.inFlight--;
  }

  /** Request starts per second allowed to `host` now (`Infinity`: not paced). */
  rateOf(host: string, now: number): number {
    const pace = this.#hosts.get(host)?.pace;
    return Math.min(this.#cap, pace ? pace.rateAt(now) : Number.POSITIVE_INFINITY);
  }

  /** An answer from `host` that was neither a throttle nor a failure. */
  answered(host: string, now: number, sentAt: number): void {
    const h = this.#state(host);
    h.pace?.accepted(now, sentAt);
    h.throttles = 0;
    h.failures = 0;
    h.outageSince = undefined;
  }

  /**
   * A failure of a request to `host` sent at `sentAt` that may be the host's (a connection
   * error, a timeout, a 502, 503 or 504). Returns when the host is probed again while it is in
   * an outage of less than 30 s (the line's failure is the host's: it should wait for then
   * without spending a retry), or undefined.
   */
  failed(host: string, now: number, sentAt: number): number | undefined {
    const h = this.#state(host);
    h.failures++;
    if (h.failures < OUTAGE_FAILURES) return undefined;
    h.outageSince ??= now;
    if (!this.#inOutage(h, now)) return undefined;
    if (sentAt >= h.pausedSince) {
      const exponent = Math.min(h.failures - OUTAGE_FAILURES, 30);
      // Probes are one request each: probing every 2 s at most finds the host back soon.
      const pause = Math.min(OUTAGE_PAUSE_MS * 2 ** exponent, OUTAGE_MAX_PAUSE_MS);
      this.#pause(h, now, this.#jittered(pause));
    }
    return Math.max(now, h.pausedUntil);
  }

  #inOutage(h: HostState, now: number): boolean {
    return h.outageSince !== undefined && now - h.outageSince < OUTAGE_GRACE_MS;
  }

  /**
   * A throttle from `host` (a 429, or a 503 with `Retry-After`) to a request sent at `sentAt`:
   * lowers its pace and pauses it, for `retryAfterMs` when the answer had one. Returns when the
   * host takes requests again (epoch ms, at least `now`).
   */
  throttled(host: string, now: number, sentAt: number, retryAfterMs: number | undefined): number {
    const h = this.#state(host);
    h.pace?.throttled(now, sentAt);
    // A throttle is an answer: the host is up.
    h.failures = 0;
    h.outageSince = undefined;
    if (sentAt >= h.pausedSince) {
      h.throttles++;
      const pause =
        retryAfterMs ??
        this.#jittered(
          Math.max(MIN_THROTTLE_PAUSE_MS, 1000 / this.rateOf(host, now)) * 2 ** (h.throttles - 1),
        );
      this.#pause(h, now, pause);
    }
    return Math.max(now, h.pausedUntil);
  }

  /** Every host remembered, as it stands at `now` (for metrics). */
  snapshot(now: number): HostSnapshot[] {
    const out: HostSnapshot[] = [];
    for (const [host, h] of this.#hosts) {
      const rate = Math.min(this.#cap, h.pace ? h.pace.rateAt(now) : Number.POSITIVE_INFINITY);
      out.push({
        host,
        pausedMs: Math.max(0, h.pausedUntil - now),
        ratePerSecond: Number.isFinite(rate) ? rate : undefined,
        down: this.#inOutage(h, now),
      });
    }
    return out;
  }

  #pause(h: HostState, now: number, ms: number): void {
    h.pausedUntil = Math.max(h.pausedUntil, now + ms);
    h.pausedSince = now;
  }

  /** `ms` capped at `maxPauseMs`, then drawn in its upper half (so paused hosts spread out). */
  #jittered(ms: number): number {
    const capped = Math.min(ms, this.#maxPauseMs);
    return capped * (0.5 + 0.5 * this.#random());
  }

  #state(host: string): HostState {
    // The host used last is already last in the map's order: no need to move it.
    if (host === this.#lastHost && this.#last) return this.#last;
    let h = this.#hosts.get(host);
    if (h) {
      // Most recently used last: the map's order is the eviction order.
      this.#hosts.delete(host);
      this.#hosts.set(host, h);
      this.#lastHost = host;
      this.#last = h;
      return h;
    }
    h = {
      inFlight: 0,
      nextStart: 0,
      pausedUntil: 0,
      pausedSince: Number.NEGATIVE_INFINITY,
      throttles: 0,
      failures: 0,
      outageSince: undefined,
      pace: this.#rate === 'none' ? undefined : new AdaptiveRate(),
    };
    this.#hosts.set(host, h);
    this.#lastHost = host;
    this.#last = h;
    if (this.#hosts.size > MAX_HOSTS) this.#forget();
    return h;
  }

  /** Forgets the least recently used hosts that have nothing in flight. */
  #forget(): void {
    for (const [host, h] of this.#hosts) {
      if (this.#hosts.size <= MAX_HOSTS) return;
      if (h.inFlight === 0 && h !== this.#last) this.#hosts.delete(host);
    }
  }
}

/**
 * Parses a rate: `10` or `10/s` (per second), `600/m` or `600/min`, `3600/h`.
 * @example parseRate('120/m') // 2
 */
export function parseRate(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(s|sec|second|m|min|minute|h|hour))?\s*$/i.exec(
    text,
  );
  const value = match ? Number(match[1]) : Number.NaN;
  if (!match || !(value > 0))
    throw new TypeError(
      `a rate must be adaptive, none, a positive number per second, or N/s, N/m, N/h; got ${JSON.stringify(text)}`,
    );
  const unit = (match[2] ?? 's').toLowerCase();
  const divisor = unit.startsWith('h') ? 3600 : unit.startsWith('m') ? 60 : 1;
  return value / divisor;
}

/**
 * Parses `--rate`: `adaptive`, `none`, or a rate as {@link parseRate} reads it.
 * @example parseHostRate('adaptive') // 'adaptive'
 */
export function parseHostRate(text: string): HostRate {
  const word = text.trim().toLowerCase();
  if (word === 'adaptive' || word === 'none') return word;
  return parseRate(text);
}
