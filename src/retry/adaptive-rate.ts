import { readOptions } from './storm-validate.js';
import { assertNumberInRange, assertPositiveNumber, showValue } from './validate.js';

/** Options of {@link AdaptiveRate} (and of the limiters built on it). */
export interface AdaptiveRateOptions {
  /**
   * The lowest rate throttles can push the pace down to, in requests per second.
   * @default 0.5
   * @example { minRate: 2 }
   */
  minRate?: number;
  /**
   * The cut: after a throttle the pace restarts at `beta` times the rate the server was
   * measured to accept (above 0, below 1). Close to 1 because the estimate is of the server's
   * own limit, not of what was sent: a small margin under it is enough.
   * @default 0.9
   * @example { beta: 0.8 } // a wider margin under the server's limit
   */
  beta?: number;
  /**
   * How long after a cut the pace takes to climb back to the limit it found (the `K` of the
   * CUBIC curve), in milliseconds. The pace stays near that limit around this time and only then
   * probes above it, faster the longer no throttle comes. Longer means fewer throttles (each may
   * cost a `Retry-After` pause) but a slower discovery of a limit that was raised.
   * @default 8000
   * @example { probeAfterMs: 4000 } // probe for a higher limit twice as often
   */
  probeAfterMs?: number;
  /**
   * How much history the estimate of the server's limit uses at most, in milliseconds (from
   * 1000): what was accepted since sending resumed after the last cut, over at most this long;
   * the end of a search looks at a tenth of it.
   * @default 10000
   * @example { windowMs: 30_000 }
   */
  windowMs?: number;
  /**
   * After the first throttle the limit is still a guess: the pace starts under it and grows by
   * this factor per second until the next throttle (a search, like TCP's slow start), then
   * follows the curve.
   * @default 2
   * @example { searchGrowth: 1.5 }
   */
  searchGrowth?: number;
}

/**
 * Everything an {@link AdaptiveRate} knows, as plain data (`state()` / `AdaptiveRate.fromState`):
 * what lets a fleet of workers share one pace through a store.
 */
export interface AdaptiveRateState {
  readonly phase: 'unlimited' | 'search' | 'steady';
  readonly limit: number;
  readonly start: number;
  /** Epoch ms; null before any cut. */
  readonly lastCutAt: number | null;
  readonly resumedAt: number | null;
  readonly firstAt: number | null;
  readonly cuts: number;
  /** The floor of the limit while throttles are few (0: none). */
  readonly floor: number;
  /** The measuring window: `[slot id, accepted, throttles]` of the slots that hold answers. */
  readonly slots: readonly (readonly [number, number, number])[];
}

/** A read-only picture of an {@link AdaptiveRate}. */
export interface AdaptiveRateSnapshot {
  /** Requests per second allowed now; `Infinity` until the first throttle. */
  readonly rate: number;
  /** `unlimited` (no throttle yet), `search` (one throttle: finding the limit) or `steady`. */
  readonly phase: 'unlimited' | 'search' | 'steady';
  /** The server's limit as last estimated (0 before any throttle), requests per second. */
  readonly limit: number;
  /** Answers that were not throttles, per second, over the last window. */
  readonly acceptedRate: number;
  /** Throttles that cut the pace (throttles of requests sent before the last cut do not). */
  readonly cuts: number;
}

const KEYS = ['minRate', 'beta', 'probeAfterMs', 'windowMs', 'searchGrowth'] as const;
const HINTS: Record<string, string> = {
  perSecond: 'an adaptive limiter finds its rate; for a fixed one use TokenBucketLimiter',
  initialRate: 'an adaptive limiter does not limit until the first throttle',
  maxRate: 'chain a TokenBucketLimiter to cap the rate',
  scaleConstant: 'the speed of recovery is set by probeAfterMs (ms back to the limit)',
  smoothing: 'the estimate is a plain count over windowMs',
};

