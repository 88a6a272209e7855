import type { IncomingHttpHeaders } from 'node:http';
import { PassThrough, pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import {
  brotliDecompressSync,
  createBrotliDecompress,
  createGunzip,
  createInflate,
  createInflateRaw,
  gunzipSync,
  inflateRawSync,
  inflateSync,
} from 'node:zlib';
import { brand } from '../retry/brand.js';
import { showValue } from '../retry/validate.js';
import { DoggedError, IncompleteBodyError } from './errors.js';
import { NO_CHUNKS } from './resume.js';

/** The `Accept-Encoding` a Session sends when the request sets none and `decompress` is on. */
export const DEFAULT_ACCEPT_ENCODING = 'gzip, deflate, br';

/** A content coding dogged decodes. */
export type Coding = 'gzip' | 'deflate' | 'br';

/**
 * The body could not be decoded: the server said `Content-Encoding: gzip` (or deflate, br) and
 * sent bytes that are not, or that stop before the compressed stream ends. A kind of
 * {@link IncompleteBodyError} (a truncated gzip is a cut body): retriable, retried like one.
 */
export class DecompressionError extends IncompleteBodyError {
  override name = 'DecompressionError';
  override readonly code: string = 'ERR_DOGGED_DECOMPRESSION';
  /** The coding that failed. */
  readonly coding: string | undefined;
  constructor(
    message: string,
    options: ConstructorParameters<typeof IncompleteBodyError>[1] & { coding?: string } = {},
  ) {
    super(message, options);
    this.coding = options.coding;
  }
}
brand(DecompressionError, 'DecompressionError');

/**
 * The codings to undo, in the order to undo them (the last one applied first), for a response's
 * `Content-Encoding`; `undefined` when there is nothing to decode: no header, only `identity`,
 * or a coding dogged does not know (then the body is handed over as it came, header included).
 */
export function codingsToUndo(
  method: string,
  status: number,
  headers: IncomingHttpHeaders,
): Coding[] | undefined {
  const value = headers['content-encoding'];
  if (value === undefined) return undefined;
  // No body to decode: HEAD, 1xx, 204, 304, or an announced empty one.
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) return undefined;
  if (headers['content-length'] !== undefined && /^\s*0+\s*$/.test(headers['content-length']))
    return undefined;
  const text = Array.isArray(value) ? value.join(',') : value;
  const codings: Coding[] = [];
  for (const part of text.split(',')) {
    const name = part.trim().toLowerCase();
    if (name === '' || name === 'identity') continue;
    if (name === 'gzip' || name === 'x-gzip') codings.push('gzip');
    else if (name === 'deflate') codings.push('deflate');
    else if (name === 'br') codings.push('br');
    else return undefined;
  }
  return codings.length ? codings.reverse() : undefined;
}

/** True when the first two bytes are a zlib header (RFC 1950): deflate as the RFC says it. */
function isZlibHeader(head: Buffer): boolean {
  const b0 = head[0] as number;
  const b1 = head[1] as number;
  return (b0 & 0x0f) === 8 && b0 >> 4 <= 7 && ((b0 << 8) | b1) % 31 === 0;
}

/**
 * `deflate` as servers send it: zlib-wrapped (RFC 9110), or raw deflate (what some servers and
 * old IIS send); the first two bytes decide.
 */
class DeflateDecoder extends Transform {
  #inner: Transform | undefined;
  #head: Buffer | undefined;

  #start(head: Buffer): Transform {
    const inner = isZlibHeader(head) ? createInflate() : createInflateRaw();
    inner.on('data', (chunk: Buffer) => this.push(chunk));
    inner.on('error', (error) => this.destroy(error));
    this.#inner = inner;
    return inner;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (!this.#inner) {
      const head: Buffer = this.#head ? Buffer.concat([this.#head, chunk]) : chunk;
      if (head.length < 2) {
        this.#head = head;
        callback();
        return;
      }
      this.#head = undefined;
      this.#start(head).write(head, () => callback());
      return;
    }
    this.#inner.write(chunk, () => callback());
  }

  override _flush(callback: TransformCallback): void {
    let inner = this.#inner;
    if (!inner && this.#head) {
      // A one-byte body: not a zlib stream; the raw inflater says what is wrong with it.
      inner = this.#start(this.#head);
      inner.write(this.#head);
      this.#head = undefined;
    }
    if (!inner) {
      callback();
      return;
    }
    inner.once('end', () => callback());
    inner.end();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#inner?.destroy();
    callback(error);
  }
}

function decoder(coding: Coding): Transform {
  if (coding === 'gzip') return createGunzip();
  if (coding === 'br') return createBrotliDecompress();
  return new DeflateDecoder();
}

