import { Readable } from 'node:stream';
import { showValue } from '../retry/validate.js';

/** What a request body may be. A function returning a body makes a stream replayable. */
export type RequestBody =
  | string
  | Uint8Array
  | ArrayBuffer
  | URLSearchParams
  | FormData
  | Blob
  | Readable
  | AsyncIterable<Uint8Array | string>
  | (() => string | Uint8Array | Readable | AsyncIterable<Uint8Array | string>);

/** What undici accepts. */
export type DispatchBody = string | Uint8Array | Readable | FormData | null;

/** A body ready to send, once per attempt. */
export interface PreparedBody {
  /** The body for the next attempt. */
  next(): DispatchBody;
  /** Can it be sent again after an attempt that may have read it? */
  readonly replayable: boolean;
  /** Has an attempt started reading it (only meaningful when not replayable)? */
  consumed(): boolean;
  /** A content-type to send when the caller set none. */
  readonly contentType: string | undefined;
}

/** No body: nothing to send, always replayable. */
export const NO_BODY: PreparedBody = Object.freeze({
  next: () => null,
  replayable: true,
  consumed: () => false,
  contentType: undefined,
});

function isAsyncIterable(value: unknown): value is AsyncIterable<Uint8Array | string> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
  );
}

function fixed(body: DispatchBody, contentType: string | undefined): PreparedBody {
  return { next: () => body, replayable: true, consumed: () => false, contentType };
}

function fromStream(value: Readable | AsyncIterable<Uint8Array | string>): DispatchBody {
  return value instanceof Readable ? value : Readable.from(value);
}

/**
 * Normalises `body` / `json` once per logical request. Buffers and strings are replayable;
 * a stream is sent once (a retry that would need it again fails clearly); a function is called
 * for every attempt, so it can return a fresh stream.
 */
export async function prepareBody(
  body: RequestBody | undefined,
  json: unknown,
  hasJson: boolean,
  where: string,
): Promise<PreparedBody> {
  if (hasJson) {
    if (body !== undefined) throw new TypeError(`${where}: give either body or json, not both`);
    const text = JSON.stringify(json);
    if (text === undefined)
      throw new TypeError(`${where}: json must be JSON-serialisable, got ${showValue(json)}`);
    return fixed(text, 'application/json');
  }
  if (body === undefined || body === null) return NO_BODY;
  if (typeof body === 'string') return fixed(body, 'text/plain;charset=UTF-8');
  if (body instanceof Uint8Array) return fixed(body, undefined);
  if (body instanceof ArrayBuffer) return fixed(new Uint8Array(body), undefined);
  if (body instanceof URLSearchParams)
    return fixed(body.toString(), 'application/x-www-form-urlencoded;charset=UTF-8');
  if (body instanceof FormData) return fixed(body, undefined);
  if (body instanceof Blob)
    return fixed(new Uint8Array(await body.arrayBuffer()), body.type || undefined);
  if (typeof body === 'function') {
    return {
      next: () => {
        const fresh = body();
        if (typeof fresh === 'string' || fresh instanceof Uint8Array) return fresh;
        if (fresh instanceof Readable || isAsyncIterable(fresh)) return fromStream(fresh);
        throw new TypeError(
          `${where}: the body function must return a string, a Uint8Array or a stream, got ${showValue(fresh)}`,
        );
      },
      replayable: true,
      consumed: () => false,
      contentType: undefined,
    };
  }
  if (body instanceof Readable || isAsyncIterable(body)) {
    const stream = fromStream(body) as Readable;
    let sent = false;
    return {
      next: () => {
        sent = true;
        return stream;
      },
      replayable: false,
      consumed: () => sent && (stream.readableDidRead || stream.destroyed || stream.readableEnded),
      contentType: undefined,
    };
  }
  throw new TypeError(
    `${where}: body must be a string, Uint8Array, ArrayBuffer, URLSearchParams, FormData, Blob, stream or a function returning one, got ${showValue(body)}`,
  );
}
