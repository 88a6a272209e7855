import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebStream } from 'node:stream/web';
import type { RequestBody } from './body.js';
import { DoggedError } from './errors.js';
import type { HeadersLike } from './headers.js';
import type { DoggedResponse } from './response.js';
import type { RequestOptions } from './session.js';

/** Statuses whose responses never have a body (the Response constructor refuses one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** What `fetch(input, init)` means, as Session request options. */
export interface FetchCall {
  url: string;
  options: RequestOptions;
  redirect: 'follow' | 'manual' | 'error';
}

function bodyFrom(value: unknown): RequestBody | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string' || value instanceof Uint8Array || value instanceof ArrayBuffer)
    return value;
  if (ArrayBuffer.isView(value))
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof URLSearchParams || value instanceof FormData || value instanceof Blob)
    return value;
  if (value instanceof ReadableStream) return Readable.fromWeb(value as NodeWebStream<Uint8Array>);
  if (value instanceof Readable) return value;
  throw new TypeError(`fetch: unsupported body type ${Object.prototype.toString.call(value)}`);
}

/**
 * Translates WHATWG `fetch` arguments. A `Request`'s body is read into memory once, so it can be
 * sent again on every retry.
 */
export async function fromFetchArguments(
  input: string | URL | Request,
  init: RequestInit = {},
): Promise<FetchCall> {
  let url: string;
  let method = init.method;
  let headers: HeadersLike | undefined = init.headers as HeadersLike | undefined;
  let body: RequestBody | undefined = bodyFrom(init.body);
  let signal = init.signal ?? undefined;
  let redirect = init.redirect;
  if (input instanceof Request) {
    url = input.url;
    method ??= input.method;
    if (init.headers === undefined) headers = input.headers;
    signal ??= input.signal;
    redirect ??= input.redirect;
    if (init.body === undefined && input.body !== null)
      body = new Uint8Array(await input.arrayBuffer());
  } else {
    url = String(input);
  }
  const options: RequestOptions = { method: method ?? 'GET' };
  if (headers !== undefined) options.headers = headers;
  if (body !== undefined) options.body = body;
  if (signal) options.signal = signal;
  return { url, options, redirect: redirect ?? 'follow' };
}

/** A WHATWG `Response` over a dogged response (its body streamed, not buffered). */
export function toFetchResponse(response: DoggedResponse): Response {
  const hasBody = !NULL_BODY.has(response.status) && response.method !== 'HEAD';
  let body: ReadableStream<Uint8Array> | null = null;
  if (hasBody) body = Readable.toWeb(response.body) as unknown as ReadableStream<Uint8Array>;
  else response.body.resume();
  const status = response.status;
  // The Response constructor only takes 200–599; informational codes never reach here.
  const result = new Response(body, {
    status,
    statusText: response.statusText,
    headers: response.headers,
  });
  Object.defineProperties(result, {
    url: { value: response.url },
    redirected: { value: response.history.some((h) => h.redirectLocation !== undefined) },
  });
  return result;
}

/** fetch reports network failures as `TypeError: fetch failed` with the real error as cause. */
export function toFetchError(error: unknown): unknown {
  if (error instanceof DoggedError) return new TypeError('fetch failed', { cause: error });
  return error;
}
