import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { IncompleteBodyError } from './errors.js';

/** What a response offers for resuming its body with a Range request. */
export interface Validators {
  /** A strong ETag (weak ones do not promise identical bytes). */
  readonly etag: string | undefined;
  readonly lastModified: string | undefined;
  /** The server accepts Range requests (`Accept-Ranges: bytes`); else a cut restarts from 0. */
  readonly ranges: boolean;
}

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * A GET answered 200 with a strong ETag or a Last-Modified can be continued after a cut: resumed
 * with a Range request when the server sends `Accept-Ranges: bytes`, else fetched again from 0
 * and checked to be the same bytes (same validator) before the delivered part is skipped.
 */
export function resumeValidators(
  method: string,
  status: number,
  headers: IncomingHttpHeaders,
): Validators | undefined {
  if (method !== 'GET' || status !== 200) return undefined;
  const rawEtag = one(headers.etag);
  const etag = rawEtag && !rawEtag.startsWith('W/') ? rawEtag : undefined;
  const lastModified = one(headers['last-modified']);
  if (!etag && !lastModified) return undefined;
  const ranges = one(headers['accept-ranges'])?.toLowerCase() === 'bytes';
  return { etag, lastModified, ranges };
}

/** The first byte position of a `Content-Range: bytes a-b/n` header, if well-formed. */
export function contentRangeStart(value: string | null | undefined): number | undefined {
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value ?? '');
  return m ? Number(m[1]) : undefined;
}

/**
 * An empty list to copy (`slice()`) for a read's chunks: an array literal per read would be an
 * allocation site V8 tracks (see attempt-deadline.ts's `noListeners`, and decompress.ts's
 * `HeadReader` for what it cost gzip bodies).
 */
export const NO_CHUNKS: readonly Buffer[] = Object.freeze([]);

/**
 * Reads a stream to the end. With a `limit`, reading stops as soon as more than `limit` bytes
 * arrived: the stream is destroyed with the error `tooLarge` makes (so at most one chunk beyond
 * the limit is held).
 */
export function collect(
  body: Readable,
  limit = Number.POSITIVE_INFINITY,
  tooLarge: (received: number) => Error = () => new RangeError(`more than ${limit} bytes`),
): Promise<Buffer> {
  return readWhole(body, limit, tooLarge, same, rethrow);
}

function same(data: Buffer): Buffer {
  return data;
}

function rethrow(error: unknown): Promise<never> {
  return Promise.reject(error);
}

/**
 * Reads `body` to the end into one promise: it settles as `done` makes of the bytes (a throw
 * rejects it), or, when reading fails, as `failed` makes of the error and the chunks that
 * arrived. Past `limit` bytes, the body is destroyed with the error `tooLarge` makes, which
 * goes to `failed`. One promise, and no array for a body that arrives in one chunk (the common
 * small body).
 */
export function readWhole<T>(
  body: Readable,
  limit: number,
  tooLarge: (received: number) => Error,
  done: (data: Buffer) => T,
  failed: (error: unknown, partial: Buffer[]) => Promise<T>,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let size = 0;
    let first: Buffer | undefined;
    let rest: Buffer[] | undefined;
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        body.destroy(tooLarge(size));
        return;
      }
      if (first === undefined) first = chunk;
      else if (rest === undefined) {
        rest = NO_CHUNKS.slice();
        rest.push(first, chunk);
      } else rest.push(chunk);
    });
    // `on`, not `once`: each fires once here, and `once` wraps every listener.
    body.on('end', () => {
      try {
        resolve(done(rest ? Buffer.concat(rest, size) : (first ?? Buffer.alloc(0))));
      } catch (error) {
        reject(error);
      }
    });
    body.on('error', (error: unknown) => {
      const partial = rest ?? NO_CHUNKS.slice();
      if (rest === undefined && first !== undefined) partial.push(first);
      resolve(failed(error, partial));
    });
  });
}

export function byteLength(chunks: readonly Buffer[]): number {
  let n = 0;
  for (const c of chunks) n += c.length;
  return n;
}

/** A stream that drops its first `skip` bytes: a restarted download's already-delivered part. */
export function skipping(source: Readable, skip: number): Readable {
  let left = skip;
  const out = new Readable({
    read() {
      source.resume();
    },
    destroy(error, callback) {
      source.destroy();
      callback(error);
    },
  });
  source.on('data', (chunk: Buffer) => {
    if (left >= chunk.length) {
      left -= chunk.length;
      return;
    }
    const rest = left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
    if (!out.push(rest)) source.pause();
  });
  source.once('end', () => {
    if (left > 0)
      out.destroy(
        new IncompleteBodyError(
          `the restarted download ended before the ${skip} bytes already delivered`,
        ),
      );
    else out.push(null);
  });
  source.once('error', (error) => out.destroy(error));
  return out;
}

/**
 * A body stream that survives cuts: when the current source fails, `continueFrom(error,
 * delivered)` returns a stream of the bytes from `delivered` on (a resumed Range response, or a
 * restarted one with the delivered part skipped), or throws the final error.
 */
export function resumingStream(
  first: Readable,
  continueFrom: (error: unknown, delivered: number) => Promise<Readable>,
): Readable {
  let delivered = 0;
  let source: Readable = first;
  const out = new Readable({
    read() {
      source.resume();
    },
    destroy(error, callback) {
      source.destroy();
      callback(error);
    },
  });
  const attach = (src: Readable): void => {
    source = src;
    src.on('data', (chunk: Buffer) => {
      delivered += chunk.length;
      if (!out.push(chunk)) src.pause();
    });
    src.once('end', () => out.push(null));
    src.once('error', (error) => {
      src.removeAllListeners('data');
      continueFrom(error, delivered).then(attach, (final: unknown) => out.destroy(final as Error));
    });
  };
  attach(first);
  return out;
}
