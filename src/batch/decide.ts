import {
  BodyTooLargeError,
  DoggedError,
  MaxRetryError,
  RetryAfterTooLongError,
} from '../http/errors.js';
import type { RetryPolicy } from '../http/policy.js';
import { parseRetryAfter } from '../http/retry-after.js';
import { describeError, formatDuration } from '../retry/describe.js';
import type { EndReason, HistoryEntry } from './journal-schema.js';

/** What one attempt produced. */
export type AttemptResult =
  | {
      readonly kind: 'response';
      readonly status: number;
      readonly headers: Headers;
      /** The same headers, raw (cheaper to read and to store); optional for hand-made results. */
      readonly rawHeaders?: Readonly<Record<string, string | string[] | undefined>>;
      readonly ttfbMs: number;
      readonly durationMs: number;
    }
  | {
      readonly kind: 'error';
      readonly error: unknown;
      /** The status, when the failure came after the response head (a body cut short). */
      readonly status: number | undefined;
      readonly ttfbMs: number | undefined;
      readonly durationMs: number;
    };

/** The line as the decision needs it. */
export interface DecisionInput {
  readonly method: string;
  readonly url: string;
  readonly replaySafe: boolean;
  /** The retries made so far (from the journal). */
  readonly history: readonly HistoryEntry[];
  /** When the line's first attempt started (epoch ms): `giveUpAfterMs` counts from it. */
  readonly firstAttemptAt: number;
}

/** What to write: the line is finished, or pending again until `nextAttemptAt`. */
export interface Decision {
  readonly state: 'done' | 'failed' | 'pending';
  readonly reason: EndReason | null;
  readonly nextAttemptAt: number;
  readonly history: readonly HistoryEntry[];
  readonly status: number | null;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  /** For a retry: the delay and where it came from. */
  readonly delayMs: number | undefined;
  readonly delaySource: HistoryEntry['source'] | undefined;
  /**
   * The host held the line (it turned the attempt away, or it was down): the retry count was
   * not spent.
   */
  readonly held: boolean;
}

/** Limits of the batch that the in-memory policy does not know about. */
export interface DecisionLimits {
  /**
   * The longest Retry-After the batch waits for (durably); longer ones fail the line.
   * (The policy's own `maxRetryAfter` only bounds sleeps in memory; a batch never sleeps.)
   */
  readonly maxRetryAfterMs: number;
  /**
   * How long a line may be turned away by its host (429s, 503s with Retry-After), from its first
   * attempt: past it, the line fails with reason `rate-limited`.
   */
  readonly giveUpAfterMs: number;
  /**
   * Set when this attempt was a throttle of its host (see {@link throttleOf}) and the runner
   * paused the host: when the host takes requests again (epoch ms).
   */
  readonly hostOpenAt?: number | undefined;
  /**
   * Set when this attempt failed while its host was in an outage (see `HostLimits.failed`): when
   * the host is probed again (epoch ms).
   */
  readonly hostDownUntil?: number | undefined;
}

/** A host's "slow down": a 429, or a 503 with `Retry-After`, and the wait it asked for. */
export interface Throttle {
  readonly status: number;
  /** The `Retry-After`, in ms (undefined: none, or unreadable). */
  readonly retryAfterMs: number | undefined;
}

function retryAfterHeader(
  result: Extract<AttemptResult, { kind: 'response' }>,
): string | undefined {
  const raw = result.rawHeaders
    ? result.rawHeaders['retry-after']
    : result.headers.get('retry-after');
  if (raw === null) return undefined;
  return Array.isArray(raw) ? raw[0] : raw;
}

/** Gateway statuses: the server in front answered, the one behind it did not. */
const GATEWAY_FAILURES = new Set([502, 503, 504]);

/**
 * Whether an attempt's failure may be its host's rather than its line's: a retriable
 * connection error or timeout (refused, reset, DNS, cut body...), or a 502, 503 (without a
 * `Retry-After` asking to wait: that is a throttle) or 504. Twenty in a row make an outage (see `HostLimits`).
 */
export function isHostFailure(result: AttemptResult): boolean {
  if (result.kind === 'error') {
    const retriable = (result.error as { retriable?: unknown } | null)?.retriable;
    return retriable === true;
  }
  return GATEWAY_FAILURES.has(result.status) && throttleOf(result, Date.now()) === undefined;
}

