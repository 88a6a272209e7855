import type { Clock } from './clock.js';
import { assertNumberAtLeast, readClock, readOptions } from './storm-validate.js';
import { isAbortError } from './transient.js';
import {
  assertDuration,
  assertFunction,
  assertPositiveInteger,
  assertPositiveNumber,
  showValue,
} from './validate.js';

/** What every {@link CircuitBreaker} accepts, whatever its mode. */
export interface CircuitBreakerCommonOptions {
  /**
   * How long the circuit stays open before it lets probes through (half-open), in milliseconds.
   * It grows after each failed probe (see `halfOpenBackoffFactor`) and comes back to this value
   * when the circuit closes.
   * @default 10_000
   * @example { halfOpenAfterMs: 30_000 }
   */
  halfOpenAfterMs?: number;
  /**
   * The cap of the growing half-open delay, in milliseconds. The same 2 minutes as an HTTP
   * session's `maxRetryAfter`: no server is left alone longer than it could itself ask for.
   * @default 120_000
   * @example { maxHalfOpenAfterMs: 600_000 }
   */
  maxHalfOpenAfterMs?: number;
  /**
   * What a failed probe multiplies the half-open delay by (at least 1; 1 keeps it fixed).
   * With the defaults the circuit waits 10, 20, 40, 80, 120, 120 ... seconds.
   * @default 2
   * @example { halfOpenBackoffFactor: 1 } // always wait halfOpenAfterMs
   */
  halfOpenBackoffFactor?: number;
  /**
   * How many requests may be in flight as probes while half-open; the others fail fast. The
   * first probe to succeed closes the circuit, the first to fail re-opens it. A probe that
   * reports nothing within the half-open delay counts as failed.
   * @default 1
   * @example { halfOpenProbes: 3 }
   */
  halfOpenProbes?: number;
  /**
   * Which errors thrown inside `execute()` count as failures. Others release their permit
   * with no verdict. (`tryAcquire()` users report outcomes themselves.)
   * @default every error except an abort
   * @example { isFailure: (error) => !(error instanceof ValidationError) }
   */
  isFailure?: (error: unknown) => boolean;
  /**
   * A name for error messages and logs, e.g. the origin it guards.
   * @default undefined
   * @example { name: 'https://api.example.com' }
   */
  name?: string;
  /**
   * The source of time. The breaker sets no timer: time-driven changes (open → half-open)
   * happen when the breaker is next asked. Tests pass `FakeClock` from `dogged/testing`.
   * @default systemClock
   * @example { clock: new FakeClock() }
   */
  clock?: Clock;
}

/** Opens after `threshold` failures in a row. */
export interface ConsecutiveBreakerOptions extends CircuitBreakerCommonOptions {
  /**
   * Trip on consecutive failures (the default mode).
   * @default 'consecutive'
   * @example { mode: 'consecutive', threshold: 3 }
   */
  mode?: 'consecutive';
  /**
   * How many failures in a row open the circuit; any success resets the count.
   * @default 5
   * @example { threshold: 10 }
   */
  threshold?: number;
}

/** Opens when the failure ratio over a sliding time window reaches `failureRatio`. */
export interface RatioBreakerOptions extends CircuitBreakerCommonOptions {
  /**
   * Trip on the failure ratio over a sliding window.
   * @example { mode: 'ratio', failureRatio: 0.25, minimumRequests: 20, windowMs: 60_000 }
   */
  mode: 'ratio';
  /**
   * The share of failed requests (from 0 excluded to 1) that opens the circuit.
   * @default 0.5
   * @example { failureRatio: 0.25 }
   */
  failureRatio?: number;
  /**
   * The fewest requests in the window for the ratio to count: two failures out of three are
   * not evidence of an outage.
   * @default 10
   * @example { minimumRequests: 100 }
   */
  minimumRequests?: number;
  /**
   * The sliding window, in milliseconds. It moves in tenths: an outcome counts for between
   * 0.9 and 1 times `windowMs`.
   * @default 30_000
   * @example { windowMs: 60_000 }
   */
  windowMs?: number;
}

/** Options of `new CircuitBreaker()`: one of the two modes. */
export type CircuitBreakerOptions = ConsecutiveBreakerOptions | RatioBreakerOptions;

/** The options with defaults filled in, validated. */
export type ResolvedBreakerOptions = {
  readonly halfOpenAfterMs: number;
  readonly maxHalfOpenAfterMs: number;
  readonly halfOpenBackoffFactor: number;
  readonly halfOpenProbes: number;
  readonly isFailure: (error: unknown) => boolean;
  readonly name: string | undefined;
  readonly clock: Clock;
} & (
  | { readonly mode: 'consecutive'; readonly threshold: number }
  | {
      readonly mode: 'ratio';
      readonly failureRatio: number;
      readonly minimumRequests: number;
      readonly windowMs: number;
    }
);

