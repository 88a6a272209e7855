import type { RetryPolicy } from '../http/policy.js';
import { redactText, redactUrl } from '../http/redact.js';
import { describeError } from '../retry/describe.js';
import type { StoredBody } from './bodies.js';
import type { AttemptResult, Decision } from './decide.js';
import type { ResponseHeaderFields } from './header-fields.js';
import type { ClaimedLine } from './journal.js';
import type { HistoryEntry } from './journal-schema.js';
import type { BatchRetryEvent } from './progress-state.js';

/**
 * What one attempt changed in its line, as either backend writes it (the SQLite journal and the
 * distributed store).
 */
export interface AttemptOutcome {
  readonly state: 'done' | 'failed' | 'pending';
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly history: readonly HistoryEntry[];
  readonly status: number | null;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly reason: string | null;
  /**
   * The response's headers (lower-case names; a repeated header's values as an array); final
   * responses only. Each backend serializes them its own way.
   */
  readonly responseHeaders: ResponseHeaderFields | null;
  readonly body: Buffer | null;
  readonly bodySize: number | null;
  readonly bodyPath: string | null;
  readonly finishedAt: number | null;
  readonly ttfbMs: number | null;
  readonly durationMs: number | null;
}

/**
 * An attempt's outcome with the line it belongs to and when the attempt started: `final` when
 * the line is finished, `retry` when another attempt is scheduled.
 */
export type LineOutcome = {
  readonly kind: 'final' | 'retry';
  readonly line: number;
  /**
   * When the attempt started (epoch ms). The SQLite journal needs it for a line claimed without
   * a write (see `Journal.dueLines`'s callers): the line may still be `pending` there (its
   * start was never written), and its attempt times are stamped with the outcome.
   */
  readonly startedAt?: number;
  /** The line, when it is fresh (no row yet in the SQLite journal: the outcome writes it). */
  readonly fresh?: ClaimedLine | undefined;
  /**
   * The final response's headers as the SQLite journal records them (`header_fields`), when they
   * were encoded as the attempt ended (see {@link outcomeOf}'s `encodeHeaders`);
   * `responseHeaders` is then null.
   */
  readonly headerFields?: string | null;
} & AttemptOutcome;

/**
 * The outcome to record for an attempt of line `line` started at `startedAt` (epoch ms): the
 * decision, and for a final response its headers and the body as stored. `attempts` counts this
 * attempt. One object, built at once in its final shape: the runner hands it to the journal as it
 * is (spreading it into another cost the runner about 0.2 µs and 200 bytes an outcome).
 *
 * With `encodeHeaders` (the SQLite journal's encoder), a final response's headers are encoded at
 * once into `headerFields`, and the outcome keeps no reference to their object: outcomes wait
 * up to 50 ms for their write, and the headers' object and strings of every one of them lived
 * through young-generation collections (the encoded text is most often one string shared by
 * many responses).
 */
export function outcomeOf(
  line: number,
  startedAt: number,
  decision: Decision,
  result: AttemptResult,
  stored: StoredBody | undefined,
  attempts: number,
  now: number,
  fresh?: ClaimedLine,
  encodeHeaders?: (headers: ResponseHeaderFields) => string,
): LineOutcome {
  const final = decision.state !== 'pending';
  const headers =
    final && result.kind === 'response'
      ? (result.rawHeaders ?? Object.fromEntries(result.headers))
      : null;
  return {
    kind: final ? 'final' : 'retry',
    line,
    startedAt,
    fresh,
    state: decision.state,
    attempts,
    nextAttemptAt: decision.nextAttemptAt,
    history: decision.history,
    status: decision.status,
    errorCode: decision.errorCode,
    // Kept for reports only: never a credential, whatever error produced it.
    errorMessage: decision.errorMessage === null ? null : redactText(decision.errorMessage),
    reason: decision.reason,
    responseHeaders: encodeHeaders === undefined ? headers : null,
    headerFields: encodeHeaders === undefined || headers === null ? null : encodeHeaders(headers),
    body: stored?.body ?? null,
    bodySize: stored?.bodySize ?? null,
    bodyPath: stored?.bodyPath ?? null,
    finishedAt: final ? now : null,
    ttfbMs: result.ttfbMs ?? null,
    durationMs: result.durationMs,
  };
}

/** The most attempts `policy` allows a line (`Infinity` when unbounded). */
export function maxAttemptsOf(policy: RetryPolicy): number {
  const retries = policy.remaining.total;
  return retries === undefined ? Number.POSITIVE_INFINITY : retries + 1;
}

/** The `onRetry` event of an attempt the decision schedules again. */
export function retryEventOf(
  line: {
    readonly line: number;
    readonly key?: string | null | undefined;
    readonly method: string;
    readonly url: string;
  },
  attempt: number,
  maxAttempts: number,
  decision: Decision,
  result: AttemptResult,
): BatchRetryEvent {
  return {
    line: line.line,
    key: line.key ?? undefined,
    method: line.method,
    url: redactUrl(line.url) ?? line.url,
    attempt,
    maxAttempts,
    status: decision.status ?? undefined,
    errorCode: decision.errorCode ?? undefined,
    message:
      result.kind === 'response'
        ? `HTTP ${result.status}`
        : redactText(describeError(result.error)),
    delayMs: decision.delayMs ?? 0,
    delaySource: decision.delaySource ?? 'backoff',
    held: decision.held,
    nextAttemptAt: decision.nextAttemptAt,
  };
}
