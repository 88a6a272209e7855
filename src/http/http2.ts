import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { type Dispatcher, errors } from 'undici';
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

/** Statuses whose responses never carry a body, whatever their Content-Length says. */
const NO_BODY = new Set([204, 304]);

/** The Content-Length of `headers` as a number, or undefined when there is no valid one. */
function declaredLength(headers: Record<string, unknown>): number | undefined {
  const value = headers['content-length'];
  return typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : undefined;
}

/**
 * Passes every callback on, but ends a response whose body stopped short of its Content-Length
 * with undici's own `ResponseContentLengthMismatchError` instead of a normal end.
 */
class DeclaredLengthHandler implements Dispatcher.DispatchHandler {
  readonly #handler: Dispatcher.DispatchHandler;
  readonly #head: boolean;
  #declared: number | undefined;
  #received = 0;

  constructor(handler: Dispatcher.DispatchHandler, method: string) {
    this.#handler = handler;
    this.#head = method.toUpperCase() === 'HEAD';
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.#handler.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    socket: Duplex,
  ): void {
    this.#handler.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    this.#declared =
      this.#head || statusCode < 200 || NO_BODY.has(statusCode)
        ? undefined
        : declaredLength(headers);
    this.#received = 0;
    this.#handler.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#received += chunk.length;
    this.#handler.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    const declared = this.#declared;
    if (declared !== undefined && this.#received < declared) {
      this.#handler.onResponseError?.(
        controller,
        new errors.ResponseContentLengthMismatchError(
          `the HTTP/2 stream ended after ${this.#received} of the ${declared} bytes its Content-Length announced (reset mid-body)`,
        ),
      );
      return;
    }
    this.#handler.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    this.#handler.onResponseError?.(controller, error);
  }
}

/**
 * An undici interceptor for HTTP/2 connections: a body that ends before its Content-Length
 * is a cut body (`UND_ERR_RES_CONTENT_LENGTH_MISMATCH`, an `IncompleteBodyError`), never a
 * short success. undici checks the length over HTTP/1.1 but, over HTTP/2, may take the end of
 * a stream the server reset mid-body (RST_STREAM, as nginx does when its upstream goes away)
 * for a normal end: the reset's error can arrive after the stream's end of data.
 */
export const declaredLengthInterceptor: Dispatcher.DispatcherComposeInterceptor =
  (dispatch) => (options, handler) =>
    dispatch(options, new DeclaredLengthHandler(handler, options.method));
