import { performance } from 'node:perf_hooks';
import type { DoggedResponse } from '../http/response.js';
import type { Session } from '../http/session.js';
import type { AttemptResult } from './decide.js';

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
class ResponseOutcome {
  readonly kind = 'response';
  readonly status: number;
  readonly rawHeaders: DoggedResponse['rawHeaders'];
  readonly body: Buffer;
  readonly ttfbMs: number;
  readonly durationMs: number;
  readonly #response: DoggedResponse;

  constructor(response: DoggedResponse, body: Buffer, ttfbMs: number, durationMs: number) {
    this.#response = response;
    this.status = response.status;
    this.rawHeaders = response.rawHeaders;
    this.body = body;
    this.ttfbMs = ttfbMs;
    this.durationMs = durationMs;
  }

  /** WHATWG Headers cost a few microseconds to build: only when a decision needs them. */
  get headers(): Headers {
    return this.#response.headers;
  }
}

/**
 * Sends exactly one request (the Session must have retries off: the journal schedules retries)
 * and reads the whole body, so a body cut short counts as a failed attempt. Resolves with the
 * outcome, or `undefined` when `signal` aborted it (a stop: the attempt does not count).
 */
export async function attemptOnce(
  session: Session,
  request: AttemptRequest,
  signal: AbortSignal,
): Promise<AttemptResult | undefined> {
  const started = performance.now();
  let ttfbMs: number | undefined;
  let status: number | undefined;
  try {
    const response = await session.request(request.url, {
      method: request.method,
      ...(request.headers && { headers: request.headers }),
      ...(request.body !== undefined && { body: request.body }),
      signal,
    });
    ttfbMs = performance.now() - started;
    status = response.status;
    const body = await response.bytes();
    return new ResponseOutcome(response, body, ttfbMs, performance.now() - started);
  } catch (error) {
    // A stop cut the attempt off: whatever it was doing, it does not count.
    if (signal.aborted) return undefined;
    return {
      kind: 'error',
      error,
      status,
      ttfbMs,
      durationMs: performance.now() - started,
    };
  }
}
