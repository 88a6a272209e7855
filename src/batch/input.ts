import { accessSync, constants, createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { InputUnreadableError } from './errors.js';

/**
 * Where a batch's lines come from: a file path, `'-'` for stdin, a readable stream, or any
 * (async) iterable of lines.
 */
export type BatchInput = string | Readable | Iterable<string> | AsyncIterable<string>;

function isReadable(value: unknown): value is Readable {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Readable).pipe === 'function' &&
    typeof (value as Readable).on === 'function'
  );
}

/** A human name for the input, for the journal's meta and messages. */
export function describeInput(input: BatchInput): string {
  if (typeof input === 'string') return input === '-' ? 'stdin' : input;
  return isReadable(input) ? 'a stream' : 'an iterable';
}

/**
 * The input's lines, one at a time (never all in memory), without their line ends. Line
 * numbers are the position in this sequence, from 1.
 */
export async function* readLines(input: BatchInput, signal?: AbortSignal): AsyncGenerator<string> {
  if (signal?.aborted) return;
  if (typeof input === 'string' || isReadable(input)) {
    const stream =
      typeof input === 'string'
        ? input === '-'
          ? process.stdin
          : createReadStream(input, { encoding: 'utf8' })
        : input;
    const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
    // A stop must not wait for a stdin that never ends: closing the reader ends the loop.
    const stop = (): void => lines.close();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      for await (const line of lines) {
        if (signal?.aborted) break;
        yield line;
      }
    } finally {
      signal?.removeEventListener('abort', stop);
      lines.close();
      if (typeof input === 'string' && input !== '-') (stream as Readable).destroy();
    }
    return;
  }
  for await (const line of input as AsyncIterable<string>) {
    if (signal?.aborted) return;
    // An iterable may hand over several lines at once; split them like a file.
    if (line.includes('\n')) {
      for (const part of line.replace(/\r?\n$/, '').split(/\r?\n/)) yield part;
    } else {
      yield line;
    }
  }
}

/**
 * Throws an {@link InputUnreadableError} when `input` is a path (not `-`) that cannot be read:
 * missing, a directory, or not readable by this user. Checked without opening it (a named pipe
 * would block until its writer comes), before anything else is created.
 */
export function checkInputReadable(input: BatchInput): void {
  if (typeof input !== 'string' || input === '-') return;
  let isDirectory: boolean;
  try {
    isDirectory = statSync(input).isDirectory();
    accessSync(input, constants.R_OK);
  } catch (error) {
    throw new InputUnreadableError(input, reasonOf(error), { cause: error });
  }
  if (isDirectory) throw new InputUnreadableError(input, 'it is a directory');
}

/** A file-system error in a few words: no such file, permission denied... */
export function reasonOf(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    default:
      return e.message;
  }
}