/** What an attempt tells about its host (see `HostLimits` and the fleet's `FleetPace`). */
export type HostSignal =
  /** A failure that may be the host's: counts towards an outage. */
  | { readonly kind: 'failure' }
  /** A throttle: pause the host (for `retryAfterMs`, capped, when there was one), slow it down. */
  | { readonly kind: 'throttle'; readonly retryAfterMs: number | undefined }
  /** Any other answer: the host is up, its pace may grow. */
  | { readonly kind: 'answer' }
  /** Nothing about the host (an error of the line's own). */
  | { readonly kind: 'none' };

// The signals without a value, made once (one per attempt otherwise).
const FAILURE: HostSignal = Object.freeze({ kind: 'failure' });
const ANSWER: HostSignal = Object.freeze({ kind: 'answer' });
const NONE: HostSignal = Object.freeze({ kind: 'none' });

/**
 * What `result` tells about its host, with a `Retry-After` capped at `maxRetryAfterMs` (a longer
 * one fails the line, and pauses the host no longer than that).
 */
export function hostSignalOf(
  result: AttemptResult,
  now: number,
  maxRetryAfterMs: number,
): HostSignal {
  if (isHostFailure(result)) return FAILURE;
  if (result.kind !== 'response') return NONE;
  const throttle = throttleOf(result, now);
  if (!throttle) return ANSWER;
  const { retryAfterMs } = throttle;
  return {
    kind: 'throttle',
    retryAfterMs: retryAfterMs === undefined ? undefined : Math.min(retryAfterMs, maxRetryAfterMs),
  };
}

/**
 * The throttle an attempt got, if it got one: a 429 (with or without `Retry-After`) or a 503
 * asking to wait (a `Retry-After` above 0). That is the host's signal, not the line's failure.
 * A 503 without one, or with `Retry-After: 0`, is an ordinary failure of the attempt.
 */
export function throttleOf(result: AttemptResult, now: number): Throttle | undefined {
  if (result.kind !== 'response') return undefined;
  const { status } = result;
  if (status !== 429 && status !== 503) return undefined;
  const retryAfterMs = parseRetryAfter(retryAfterHeader(result), now);
  if (
    status === 503 &&
    // Stryker disable next-line ConditionalExpression: undefined > 0 is false: the undefined check only narrows the type
    !(retryAfterMs !== undefined && retryAfterMs > 0)
  )
    return undefined;
  return { status, retryAfterMs };
}

/** A failure of an earlier run, rebuilt to replay the policy's counters. */
class ReplayedFailure extends DoggedError {
  override name = 'ReplayedFailure';
  override readonly code: string;
  override readonly retriable: boolean = true;
  constructor(code: string, phase: string) {
    super(`replayed ${code}`, {
      phase: (['connect', 'request', 'headers', 'body'].includes(phase)
        ? phase
        : 'none') as DoggedError['phase'],
    });
    this.code = code;
  }
}

/**
 * The policy as it stood before this attempt: the base policy with every recorded retry
 * replayed through `increment()`, so urllib3's counters (connect, read, status...) and the
 * backoff run survive restarts. Undefined when the history already exhausts the policy (the
 * policy was made stricter since).
 */
export function replayPolicy(base: RetryPolicy, line: DecisionInput): RetryPolicy | undefined {
  let policy = base;
  try {
    for (const h of line.history) {
      // A throttle, or a failure while the host was down, did not spend the retry count.
      if (h.throttled || h.down) continue;
      policy = policy.increment(
        h.status === undefined
          ? {
              method: line.method,
              url: line.url,
              error: new ReplayedFailure(
                h.code ?? 'ERR_DOGGED',
                // Stryker disable next-line StringLiteral: ReplayedFailure reads any phase it does not know as 'none'
                h.phase ?? 'none',
              ),
              replaySafe: line.replaySafe,
            }
          : {
              method: line.method,
              url: line.url,
              response: { status: h.status, url: line.url, headers: new Headers() },
              replaySafe: line.replaySafe,
            },
      );
    }
  } catch {
    return undefined;
  }
  return policy;
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.name : 'ERR_DOGGED_UNKNOWN';
}

function final(
  line: DecisionInput,
  state: 'done' | 'failed',
  reason: EndReason,
  fields: { status?: number | undefined; errorCode?: string; errorMessage?: string },
): Decision {
  return {
    state,
    reason,
    nextAttemptAt: 0,
    history: line.history,
    status: fields.status ?? null,
    errorCode: fields.errorCode ?? null,
    errorMessage: fields.errorMessage ?? null,
    delayMs: undefined,
    delaySource: undefined,
    held: false,
  };
}

/**
 * Decides what an attempt means for its line, with the policy's urllib3 semantics: finished
 * (done, or failed and why), or pending again at `now + delay` (backoff or Retry-After). Pure:
 * no I/O, no clock but `now`.
 */
