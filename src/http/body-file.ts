import { randomBytes } from 'node:crypto';
import { constants, createWriteStream } from 'node:fs';
import { open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline, type Readable, type Writable } from 'node:stream';
import { brand } from '../retry/brand.js';
import { truncate } from '../retry/describe.js';
import { DoggedError } from './errors.js';

/**
 * A response body could not be written to its file (no space left, no permission, a directory
 * in the way...). Not the server's doing: the body was fine.
 */
export class BodyFileError extends DoggedError {
  override name = 'BodyFileError';
  override readonly code: string = 'ERR_DOGGED_BODY_FILE';
  /** The file dogged was writing. */
  readonly path: string;
  constructor(message: string, options: { path: string; cause?: unknown }) {
    super(message, { phase: 'none', cause: options.cause });
    this.path = options.path;
  }
}
brand(BodyFileError, 'BodyFileError');

/** A body written to a temporary file, waiting to be renamed into place or dropped. */
export interface FileSink {
  /** Bytes written. */
  readonly size: number;
  /** Renames the file to `path` (replacing what is there; a symlink is replaced, not followed). */
  commit(path: string): Promise<void>;
  /** Removes the temporary file. */
  discard(): Promise<void>;
}

/**
 * Flags of a temporary file: created exclusively (it must not exist: a name planted in advance
 * fails the open instead of being written through), and never through a symlink.
 */
const TEMP_FLAGS =
  constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | (constants.O_NOFOLLOW ?? 0);

function describePath(path: string): string {
  return JSON.stringify(truncate(path, 300));
}

function fileError(what: string, path: string, cause: unknown): BodyFileError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new BodyFileError(`could not ${what} ${describePath(path)}: ${truncate(reason, 300)}`, {
    path,
    cause,
  });
}

async function removeQuietly(path: string): Promise<void> {
  await unlink(path).catch(() => {});
}

/**
 * Pipes `body` into `file`; resolves with the bytes written. A failure of the file rejects with
 * a {@link BodyFileError}; a failure of the body (cut, limit passed) with the body's error.
 */
async function pipeInto(body: Readable, file: Writable, path: string): Promise<number> {
  let size = 0;
  let writeFailed: unknown;
  file.once('error', (error) => {
    writeFailed ??= error;
  });
  body.on('data', (chunk: Buffer) => {
    size += chunk.length;
  });
  try {
    await new Promise<void>((resolve, reject) => {
      pipeline(body, file, (error) => (error ? reject(error) : resolve()));
    });
  } catch (error) {
    throw writeFailed !== undefined ? fileError('write', path, writeFailed) : error;
  }
  return size;
}

/**
 * Streams `body` into a new file of `dir`: a unique random name (`.<prefix>.<16 hex>.tmp`),
 * created exclusively with mode 0600 and `O_NOFOLLOW`, so neither another user nor a symlink
 * planted at a predictable name can capture or redirect the bytes. Resolves once the body is
 * written whole; on any failure the temporary file is removed, and the error is the body's (a
 * cut, a limit passed) or a {@link BodyFileError} for the file.
 */
export async function writeThroughTemp(
  dir: string,
  body: Readable,
  prefix = 'dogged-body',
): Promise<FileSink> {
  const temp = join(dir, `.${prefix.slice(0, 100)}.${randomBytes(8).toString('hex')}.tmp`);
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(temp, TEMP_FLAGS, 0o600);
  } catch (error) {
    body.on('error', () => {}).destroy();
    throw fileError('create the temporary file', temp, error);
  }
  let size: number;
  try {
    size = await pipeInto(body, handle.createWriteStream(), temp);
  } catch (error) {
    await removeQuietly(temp);
    throw error;
  }
  return {
    size,
    async commit(path) {
      try {
        await rename(temp, path);
      } catch (error) {
        await removeQuietly(temp);
        throw fileError('move the body into', path, error);
      }
    },
    discard: () => removeQuietly(temp),
  };
}

/**
 * Streams `body` to `path` through a temporary file next to it (see {@link writeThroughTemp}),
 * renamed over `path` once the body is whole: `path` never holds half a body, and ends up a new
 * file of mode 0600.
 */
export async function writeBodyFile(path: string, body: Readable): Promise<number> {
  const sink = await writeThroughTemp(dirname(path), body, basename(path));
  await sink.commit(path);
  return sink.size;
}

/**
 * When `path` is an existing device, pipe or socket (`-o /dev/null`, a FIFO), streams `body`
 * into it as it is (there is nothing to rename over) and resolves true; false for anything else,
 * which {@link writeBodyFile} handles.
 */
export async function writeToSpecialFile(path: string, body: Readable): Promise<boolean> {
  const stats = await stat(path).catch(() => undefined);
  if (!stats || stats.isFile() || stats.isDirectory()) return false;
  await pipeInto(body, createWriteStream(path, { flags: 'w' }), path);
  return true;
}
