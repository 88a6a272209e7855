import { showValue } from '../retry/validate.js';
import {
  ConnectionResetError,
  type DoggedError,
  IncompleteBodyError,
  type RequestPhase,
} from './errors.js';

/** Checks the `http2` option. */
export function checkHttp2(where: string, value: unknown): boolean {
  if (typeof value !== 'boolean')
    throw new TypeError(`${where} must be true or false, got ${showValue(value)}`);
  return value;
}

/** What classifying a failure knows about the attempt. */
interface Http2FailureContext {
  method?: string | undefined;
  url?: string | undefined;
  attempts?: number | undefined;
  phase?: RequestPhase | undefined;
}

/**
 * An HTTP/2 stream failure in dogged's taxonomy, or undefined when `error` is not one. A stream
 * the server refused (`REFUSED_STREAM`: RFC 9113 says it processed nothing) is safe to retry for
 * every method, as a connection that was never made: a `ConnectionResetError` of the `connect`
 * phase. Any other stream reset is its HTTP/1.1 counterpart: a connection reset before the
 * response, or a body cut short after it began.
 */
export function classifyHttp2(
  error: unknown,
  context: Http2FailureContext,
): DoggedError | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== 'ERR_HTTP2_STREAM_ERROR') return undefined;
  const message = error instanceof Error ? error.message : String(error);
  const base = {
    cause: error,
    ...(context.method !== undefined && { method: context.method }),
    ...(context.url !== undefined && { url: context.url }),
    ...(context.attempts !== undefined && { attempts: context.attempts }),
  };
  if (/REFUSED_STREAM/.test(message))
    return new ConnectionResetError(
      `the server refused the HTTP/2 stream before processing it (REFUSED_STREAM): ${message}`,
      { ...base, phase: 'connect' },
    );
  if (context.phase === 'body')
    return new IncompleteBodyError(`the HTTP/2 stream was reset mid-body: ${message}`, base);
  return new ConnectionResetError(`the HTTP/2 stream was reset: ${message}`, base);
}
