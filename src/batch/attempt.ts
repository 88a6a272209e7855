import { performance } from 'node:perf_hooks';
import { BodyFileError } from '../http/body-file.js';
import { codingsToUndo } from '../http/decompress.js';
import type { DoggedResponse } from '../http/response.js';
import type { Session } from '../http/session.js';
import type { BodyStore, ReceivedBody, StoredBody } from './bodies.js';
import type { AttemptResult } from './decide.js';

/**
 * The largest body the runner reads whole (as `bytes()` does: the attempt deadline's default
 * for a body read whole applies) rather than as a stream, by its Content-Length.
 */
const WHOLE_READ_BYTES = 1024 * 1024;

/**
 * True for a body announced (by a single Content-Length) at {@link WHOLE_READ_BYTES} or less,
 * with nothing to decode (the response's own reading of Content-Encoding): reading it whole
 * holds no more than that.
 */
function isSmallPlainBody(response: DoggedResponse): boolean {
  const headers = response.rawHeaders;
  const length = headers['content-length'];
  if (typeof length !== 'string' || !/^\d{1,7}$/.test(length)) return false;
  if (Number(length) > WHOLE_READ_BYTES) return false;
  return codingsToUndo(response.method, response.status, headers) === undefined;
}

/** One request of a line, as the runner sends it. */
export interface AttemptRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>> | undefined;
  readonly body: string | undefined;
}

/**
 * An attempt that got a response. A class, not an object literal with a `get headers()`: with
 * the literal (its getter closing over the response), V8 promoted about 4.4 KB of every
 * attempt's response objects to the old generation (measured with the sampling heap profiler on
 * Node 20), and the runner spent a tenth of its CPU in the collector; with the class, 0.1 KB.
 */
export class ResponseOutcome {
  readonly kind = 'response';
  readonly status: number;
  readonly rawHeaders: DoggedResponse['rawHeaders'];
  /** The body as received: kept if the attempt is final, else discarded. */
  readonly received: ReceivedBody;
  readonly ttfbMs: number;
  readonly durationMs: number;
  readonly #response: DoggedResponse;

  constructor(
    response: DoggedResponse,
    received: ReceivedBody,
    ttfbMs: number,
    durationMs: number,
  ) {
    this.#response = response;
    this.status = response.status;
    this.rawHeaders = response.rawHeaders;
    this.received = received;
    this.ttfbMs = ttfbMs;
    this.durationMs = durationMs;
  }

  /** WHATWG Headers cost a few microseconds to build: only when a decision needs them. */
  get headers(): Headers {
    return this.#response.headers;
  }
}

/** An attempt's result; a response carries its body as received (see {@link BodyStore}). */
export type BatchAttempt = ResponseOutcome | Exclude<AttemptResult, { readonly kind: 'response' }>;

/**
 * Sends exactly one request (the Session must have retries off: the journal schedules retries)
 * and streams the whole body to `bodies` (a buffer, a file, or only a count), so a body cut
 * short, over the size limit or past the attempt deadline counts as a failed attempt. Resolves
 * with the outcome, or `undefined` when `signal` aborted it (a stop: the attempt does not
 * count). A body file that cannot be written rejects (`BodyFileError`): that is the machine's
 * failure, not the line's.
 */
export async function attemptOnce(
  session: Session,
  request: AttemptRequest,
  signal: AbortSignal,
  bodies: BodyStore,
): Promise<BatchAttempt | undefined> {
  const started = performance.now();
  let ttfbMs: number | undefined;
  let status: number | undefined;
  let response: DoggedResponse | undefined;
  try {
    response = await session.request(request.url, {
      method: request.method,
      ...(request.headers && { headers: request.headers }),
      ...(request.body !== undefined && { body: request.body }),
      signal,
    });
    ttfbMs = performance.now() - started;
    status = response.status;
    // A small body is read whole (one collection, no stream around it); any other as a stream,
    // without dogged's error-translating one: a failure is translated below.
    const received =
      bodies.readsWhole && isSmallPlainBody(response)
        ? bodies.hold(await response.bytes())
        : await bodies.receive(response.bodyStream());
    return new ResponseOutcome(response, received, ttfbMs, performance.now() - started);
  } catch (error) {
    // A stop cut the attempt off: whatever it was doing, it does not count.
    if (signal.aborted) return undefined;
    if (error instanceof BodyFileError) throw error;
    return {
      kind: 'error',
      // A stream's failure, as dogged's error (a cut body, a stall).
      error: response ? response.bodyError(error) : error,
      status,
      ttfbMs,
      durationMs: performance.now() - started,
    };
  }
}

/**
 * The body of a final response, stored as the line's (renamed into place, or kept for the
 * journal); the body of an attempt that will be retried is dropped. A body held in memory or
 * only counted is stored at once: the result is then no promise.
 */
export function keepIfFinal(
  result: BatchAttempt,
  isFinal: boolean,
  line: number,
): StoredBody | undefined | Promise<StoredBody | undefined> {
  if (result.kind !== 'response') return undefined;
  const received = result.received;
  if (received.keepNow) return isFinal ? received.keepNow() : undefined;
  if (isFinal) return received.keep(line);
  return received.discard().then(() => undefined);
}