/** Slots of the measuring window; the last tenth of them is the short window. */
const SLOTS = 100;
const SHORT_SLOTS = 10;
/** Below this span or count of answers since a cut, the estimate is not trusted. */
const MIN_SPAN_MS = 100;
const MIN_SAMPLES = 4;
/** The first estimate counts over at least this long (a first burst would inflate it). */
const FIRST_SPAN_MS = 250;
/**
 * A throttle sooner than this after sending resumed from a pause at least as long cuts the
 * estimate by `QUICK_CUT` more (measured against nginx: 1 s and 0.8 over-cut a pace only 10%
 * above the limit, which then ran 10-15% under it for the rest of the run).
 */
const QUICK_MS = 500;
const QUICK_CUT = 0.85;
/** Below this share of throttles among the answers (over `SHARE_SLOTS`), cuts keep a floor. */
const STRAY_SHARE = 0.2;
/** The slots of that share: the last 2 s (with the default `windowMs`). */
const SHARE_SLOTS = 20;
/** A rate above this is as good as unlimited (it keeps the search's growth finite). */
const MAX_RATE = 1e9;

/**
 * Finds a server's rate limit from its throttles (429s) and paces under it: the decisions of
 * the adaptive limiters of the Session and of the batch runner (local and fleet-wide), as a
 * pure object of the clock times it is given. It never waits itself.
 *
 * - **Unlimited** until the first throttle: nothing is paced.
 * - **The estimate** of the server's limit is the rate of answers it accepted (anything but a
 *   throttle) since sending resumed after the last cut (so a `Retry-After` pause does not dilute
 *   it), over at most `windowMs`. Over a whole cycle between throttles it is close to the
 *   highest pace the server took; a burst allowance inflates it only by the burst over the
 *   cycle, not over a short window. At the end of a search (a ramp from below), the last tenth
 *   of `windowMs` only. The first estimate counts over at least 250 ms.
 * - **A throttle** of a request sent after the last cut cuts: the limit becomes the estimate
 *   (never above the pace that was allowed), and the pace restarts at `beta` times it. Throttles
 *   of requests sent before the last cut say nothing new and are ignored (one cut per round
 *   trip, as TCP does), so a burst of 429s in flight does not collapse the pace.
 * - **A throttle soon after a pause** (less than half a second after sending resumed from a
 *   pause of half a second or more, such as a `Retry-After`) means the pace was well above the
 *   limit: a server with a burst allowance, rested by the pause, accepts everything until the
 *   allowance is spent, so the estimate then is only what was sent. The limit is cut to 0.85
 *   times it.
 * - **After the first cut** the limit is a guess from a burst: the pace grows by `searchGrowth`
 *   per second until the next throttle. **After later cuts** it follows a CUBIC curve scaled to
 *   the limit `W`, with `t` the seconds since sending resumed and `K = probeAfterMs / 1000`:
 *   `W · ((1 + beta) / 2 + ((1 − beta) / 2) · ((t − K) / K)³)`: `beta · W` at first, a long
 *   plateau at `(1 + beta) / 2 · W` around `t = K` (a margin under an estimate that a burst
 *   allowance inflates, since each throttle may cost a `Retry-After` pause), back at `W` at
 *   `t = 2K`; past it, not throttled, the limit was raised: the pace searches again, growing by
 *   `searchGrowth` per second.
 * - Above the limit found, the pace never runs more than twice above what the server really
 *   accepted lately, so a client that sends little does not build up a pace it never tried.
 *   It is never below `minRate`.
 *
 * @example
 * const pace = new AdaptiveRate();
 * pace.throttled(clock.now(), sentAt); // a 429
 * pace.accepted(clock.now(), sentAt);  // a 200
 * const perSecond = pace.rateAt(clock.now());
 */
export class AdaptiveRate {
  readonly #minRate: number;
  readonly #beta: number;
  readonly #k: number;
  readonly #slotMs: number;
  readonly #growth: number;
  /** Accepted answers per slot. */
  readonly #slotCount = new Float64Array(SLOTS);
  /** Throttles per slot (all of them, stale or not). */
  readonly #slotThrottles = new Float64Array(SLOTS);
  // Stryker disable next-line UnaryOperator: an unused slot holds zero counts, so whatever its id it adds nothing and state() leaves it out
  readonly #slotId = new Float64Array(SLOTS).fill(-1);
  /** While throttles are a small share of the answers: the limit cuts do not go below. */
  #floor = 0;
  #phase: AdaptiveRateSnapshot['phase'] = 'unlimited';
  #limit = 0;
  #start = 0;
  #lastCutAt = Number.NEGATIVE_INFINITY;
  /** When the first request sent after the last cut was sent (it got an accepted answer). */
  #resumedAt: number | undefined;
  #firstAt: number | undefined;
  #cuts = 0;

