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

/** Lines handed over at once, at most, from an iterable of lines (see {@link readLineChunks}). */
const CHUNK_LINES = 200;

/** The lines of one item of an iterable input: it may hold several, split like a file's. */
function pushLines(chunk: string[], line: string): void {
  if (line.includes('\n')) {
    for (const part of line.replace(/\r?\n$/, '').split(/\r?\n/)) chunk.push(part);
  } else {
    chunk.push(line);
  }
}

/**
 * The input's lines (never all in memory), without their line ends, a few at a time: up to 200
 * lines of an iterable that is not async (read at once: it has them), otherwise each line as it
 * comes. One promise per chunk instead of one per line. Line numbers are the position in the
 * sequence of lines, from 1.
 */
export async function* readLineChunks(
  input: BatchInput,
  signal?: AbortSignal,
): AsyncGenerator<readonly string[]> {
  if (signal?.aborted) return;
  if (typeof input === 'string' || isReadable(input)) {
    const reader = openLines(input, signal);
    try {
      for await (const line of reader.lines) {
        if (signal?.aborted) break;
        yield [line];
      }
    } finally {
      reader.close();
    }
    return;
  }
  if (
    typeof (input as Partial<AsyncIterable<string>>)[Symbol.asyncIterator] !== 'function' &&
    typeof (input as Partial<Iterable<string>>)[Symbol.iterator] === 'function'
  ) {
    const lines = (input as Iterable<string>)[Symbol.iterator]();
    let done = false;
    try {
      while (!done) {
        if (signal?.aborted) return;
        const chunk: string[] = [];
        while (chunk.length < CHUNK_LINES) {
          const next = lines.next();
          if (next.done) {
            done = true;
            break;
          }
          pushLines(chunk, next.value);
        }
        if (chunk.length > 0) yield chunk;
      }
    } finally {
      // Left early (a stop, a failure): the iterable is closed, as a for...of loop closes it.
      if (!done) lines.return?.();
    }
    return;
  }
  for await (const line of input as AsyncIterable<string>) {
    if (signal?.aborted) return;
    const chunk: string[] = [];
    pushLines(chunk, line);
    yield chunk;
  }
}

/**
 * The lines of a file, stdin or a stream, one at a time; `close` releases the reader (and the
 * file it opened). A stop closes the reader: a stdin that never ends does not hold it up.
 */
function openLines(
  input: string | Readable,
  signal: AbortSignal | undefined,
): { lines: AsyncIterable<string>; close: () => void } {
  const stream =
    typeof input === 'string'
      ? input === '-'
        ? process.stdin
        : createReadStream(input, { encoding: 'utf8' })
      : input;
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  const stop = (): void => lines.close();
  signal?.addEventListener('abort', stop, { once: true });
  return {
    lines,
    close: () => {
      signal?.removeEventListener('abort', stop);
      lines.close();
      if (typeof input === 'string' && input !== '-') (stream as Readable).destroy();
    },
  };
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