const COMMON_KEYS = [
  'mode',
  'halfOpenAfterMs',
  'maxHalfOpenAfterMs',
  'halfOpenBackoffFactor',
  'halfOpenProbes',
  'isFailure',
  'name',
  'clock',
] as const;
const CONSECUTIVE_KEYS = [...COMMON_KEYS, 'threshold'] as const;
const RATIO_KEYS = [...COMMON_KEYS, 'failureRatio', 'minimumRequests', 'windowMs'] as const;
const HINTS: Record<string, string> = {
  halfOpenAfter: 'the option is named halfOpenAfterMs (milliseconds)',
  resetTimeout: 'use halfOpenAfterMs',
  breakDuration: 'use halfOpenAfterMs',
  failureThreshold: 'use threshold (consecutive mode) or failureRatio (ratio mode)',
  samplingDuration: "use windowMs with mode: 'ratio'",
  minimumThroughput: "use minimumRequests with mode: 'ratio'",
  threshold: "threshold is for mode: 'consecutive'; the ratio mode uses failureRatio",
  failureRatio: "failureRatio needs mode: 'ratio'",
  minimumRequests: "minimumRequests needs mode: 'ratio'",
  windowMs: "windowMs needs mode: 'ratio'",
};

const notAnAbort = (error: unknown): boolean => !isAbortError(error);

/** Validates the options of `new CircuitBreaker()` (or `fromJSON`) and fills in defaults. */
export function resolveBreakerOptions(where: string, options: unknown): ResolvedBreakerOptions {
  const mode = (options as { mode?: unknown } | undefined)?.mode ?? 'consecutive';
  if (mode !== 'consecutive' && mode !== 'ratio') {
    throw new TypeError(`${where}: mode must be 'consecutive' or 'ratio', got ${showValue(mode)}`);
  }
  const o = readOptions(where, options, mode === 'ratio' ? RATIO_KEYS : CONSECUTIVE_KEYS, HINTS);
  const halfOpenAfterMs = o.halfOpenAfterMs ?? 10_000;
  const maxHalfOpenAfterMs = o.maxHalfOpenAfterMs ?? Math.max(120_000, halfOpenAfterMs as number);
  const halfOpenBackoffFactor = o.halfOpenBackoffFactor ?? 2;
  const halfOpenProbes = o.halfOpenProbes ?? 1;
  const isFailure = o.isFailure ?? notAnAbort;
  assertDuration(`${where}: halfOpenAfterMs`, halfOpenAfterMs);
  assertDuration(`${where}: maxHalfOpenAfterMs`, maxHalfOpenAfterMs);
  if (maxHalfOpenAfterMs < halfOpenAfterMs) {
    throw new TypeError(
      `${where}: maxHalfOpenAfterMs (${maxHalfOpenAfterMs}) must not be less than halfOpenAfterMs (${halfOpenAfterMs})`,
    );
  }
  assertNumberAtLeast(`${where}: halfOpenBackoffFactor`, halfOpenBackoffFactor, 1);
  assertPositiveInteger(`${where}: halfOpenProbes`, halfOpenProbes);
  assertFunction(`${where}: isFailure`, isFailure);
  if (o.name !== undefined && typeof o.name !== 'string') {
    throw new TypeError(`${where}: name must be a string, got ${showValue(o.name)}`);
  }
  const common = {
    halfOpenAfterMs,
    maxHalfOpenAfterMs,
    halfOpenBackoffFactor,
    halfOpenProbes,
    isFailure: isFailure as (error: unknown) => boolean,
    name: o.name as string | undefined,
    clock: readClock(where, o.clock),
  };
  if (mode === 'consecutive') {
    const threshold = o.threshold ?? 5;
    assertPositiveInteger(`${where}: threshold`, threshold);
    return Object.freeze({ ...common, mode, threshold });
  }
  const failureRatio = o.failureRatio ?? 0.5;
  const minimumRequests = o.minimumRequests ?? 10;
  const windowMs = o.windowMs ?? 30_000;
  if (typeof failureRatio !== 'number' || !(failureRatio > 0 && failureRatio <= 1)) {
    throw new TypeError(
      `${where}: failureRatio must be a number above 0 and at most 1, got ${showValue(failureRatio)}`,
    );
  }
  assertPositiveInteger(`${where}: minimumRequests`, minimumRequests);
  assertPositiveNumber(`${where}: windowMs`, windowMs);
  return Object.freeze({ ...common, mode, failureRatio, minimumRequests, windowMs });
}