  constructor(options?: AdaptiveRateOptions, where = 'AdaptiveRate') {
    const o = readOptions(where, options, KEYS, HINTS);
    const minRate = o.minRate ?? 0.5;
    const beta = o.beta ?? 0.9;
    const probeAfterMs = o.probeAfterMs ?? 8000;
    const windowMs = o.windowMs ?? 10_000;
    const growth = o.searchGrowth ?? 2;
    assertPositiveNumber(`${where}: minRate`, minRate);
    if (typeof beta !== 'number' || !(beta > 0 && beta < 1))
      throw new TypeError(
        `${where}: beta must be a number above 0 and below 1, got ${showValue(beta)}`,
      );
    assertNumberInRange(`${where}: probeAfterMs`, probeAfterMs, 100, 3_600_000);
    assertNumberInRange(`${where}: windowMs`, windowMs, 1000, 600_000);
    if (typeof growth !== 'number' || !(growth > 1 && growth <= 100))
      throw new TypeError(
        `${where}: searchGrowth must be a number above 1, at most 100, got ${showValue(growth)}`,
      );
    this.#minRate = minRate;
    this.#beta = beta;
    this.#k = probeAfterMs / 1000;
    this.#slotMs = windowMs / SLOTS;
    this.#growth = growth;
  }

