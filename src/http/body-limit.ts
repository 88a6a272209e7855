import type { IncomingHttpHeaders } from 'node:http';
import { type Readable, Transform } from 'node:stream';
import { showValue } from '../retry/validate.js';
import { BodyTooLargeError } from './errors.js';

/**
 * The limit of a body read whole (`text()`, `json()`, `arrayBuffer()`, `bytes()`) when
 * `maxBodySize` is not set: 100 MiB. A body read as a stream has no limit unless one is set.
 */
export const DEFAULT_MAX_BODY_SIZE = 100 * 1024 * 1024;

/** Whose body it is, for the error message. */
export interface BodyOwner {
  readonly method: string;
  readonly url: string;
  readonly attempts: number;
}

/** Checks a `maxBodySize` option: a positive whole number of bytes, or `Infinity` (no limit). */
export function checkMaxBodySize(where: string, value: unknown): number {
  if (
    typeof value !== 'number' ||
    !(value > 0) ||
    (Number.isFinite(value) && !Number.isInteger(value))
  )
    throw new TypeError(
      `${where} must be a positive whole number of bytes (or Infinity for no limit), got ${showValue(value)}`,
    );
  return value;
}

/** The Content-Length of a response, when it has a valid one. */
export function contentLengthOf(headers: IncomingHttpHeaders): number | undefined {
  const value = headers['content-length'];
  if (value === undefined || !/^\s*\d+\s*$/.test(value)) return undefined;
  return Number(value);
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${n.toLocaleString('en-US')} bytes (${value.toFixed(1).replace(/\.0$/, '')} ${units[unit]})`;
}

/**
 * The error for a body over `limit`: announced by its Content-Length (`received` 0), or found
 * while reading (`received` bytes when reading stopped).
 */
export function bodyTooLarge(
  owner: BodyOwner,
  limit: number,
  received: number,
  contentLength: number | undefined,
): BodyTooLargeError {
  const what =
    received === 0 && contentLength !== undefined
      ? `announces ${formatBytes(contentLength)} (Content-Length)`
      : `passed ${formatBytes(received)} before reading stopped`;
  return new BodyTooLargeError(
    `the body of ${owner.method} ${owner.url} ${what}: over the limit of ${formatBytes(limit)} (maxBodySize, --max-body)`,
    {
      method: owner.method,
      url: owner.url,
      attempts: owner.attempts,
      limit,
      received,
      ...(contentLength !== undefined && { contentLength }),
    },
  );
}

/** What a stream that ended without its end reads as (Node's own code for it). */
function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/**
 * `source` with a limit: once more than `limit` bytes have passed, the returned stream fails
 * with the error `tooLarge` makes, and `source` is destroyed (its connection closed). At most
 * one chunk beyond the limit is ever held. An error of `source` fails the returned stream with
 * it, a `source` closed before its end fails it as a premature close, and a returned stream
 * destroyed by its reader destroys `source`.
 *
 * Wired by hand rather than with `stream.pipeline`: pipeline's bookkeeping (an AbortController
 * aborted on every finish, whose DOMException captures a stack, and end-of-stream watchers on
 * both sides) cost more than the rest of a small body's read.
 */
export function limitedStream(
  source: Readable,
  limit: number,
  tooLarge: (received: number) => Error,
): Readable {
  let received = 0;
  const out = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      if (received > limit) callback(tooLarge(received));
      else callback(null, chunk);
    },
  });
  const fail = (error: Error): void => {
    if (!out.destroyed) out.destroy(error);
  };
  // Every error of the source is handled (a second one must not go unheard).
  source.on('error', fail);
  source.on('close', () => {
    if (!source.readableEnded) fail(source.errored ?? prematureClose());
  });
  // The source goes as soon as the reader's side fails (the limit passed: no byte more is
  // fetched), or is closed by its reader.
  const stop = (): void => {
    if (!source.destroyed) source.destroy();
  };
  out.on('error', stop);
  out.on('close', stop);
  if (source.destroyed) {
    // Already over before it was handed in: its close was heard by nobody.
    process.nextTick(() => {
      if (!source.readableEnded) fail(source.errored ?? prematureClose());
    });
  }
  source.pipe(out);
  return out;
}
