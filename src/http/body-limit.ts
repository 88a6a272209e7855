import type { IncomingHttpHeaders } from 'node:http';
import { pipeline, type Readable, Transform } from 'node:stream';
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

/**
 * `source` with a limit: once more than `limit` bytes have passed, the returned stream fails
 * with the error `tooLarge` makes, and `source` is destroyed (its connection closed). At most
 * one chunk beyond the limit is ever held.
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
  // The error reaches the reader through `out`; pipeline destroys whichever side is left.
  pipeline(source, out, () => {});
  return out;
}
