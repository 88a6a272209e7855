import {
  QueueUnavailableError,
  StoreUnavailableError,
  UnknownJobError,
} from '../batch/distributed/errors.js';
import {
  InputChangedError,
  InputUnreadableError,
  JournalFormatError,
  JournalLockedError,
} from '../batch/errors.js';
import { BodyFileError } from '../http/body-file.js';
import {
  BodyTooLargeError,
  ConnectError,
  ConnectionResetError,
  ConnectTimeoutError,
  HeadersTooLargeError,
  HTTPStatusError,
  IncompleteBodyError,
  InvalidResponseError,
  InvalidURLError,
  MaxRetryError,
  NameResolutionError,
  ProxyError,
  ReadTimeoutError,
  RetryAfterTooLongError,
  TLSError,
  TooManyRedirectsError,
  TotalTimeoutError,
} from '../http/errors.js';
import { redacted } from './redaction.js';

/**
 * dogged's exit codes. Where curl has a code for the same failure, dogged uses curl's, so
 * scripts written for curl keep working.
 */
export const EXIT = Object.freeze({
  /** Success: every request or line ended well. */
  ok: 0,
  /** An unexpected error: a bug, please report it. */
  internal: 1,
  /** Bad usage: unknown option, bad value, missing argument, a journal that does not fit. */
  usage: 2,
  /** The URL is malformed (curl 3). */
  badUrl: 3,
  /** The host name did not resolve (curl 6). */
  resolve: 6,
  /** Could not connect: refused, unreachable (curl 7). */
  connect: 7,
  /** The server's answer cannot be used: a Location that cannot be fetched (curl 8, weird server reply). */
  invalidResponse: 8,
  /** The batch finished, but some lines failed or were invalid. */
  batchFailures: 10,
  /** The batch stopped with lines scheduled beyond --max-wait; run it again later. */
  batchDeferred: 11,
  /** Another runner holds the journal. */
  locked: 12,
  /** Redis (--queue) cannot be reached. */
  queueUnavailable: 13,
  /** PostgreSQL (--store) cannot be reached. */
  storeUnavailable: 14,
  /** The response body was cut short (curl 18). */
  partial: 18,
  /** The final HTTP status was 400 or more (curl 22, as with --fail). */
  httpStatus: 22,
  /** The body could not be written to its file (curl 23). */
  writeError: 23,
  /** More redirects than allowed, or a redirect with redirects off (curl 47). */
  tooManyRedirects: 47,
  /** Timed out: connect, read, or --max-time (curl 28). */
  timeout: 28,
  /** TLS failed (curl 35). */
  tls: 35,
  /** The connection dropped before a complete response (curl 56). */
  reset: 56,
  /** The response body was larger than --max-body (curl 63, maximum file size exceeded). */
  bodyTooLarge: 63,
  /**
   * The server asked to wait longer than `--max-retry-after` (EX_TEMPFAIL: try again later), or
   * every retry was used on a failure that has no code of its own. A failure that has one keeps
   * it after the retries, as with curl --retry: refused after 3 attempts is 7, a 503 is 22.
   */
  retriesExhausted: 75,
  /** A proxy failed (curl 97). */
  proxy: 97,
  /** The response head is larger than the client accepts: a header flood (curl 100, too large). */
  headersTooLarge: 100,
  /** Stopped by Ctrl-C (128 + SIGINT); a batch resumes when run again. */
  interrupted: 130,
});

/** The exit code for an error that ended a command. */
export function exitCodeFor(error: unknown): number {
  if (error instanceof MaxRetryError) {
    // The code of what the last attempt met (curl --retry exits 7 after refused retries).
    const last =
      error.reason instanceof Error
        ? exitCodeFor(error.reason)
        : error.reason !== undefined || error.response !== undefined
          ? EXIT.httpStatus
          : EXIT.internal;
    return last === EXIT.internal || last === EXIT.usage ? EXIT.retriesExhausted : last;
  }
  if (error instanceof RetryAfterTooLongError) return EXIT.retriesExhausted;
  if (error instanceof TooManyRedirectsError) return EXIT.tooManyRedirects;
  if (error instanceof HTTPStatusError) return EXIT.httpStatus;
  if (error instanceof InvalidURLError) return EXIT.badUrl;
  if (error instanceof NameResolutionError) return EXIT.resolve;
  if (error instanceof ConnectTimeoutError) return EXIT.timeout;
  if (error instanceof ConnectionResetError) return EXIT.reset;
  if (error instanceof ConnectError) return EXIT.connect;
  if (error instanceof ReadTimeoutError || error instanceof TotalTimeoutError) return EXIT.timeout;
  if (error instanceof IncompleteBodyError) return EXIT.partial;
  if (error instanceof BodyTooLargeError) return EXIT.bodyTooLarge;
  if (error instanceof BodyFileError) return EXIT.writeError;
  if (error instanceof TLSError) return EXIT.tls;
  if (error instanceof ProxyError) return EXIT.proxy;
  if (error instanceof HeadersTooLargeError) return EXIT.headersTooLarge;
  if (error instanceof InvalidResponseError) return EXIT.invalidResponse;
  if (error instanceof JournalLockedError) return EXIT.locked;
  if (error instanceof QueueUnavailableError) return EXIT.queueUnavailable;
  if (error instanceof StoreUnavailableError) return EXIT.storeUnavailable;
  if (error instanceof UnknownJobError) return EXIT.usage;
  if (
    error instanceof InputChangedError ||
    error instanceof JournalFormatError ||
    error instanceof InputUnreadableError
  )
    return EXIT.usage;
  if (error instanceof TypeError && /must be|unknown option|give either/.test(error.message))
    return EXIT.usage;
  return EXIT.internal;
}

/**
 * The exit code of a command whose options reach the library as they are: a TypeError that
 * `exitCodeFor` does not know is a bad option of the call (usage), not a dogged bug.
 */
export function exitCodeForCommand(error: unknown): number {
  const code = exitCodeFor(error);
  return code === EXIT.internal && error instanceof TypeError ? EXIT.usage : code;
}

/** Prints `dogged <command>: <message>` to stderr, secrets redacted. */
export function printError(command: string, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`dogged ${command}: ${redacted(message)}\n`);
}