export function decide(
  base: RetryPolicy,
  line: DecisionInput,
  result: AttemptResult,
  now: number,
  limits: DecisionLimits,
): Decision {
  const policy = replayPolicy(base, line);
  const { method, url, replaySafe } = line;

  if (result.kind === 'response') {
    const { status } = result;
    const outcome = status < 400 ? 'done' : 'failed';
    const endReason: EndReason = status < 400 ? 'ok' : 'http-status';
    const hasRetryAfter = retryAfterHeader(result) !== undefined;
    if (
      limits.hostOpenAt !== undefined &&
      base.isRetry(method, status, hasRetryAfter, replaySafe) &&
      allowsRetries(base, method, url, status, replaySafe)
    )
      return throttled(line, result, now, limits, limits.hostOpenAt);
    if (!policy?.isRetry(method, status, hasRetryAfter, replaySafe)) {
      if (!policy && status >= 400 && base.isRetry(method, status, hasRetryAfter, replaySafe))
        return final(line, 'failed', 'retries-exhausted', { status });
      return final(line, outcome, endReason, { status });
    }
    const response = { status, url, headers: result.headers };
    if (limits.hostDownUntil !== undefined && allowsRetries(base, method, url, status, replaySafe))
      return hostDown(line, now, limits, limits.hostDownUntil, { status });
    let next: RetryPolicy;
    try {
      next = policy.increment({ method, url, response, replaySafe });
    } catch (error) {
      return final(
        line,
        outcome,
        error instanceof MaxRetryError ? 'retries-exhausted' : endReason,
        {
          status,
          errorMessage: describeError(error),
        },
      );
    }
    let delayMs: number;
    let source: HistoryEntry['source'];
    try {
      ({ delayMs, source } = next.getRetryDelay(response, { method, url, now }));
    } catch (error) {
      if (!(error instanceof RetryAfterTooLongError)) throw error;
      if (error.retryAfterMs > limits.maxRetryAfterMs) {
        return final(line, 'failed', 'retry-after-too-long', {
          status,
          errorCode: error.code,
          errorMessage: retryAfterTooLong(error.retryAfterMs, limits.maxRetryAfterMs),
        });
      }
      // Too long to sleep on in memory, not too long to schedule: the journal waits instead.
      delayMs = error.retryAfterMs;
      source = 'retry-after';
    }
    return retry(line, now, { at: now, status, delayMs, source }, { status });
  }

  const { error } = result;
  // As large on every attempt: the line fails at once, whatever retries are left.
  if (error instanceof BodyTooLargeError)
    return final(line, 'failed', 'body-too-large', {
      status: result.status,
      errorCode: error.code,
      errorMessage: error.message,
    });
  if (!policy) {
    return final(line, 'failed', 'retries-exhausted', {
      status: result.status,
      errorCode: codeOf(error),
      errorMessage: describeError(error),
    });
  }
  if (limits.hostDownUntil !== undefined && retriesError(base, method, url, error, replaySafe))
    return hostDown(line, now, limits, limits.hostDownUntil, {
      status: result.status,
      errorCode: codeOf(error),
      errorMessage: describeError(error),
    });
  let next: RetryPolicy;
  try {
    next = policy.increment({ method, url, error, replaySafe });
  } catch (thrown) {
    const exhausted = thrown instanceof MaxRetryError;
    return final(line, 'failed', exhausted ? 'retries-exhausted' : 'not-retriable', {
      status: result.status,
      errorCode: codeOf(error),
      errorMessage: exhausted ? thrown.message : describeError(thrown),
    });
  }
  const delayMs = next.getBackoffTime();
  const phase = error instanceof DoggedError ? error.phase : 'none';
  return retry(
    line,
    now,
    { at: now, code: codeOf(error), phase, delayMs, source: 'backoff' },
    { status: result.status, errorCode: codeOf(error), errorMessage: describeError(error) },
  );
}

/** Whether `base` retries this status at all (a policy of `total: 0` does not). */
function allowsRetries(
  base: RetryPolicy,
  method: string,
  url: string,
  status: number,
  replaySafe: boolean,
): boolean {
  try {
    base.increment({
      method,
      url,
      // Stryker disable next-line ObjectLiteral: a response without headers or status is no redirect either: increment spends the same counters (and only whether it throws is read)
      response: { status, url, headers: new Headers() },
      replaySafe,
    });
    return true;
  } catch /* Stryker disable next-line BlockStatement: the callers read the answer as a condition only: undefined is false too */ {
    return false;
  }
}

