/**
 * Why a journal cannot be opened, in words that name the file and the reason, and the read-only
 * fallback for a journal in a directory nobody may write to.
 *
 * A journal is a SQLite database in WAL mode. Reading it takes its shared-memory index (`-shm`),
 * which SQLite creates next to the file when it is missing: in a read-only directory that is
 * possible only if the `-shm` and `-wal` files are already there and readable.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/** A journal up to this size is read into memory when its directory cannot hold a `-shm`. */
export const MAX_IN_MEMORY_COPY = 1024 ** 3;

function can(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}

function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined;
  }
}

/** `mode 0600, owned by uid 0; you are uid 1000`. */
function modeAndOwner(path: string): string {
  try {
    const s = statSync(path);
    const you = typeof process.getuid === 'function' ? `; you are uid ${process.getuid()}` : '';
    return `mode 0${(s.mode & 0o777).toString(8)}, owned by uid ${s.uid}${you}`;
  } catch {
    return 'its mode unknown';
  }
}

/** True for the errors that mean "the file system said no" rather than "not a journal". */
export function isAccessError(error: unknown): boolean {
  const code = String((error as { code?: unknown } | undefined)?.code ?? '');
  return (
    code === 'EACCES' ||
    code === 'EPERM' ||
    code === 'EROFS' ||
    code.startsWith('SQLITE_CANTOPEN') ||
    code.startsWith('SQLITE_READONLY') ||
    code.startsWith('SQLITE_PERM')
  );
}

/**
 * The reason a journal at `path` cannot be opened (for reading only or not), found by looking at
 * the file, its directory and its `-wal` and `-shm` files; `fallback` when nothing there explains
 * it.
 */
export function explainAccess(path: string, readonly: boolean, fallback: string): string {
  const dir = dirname(path);
  const shm = `${path}-shm`;
  const wal = `${path}-wal`;
  if (sizeOf(path) === undefined) {
    if (!can(dir, constants.F_OK))
      return `its directory ${dir} does not exist (dogged creates no directory for a journal)`;
    if (!readonly && !can(dir, constants.W_OK))
      return `permission denied: the directory ${dir} is not writable, so the journal cannot be created there; choose a --db in a directory you can write to`;
    return fallback;
  }
  if (!can(path, constants.R_OK))
    return `permission denied: ${path} is not readable by you (${modeAndOwner(path)}); run as its owner, or ask for read access`;
  if (!readonly && !can(path, constants.W_OK))
    return `permission denied: ${path} is not writable by you (${modeAndOwner(path)}); a run records every outcome in it, so it needs write access (dogged status and export only read it)`;
  if (
    sizeOf(shm) !== undefined &&
    !can(shm, readonly ? constants.R_OK : constants.R_OK | constants.W_OK)
  )
    return `permission denied: its shared-memory file ${shm} is not ${readonly ? 'readable' : 'writable'} by you (${modeAndOwner(shm)}); a runner of another user may hold it: run as that user, or, once no runner is at work, as a user who may remove it`;
  if (
    sizeOf(wal) !== undefined &&
    !can(wal, readonly ? constants.R_OK : constants.R_OK | constants.W_OK)
  )
    return `permission denied: its write-ahead log ${wal} is not ${readonly ? 'readable' : 'writable'} by you (${modeAndOwner(wal)}); run as its owner`;
  if (!can(dir, constants.W_OK)) {
    if (!readonly)
      return `permission denied: the directory ${dir} is not writable, and SQLite keeps the journal's write-ahead log (${wal}) and shared-memory file (${shm}) next to it; move the journal to a directory you can write to`;
    return `the directory ${dir} is not writable, and SQLite must create ${shm} there to read the write-ahead log ${wal} (${sizeOf(wal) ?? 0} bytes of records not yet in the journal file); run as a user who can write to ${dir}, or copy ${path} and ${wal} together to a writable directory and read the copy`;
  }
  return fallback;
}

/**
 * The journal's content for reading in memory, when `path` cannot be opened in place only because
 * its directory is not writable and everything is in the main file (no `-wal`, or an empty
 * one): SQLite cannot read a WAL-mode file there without creating a `-shm`, but the file alone
 * is the whole journal. Undefined when that is not the case (or the file is over
 * {@link MAX_IN_MEMORY_COPY}).
 */
export function inMemoryCopy(path: string): Buffer | undefined {
  const dir = dirname(path);
  if (can(dir, constants.W_OK) || !can(path, constants.R_OK)) return undefined;
  const walSize = sizeOf(`${path}-wal`) ?? 0;
  const size = sizeOf(path) ?? 0;
  if (walSize > 0 || size === 0 || size > MAX_IN_MEMORY_COPY) return undefined;
  const copy = readFileSync(path);
  // Bytes 18 and 19: the write and read format versions, 2 for WAL. An in-memory database has
  // no WAL: 1 (rollback journal) reads the same pages the same way.
  if (copy.length > 19 && copy[18] === 2 && copy[19] === 2) {
    copy[18] = 1;
    copy[19] = 1;
  }
  return copy;
}