/** Whose body it is, for the error message. */
export interface DecodeOwner {
  readonly method: string;
  readonly url: string;
  readonly attempts: number;
}

/**
 * `source` decoded, a zlib stream per coding. Backpressure holds: the decoded bytes are made as
 * the reader takes them, so a limit after this stream stops a decompression bomb after about the
 * limit. A failure of `source` comes out as it is; a failure of a decoder (bytes that are not
 * what `Content-Encoding` says, a compressed stream cut short) as a {@link DecompressionError}.
 * Destroying the returned stream destroys `source` (its connection is closed).
 */
export function decodedStream(source: Readable, codings: Coding[], owner: DecodeOwner): Readable {
  let upstreamFailed = false;
  source.once('error', () => {
    upstreamFailed = true;
  });
  const translate = (error: Error): Error => {
    if (upstreamFailed || error instanceof DoggedError) return error;
    return new DecompressionError(
      `the body of ${owner.method} ${owner.url} could not be decoded (Content-Encoding ${codings.slice().reverse().join(', ')}): ${error.message}`,
      {
        cause: error,
        method: owner.method,
        url: owner.url,
        attempts: owner.attempts,
        ...(codings.length === 1 && { coding: codings[0] }),
      },
    );
  };
  // The last stream of the pipeline, so that the pipeline waits for the decoders' end (a gzip
  // cut short fails only when its input ends); its destroy turns a decoder's failure into a
  // DecompressionError.
  const out = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      callback(null, chunk);
    },
    destroy(error, callback) {
      callback(error ? translate(error) : null);
    },
  });
  pipeline([source, ...codings.map(decoder), out], () => {});
  return out;
}

/** The smallest output buffer a one-call gunzip starts with (zlib's own floor is 64 bytes). */
const MIN_GUNZIP_CHUNK = 1024;

/**
 * `data` (gzip) decoded in one call, to at most `max` bytes (zlib throws past them). zlib
 * writes into buffers of its `chunkSize` (16 KiB by default), allocating another each time one
 * fills and joining them at the end: a body of 16 KiB took two buffers, one of 100 KiB seven
 * and a copy. The gzip trailer gives the size of its last
 * member (ISIZE, modulo 2^32), so the output gets one buffer of that size when it is the whole
 * body (one member, the common case). A trailer that says less than the output (more members,
 * past 4 GiB, bytes after the last member) only means more buffers, as before; one that says
 * more than `max`, zlib's default buffers; one that lies fails zlib's own check.
 */
function gunzipWhole(data: Buffer, max: number): Buffer {
  const last = data.length >= 18 ? data.readUInt32LE(data.length - 4) : max + 1;
  if (last >= max) return gunzipSync(data, { maxOutputLength: max });
  // One byte over the size: zlib ends with room left, and asks for no second buffer.
  return gunzipSync(data, {
    maxOutputLength: max,
    chunkSize: Math.max(MIN_GUNZIP_CHUNK, last + 1),
  });
}

/**
 * `data`, a whole body, decoded in one synchronous call per coding, or undefined when it does
 * not decode or would decode to more than `max` bytes (zlib stops there: no more is ever made).
 */
export function decodeWhole(data: Buffer, codings: Coding[], max: number): Buffer | undefined {
  let out = data;
  try {
    for (const coding of codings) {
      if (coding === 'gzip') out = gunzipWhole(out, max);
      else if (coding === 'br') out = brotliDecompressSync(out, { maxOutputLength: max });
      else if (out.length >= 2 && isZlibHeader(out))
        out = inflateSync(out, { maxOutputLength: max });
      else out = inflateRawSync(out, { maxOutputLength: max });
    }
    return out;
  } catch {
    return undefined;
  }
}

/**
 * A small body already read whole (a drained error response), decoded to at most `max` bytes;
 * the bytes as they are when they do not decode.
 */
export function decodeSmall(data: Buffer, codings: Coding[], max: number): Buffer {
  return decodeWhole(data, codings, max) ?? data;
}

/**
 * A body read whole is decoded in one call when all of it arrived within this many encoded
 * bytes...
 */
export const ONE_SHOT_ENCODED_BYTES = 64 * 1024;
/** ...and it decodes to at most this many bytes (about a millisecond of inflating, at most). */
export const ONE_SHOT_DECODED_BYTES = 1024 * 1024;

/**
 * Reads the first chunks of a body, until more than `max` bytes came (then pauses it and stops
 * listening) or its end, and hands them to `settle` with whether they are the whole body; or
 * hands a read error to `fail`. A class whose listeners are unnamed arrows: named closures are
 * each renamed per response under a keepNames transpiler (tsx, the bench), a defineProperty
 * apiece.
 *
 * Its chunks are not an array literal per body (see resume.ts's `NO_CHUNKS`). With one (an
 * array per encoded response, alive until its body is read), and the head's promise and its
 * reaction, processes reading gzip bodies ran more full collections (5–14 against mostly 2–7
 * over 10,000 requests and 3 s) and spent more CPU: 63.4 against 54.5 µs a request, medians of
 * 8 sample processes a side, alternating.
 */