/** Whether `base` retries this error at all (an error a method cannot replay is final). */
function retriesError(
  base: RetryPolicy,
  method: string,
  url: string,
  error: unknown,
  replaySafe: boolean,
): boolean {
  try {
    base.increment({ method, url, error, replaySafe });
    return true;
  } catch /* Stryker disable next-line BlockStatement: the callers read the answer as a condition only: undefined is false too */ {
    return false;
  }
}

/** Why a line failed on a `Retry-After` past the batch's `--max-retry-after`. */
function retryAfterTooLong(retryAfterMs: number, maxRetryAfterMs: number): string {
  return `Retry-After of ${formatDuration(retryAfterMs)} exceeds the batch limit (--max-retry-after) of ${formatDuration(maxRetryAfterMs)}; raise it or run the batch again later`;
}

/**
 * The attempt failed while its host was down: the line waits for the host's next probe without
 * spending its retry count (bounded by `giveUpAfterMs` like a throttle).
 */
function hostDown(
  line: DecisionInput,
  now: number,
  limits: DecisionLimits,
  downUntil: number,
  fields: { status?: number | undefined; errorCode?: string; errorMessage?: string },
): Decision {
  const at = Math.max(now, downUntil);
  if (at - line.firstAttemptAt > limits.giveUpAfterMs)
    return final(line, 'failed', 'retries-exhausted', fields);
  const previous = line.history[line.history.length - 1];
  const entry: HistoryEntry = {
    at: now,
    ...(fields.status !== undefined && { status: fields.status }),
    ...(fields.errorCode !== undefined && { code: fields.errorCode }),
    delayMs: at - now,
    source: 'backoff',
    down: (previous?.down ?? 0) + 1,
  };
  const history = previous?.down ? [...line.history.slice(0, -1), entry] : [...line.history, entry];
  return retry(line, now, entry, fields, history, true);
}

/**
 * The host turned the attempt away: the line waits for the host (its `Retry-After`, and the
 * host's pause) without spending its retry count, unless that wait ends past `giveUpAfterMs`
 * from its first attempt, or the `Retry-After` is beyond `maxRetryAfterMs`.
 */
function throttled(
  line: DecisionInput,
  result: Extract<AttemptResult, { kind: 'response' }>,
  now: number,
  limits: DecisionLimits,
  hostOpenAt: number,
): Decision {
  const { status } = result;
  const retryAfterMs = parseRetryAfter(retryAfterHeader(result), now);
  // Stryker disable next-line ConditionalExpression: undefined > maxRetryAfterMs is false: the undefined check only narrows the type
  if (retryAfterMs !== undefined && retryAfterMs > limits.maxRetryAfterMs) {
    return final(line, 'failed', 'retry-after-too-long', {
      status,
      errorCode: 'ERR_DOGGED_RETRY_AFTER_TOO_LONG',
      errorMessage: retryAfterTooLong(retryAfterMs, limits.maxRetryAfterMs),
    });
  }
  const at = Math.max(now, hostOpenAt, now + (retryAfterMs ?? 0));
  const turnedAwayFor = now - line.firstAttemptAt;
  if (at - line.firstAttemptAt > limits.giveUpAfterMs) {
    return final(line, 'failed', 'rate-limited', {
      status,
      errorCode: 'ERR_DOGGED_RATE_LIMITED',
      errorMessage: `the host answered ${status} for ${formatDuration(turnedAwayFor)} and asks to wait ${formatDuration(at - now)} more: past --give-up-after ${formatDuration(limits.giveUpAfterMs)}`,
    });
  }
  const previous = line.history[line.history.length - 1];
  const entry: HistoryEntry = {
    at: now,
    status,
    delayMs: at - now,
    source: retryAfterMs === undefined ? 'backoff' : 'retry-after',
    throttled: (previous?.throttled ?? 0) + 1,
  };
  // Consecutive throttles share one history entry: a line held for hours keeps a short history.
  const history = previous?.throttled
    ? [...line.history.slice(0, -1), entry]
    : [...line.history, entry];
  return retry(line, now, entry, { status }, history, true);
}

function retry(
  line: DecisionInput,
  now: number,
  entry: HistoryEntry,
  fields: { status?: number | undefined; errorCode?: string; errorMessage?: string },
  history: readonly HistoryEntry[] = [...line.history, entry],
  held = false,
): Decision {
  return {
    state: 'pending',
    reason: null,
    nextAttemptAt: now + Math.ceil(entry.delayMs),
    history,
    status: fields.status ?? null,
    errorCode: fields.errorCode ?? null,
    errorMessage: fields.errorMessage ?? null,
    delayMs: entry.delayMs,
    delaySource: entry.source,
    held,
  };
}