  /** Requests per second allowed at `now`; `Infinity` until the first throttle. */
  rateAt(now: number): number {
    if (this.#phase === 'unlimited') return Number.POSITIVE_INFINITY;
    const t = this.#resumedAt === undefined ? 0 : Math.max(0, now - this.#resumedAt) / 1000;
    let rate: number;
    if (this.#phase === 'search') {
      rate = this.#start * this.#growth ** t;
    } else {
      // Stryker disable next-line EqualityOperator: `<` is equivalent: at t = 2K both branches give the limit (x = 1, growth^0); `>` is killed
      if (t <= 2 * this.#k) {
        const x = (t - this.#k) / this.#k;
        // A plateau halfway between the restart and the estimate: an estimate of a server with
        // a burst allowance runs a little high, and each throttle may cost a Retry-After pause.
        rate = this.#limit * ((1 + this.#beta) / 2 + ((1 - this.#beta) / 2) * x * x * x);
      } else {
        // Back at the limit found and still not throttled: the limit was raised. Search again.
        rate = this.#limit * this.#growth ** (t - 2 * this.#k);
      }
      // Above the limit found, never far above what the server really took lately: a client
      // that sends little does not build up a pace it never tried.
      // Stryker disable next-line ConditionalExpression,EqualityOperator: `true` and `>=` are equivalent: at or under the limit, min(rate, max(limit, …)) is the rate (`false` and `<=` are killed)
      if (rate > this.#limit)
        rate = Math.min(rate, Math.max(this.#limit, 2 * this.#acceptedRate(now)));
    }
    return Math.max(this.#minRate, Math.min(rate, MAX_RATE));
  }

  /** An answer that was not a throttle, to a request sent at `sentAt`. */
  accepted(now: number, sentAt: number = now): void {
    this.#firstAt ??= now;
    const i = this.#slot(now);
    this.#slotCount[i] = (this.#slotCount[i] ?? 0) + 1;
    if (this.#phase !== 'unlimited' && sentAt > this.#lastCutAt) this.#resumedAt ??= sentAt;
  }

  /**
   * A throttle (a 429, or another "slow down") of a request sent at `sentAt`. Returns true when
   * it cut the pace, false when it was stale (sent before the last cut).
   */
  throttled(now: number, sentAt: number = now): boolean {
    this.#firstAt ??= now;
    const i = this.#slot(now);
    this.#slotThrottles[i] = (this.#slotThrottles[i] ?? 0) + 1;
    // Sent before the last cut (or in its millisecond): it says nothing about the pace since.
    // Stryker disable next-line ConditionalExpression,StringLiteral: the phase test is redundant while unlimited, when lastCutAt is -Infinity and no sentAt is at or below it (the other mutants of this line are killed)
    if (this.#phase !== 'unlimited' && sentAt <= this.#lastCutAt) return false;
    // After a search's throttle (the first one, or one past 2K on the curve), the last second
    // tells the limit (the ramp before it was below); after others, the whole cycle since
    // sending resumed.
    const searching =
      this.#phase === 'search' ||
      // Stryker disable next-line ConditionalExpression: `true` for the undefined test is equivalent: now - undefined is NaN, never above 2K (the other mutants of this line are killed)
      (this.#resumedAt !== undefined && now - this.#resumedAt > 2000 * this.#k);
    const { count, span } = this.#measure(now, searching ? SHORT_SLOTS : SLOTS);
    let limit: number;
    if (this.#phase === 'unlimited') {
      // The first throttle: all there is to go on is what got through so far (and this one
      // request: a throttle as the very first answer is not a rate of zero), over at least a
      // quarter of a second: a burst allowance lets a first burst through at any speed.
      limit = (count + 1) / (Math.max(span, FIRST_SPAN_MS) / 1000);
    } else {
      const allowed = this.rateAt(now);
      // Too little seen since sending resumed to measure: a plain multiplicative cut.
      limit =
        span >= MIN_SPAN_MS && count >= MIN_SAMPLES
          ? Math.min(count / (span / 1000), allowed)
          : allowed;
      // Throttled soon after resuming from a pause (a Retry-After): the pace was well above the
      // limit. A server with a burst allowance, rested by the pause, accepts everything until the
      // allowance is spent, so what it accepted then is only what was sent: cut deeper than
      // that estimate.
      const resumedAt = this.#resumedAt ?? now;
      if (resumedAt - this.#lastCutAt >= QUICK_MS && now - resumedAt < QUICK_MS) limit *= QUICK_CUT;
      // Throttles that are a small share of the answers may not be about the rate at all (a
      // quota per resource, a flaky 429): cut after cut would spiral the pace down to nothing.
      // While they stay few, the limit keeps at least half the rate the server took when the
      // first of them came (what it took, not the pace allowed: a search may have allowed far
      // more); a server that throttles much of what it gets is over its limit, and is followed.
      if (this.#throttleShare(now) < STRAY_SHARE) {
        this.#floor ||= Math.min(allowed, this.#acceptedRate(now)) / 2;
        limit = Math.max(limit, this.#floor);
      } else {
        this.#floor = 0;
      }
    }
    this.#limit = Math.max(limit, this.#minRate);
    this.#start = this.#beta * this.#limit;
    this.#phase = this.#phase === 'unlimited' ? 'search' : 'steady';
    this.#lastCutAt = now;
    this.#resumedAt = undefined;
    this.#cuts++;
    return true;
  }

  /** What it knows, as plain data (JSON-safe). */
  state(): AdaptiveRateState {
    const slots: [number, number, number][] = [];
    // Stryker disable next-line EqualityOperator: `<=` reads index SLOTS, undefined: it fails `id >= 0` and adds nothing (`>=` is killed)
    for (let i = 0; i < SLOTS; i++) {
      const id = this.#slotId[i] as number;
      const count = this.#slotCount[i] as number;
      const throttles = this.#slotThrottles[i] as number;
      // Stryker disable next-line ConditionalExpression,EqualityOperator,LogicalOperator: a slot with an id was filled by #slot() for an answer or a throttle, so count + throttles > 0 holds whenever id >= 0, and unused slots (id -1) hold 0 (`id > 0`, `count - throttles` and the others of this line are killed)
      if (id >= 0 && count + throttles > 0) slots.push([id, count, throttles]);
    }
    return {
      phase: this.#phase,
      limit: this.#limit,
      start: this.#start,
      lastCutAt: Number.isFinite(this.#lastCutAt) ? this.#lastCutAt : null,
      resumedAt: this.#resumedAt ?? null,
      firstAt: this.#firstAt ?? null,
      cuts: this.#cuts,
      floor: this.#floor,
      slots,
    };
  }

  /** A pace that continues from `state` (with the same options as the one that saved it). */
  static fromState(state: AdaptiveRateState, options?: AdaptiveRateOptions): AdaptiveRate {
    const pace = new AdaptiveRate(options);
    pace.#phase = state.phase;
    pace.#limit = state.limit;
    pace.#start = state.start;
    pace.#lastCutAt = state.lastCutAt ?? Number.NEGATIVE_INFINITY;
    pace.#resumedAt = state.resumedAt ?? undefined;
    pace.#firstAt = state.firstAt ?? undefined;
    pace.#cuts = state.cuts;
    pace.#floor = state.floor;
    for (const [id, count, throttles] of state.slots) {
      pace.#slotId[id % SLOTS] = id;
      pace.#slotCount[id % SLOTS] = count;
      pace.#slotThrottles[id % SLOTS] = throttles;
    }
    return pace;
  }

  /** The slot of `now`, emptied first if it held an older one. */
  #slot(now: number): number {
    const slot = Math.floor(now / this.#slotMs);
    const i = slot % SLOTS;
    if (this.#slotId[i] !== slot) {
      this.#slotId[i] = slot;
      this.#slotCount[i] = 0;
      this.#slotThrottles[i] = 0;
    }
    return i;
  }

  /** Throttles among the answers of the last `SHARE_SLOTS` slots (0 when there were none). */
  #throttleShare(now: number): number {
    const last = Math.floor(now / this.#slotMs);
    let accepted = 0;
    let throttles = 0;
    // Stryker disable next-line EqualityOperator: `<=` reads index SLOTS, undefined: no comparison holds for it (`>=` is killed)
    for (let i = 0; i < SLOTS; i++) {
      const id = this.#slotId[i] as number;
      // Stryker disable next-line ConditionalExpression: `id <= last` → true is equivalent: no slot is newer than now while times go forward (the other mutants of this line are killed)
      if (id > last - SHARE_SLOTS && id <= last) {
        accepted += this.#slotCount[i] as number;
        throttles += this.#slotThrottles[i] as number;
      }
    }
    // Stryker disable next-line ConditionalExpression: `false` is equivalent: only throttled() asks, after counting its own throttle, so throttles >= 1 (`true` is killed)
    return throttles === 0 ? 0 : throttles / (accepted + throttles);
  }

  /** A frozen picture at `now`. */
  snapshot(now: number): AdaptiveRateSnapshot {
    return Object.freeze({
      rate: this.rateAt(now),
      phase: this.#phase,
      limit: this.#limit,
      acceptedRate: this.#acceptedRate(now),
      cuts: this.#cuts,
    });
  }

  /**
   * Accepted answers and the span they cover: since sending resumed after the last cut, over at
   * most the last `slots` slots.
   */
  #measure(now: number, slots: number): { count: number; span: number } {
    const since = this.#phase === 'unlimited' ? this.#firstAt : this.#resumedAt;
    const from = since ?? now;
    const last = Math.floor(now / this.#slotMs);
    const oldest = last - slots + 1;
    const first = Math.max(oldest, Math.floor(from / this.#slotMs));
    let count = 0;
    // Stryker disable next-line EqualityOperator: `<=` reads index SLOTS, undefined: no comparison holds for it (`>=` is killed)
    for (let i = 0; i < SLOTS; i++) {
      const id = this.#slotId[i] as number;
      // Stryker disable next-line ConditionalExpression: `id <= last` → true is equivalent: no slot is newer than now while times go forward (the other mutants of this line are killed)
      if (id >= first && id <= last) count += this.#slotCount[i] as number;
    }
    return { count, span: now - Math.max(from, oldest * this.#slotMs) };
  }

  /** Accepted answers per second over the short window (at least 100 ms). */
  #acceptedRate(now: number): number {
    const { count, span } = this.#measure(now, SHORT_SLOTS);
    return count / (Math.max(span, MIN_SPAN_MS) / 1000);
  }
}