class HeadReader {
  readonly chunks: Buffer[] = NO_CHUNKS.slice();
  #size = 0;
  readonly #source: Readable;
  readonly #max: number;
  readonly #settle: (chunks: Buffer[], ended: boolean) => void;
  readonly #fail: (error: Error) => void;
  // Assigned in the constructor, not declared with their value: a field's arrow is named
  // per instance by a keepNames transpiler.
  readonly #onData: (chunk: Buffer) => void;
  readonly #onError: (error: Error) => void;
  readonly #onEnd: () => void;

  constructor(
    source: Readable,
    max: number,
    settle: (chunks: Buffer[], ended: boolean) => void,
    fail: (error: Error) => void,
  ) {
    this.#source = source;
    this.#max = max;
    this.#settle = settle;
    this.#fail = fail;
    this.#onData = (chunk) => this.#data(chunk);
    this.#onError = (error) => this.#error(error);
    // The end leaves the listeners: nothing comes after it, and a late error stays heard.
    this.#onEnd = () => settle(this.chunks, true);
    source.on('data', this.#onData).on('error', this.#onError).on('end', this.#onEnd);
  }

  #data(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.#size += chunk.length;
    if (this.#size <= this.#max) return;
    // More than a small body: the rest is read by whoever takes the stream on.
    this.#source.pause();
    this.#stop();
    this.#settle(this.chunks, false);
  }

  #error(error: Error): void {
    this.#stop();
    this.#fail(error);
  }

  #stop(): void {
    this.#source.off('data', this.#onData).off('error', this.#onError).off('end', this.#onEnd);
  }
}

/** `head`, then the rest of `source`; destroying it destroys `source`. */
function prefixed(head: Buffer[], source: Readable): Readable {
  const out = new PassThrough();
  for (const chunk of head) out.write(chunk);
  pipeline(source, out, () => {});
  return out;
}

/**
 * `source`, an encoded body, read whole and decoded, handed to `done` (what it returns, or
 * throws, settles the promise), or the failure to read or decode it to `failed`. A streamed
 * body's decoded bytes are read by `read` (which enforces the caller's limit). A small body
 * (all of it within {@link ONE_SHOT_ENCODED_BYTES}, decoding to at most
 * {@link ONE_SHOT_DECODED_BYTES} and `limit`) is decoded in one synchronous call: for a few
 * KiB, setting up zlib streams and their thread-pool round trips cost several times the
 * inflating itself. Anything else, including a small body that does not decode or would pass
 * the limit, goes through {@link decodedStream} as the bytes arrived, so its failures are
 * exactly the stream's: a {@link DecompressionError}, the limit's error after about `limit`
 * decoded bytes, or `source`'s own error as it is.
 */
export function decodeWholeBody<T>(
  source: Readable,
  codings: Coding[],
  owner: DecodeOwner,
  limit: number,
  read: (decoded: Readable) => Promise<Buffer>,
  done: (data: Buffer) => T,
  failed: (error: unknown) => Promise<T>,
): Promise<T> {
  // One promise, settled from the reader's end: the common small body is decoded and handed to
  // `done` there, without a reaction in between.
  return new Promise<T>((resolve, reject) => {
    const streamed = (decoded: Readable): void => {
      resolve(read(decodedStream(decoded, codings, owner)).then(done, failed));
    };
    new HeadReader(
      source,
      ONE_SHOT_ENCODED_BYTES,
      (chunks, ended) => {
        if (!ended) return streamed(prefixed(chunks, source));
        const data = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
        const decoded = decodeWhole(data, codings, Math.min(limit, ONE_SHOT_DECODED_BYTES));
        if (!decoded) return streamed(Readable.from([data], { objectMode: false }));
        try {
          resolve(done(decoded));
        } catch (error) {
          reject(error);
        }
      },
      (error) => resolve(failed(error)),
    );
  });
}

/** Checks a `decompress` option. */
export function checkDecompress(where: string, value: unknown): boolean {
  if (typeof value !== 'boolean')
    throw new TypeError(`${where} must be true or false, got ${showValue(value)}`);
  return value;
}

/** `headers` without the Accept-Encoding dogged added (a request with `decompress: false`). */
export function withoutAcceptEncoding<T extends Record<string, unknown>>(headers: T): T {
  const copy = { ...headers };
  delete copy['accept-encoding'];
  return copy;
}
