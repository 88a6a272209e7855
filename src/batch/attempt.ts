import { performance } from 'node:perf_hooks';
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
    return {
      kind: 'response',
      status: response.status,
      // WHATWG Headers cost a few microseconds to build: only when a decision needs them.
      get headers() {
        return response.headers;
      },
      rawHeaders: response.rawHeaders,
      body,
      ttfbMs,
      durationMs: performance.now() - started,
    };
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
