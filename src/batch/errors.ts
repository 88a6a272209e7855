import { DoggedError, type DoggedErrorOptions } from '../http/errors.js';
import { brand } from '../retry/brand.js';

/** Who holds a journal's lock. */
export interface LockHolder {
  readonly pid: number;
  readonly hostname: string;
  /** When that runner took the lock, epoch ms. */
  readonly startedAt: number;
}

/**
 * Another runner holds the journal: two runners on one journal would fetch every URL twice.
 * Wait for it to finish, stop it, or use another `--db`.
 */
export class JournalLockedError extends DoggedError {
  override name = 'JournalLockedError';
  override readonly code: string = 'ERR_DOGGED_JOURNAL_LOCKED';
  readonly path: string;
  readonly holder: LockHolder;
  constructor(path: string, holder: LockHolder, options: DoggedErrorOptions = {}) {
    super(
      `${path} is in use by another dogged runner (pid ${holder.pid} on ${holder.hostname}, since ${new Date(holder.startedAt).toISOString()}). ` +
        'Wait for it to finish or stop it (Ctrl-C or kill, then re-run to resume), or use another --db.',
      { phase: 'none', ...options },
    );
    this.path = path;
    this.holder = holder;
  }
}
brand(JournalLockedError, 'JournalLockedError');

/**
 * The input no longer matches the journal: a line that was recorded reads differently now, so
 * the journal belongs to another input. Appending lines is fine; editing recorded ones is not.
 */
export class InputChangedError extends DoggedError {
  override name = 'InputChangedError';
  override readonly code: string = 'ERR_DOGGED_INPUT_CHANGED';
  /** The 1-based line number that differs. */
  readonly line: number;
  constructor(path: string, line: number, options: DoggedErrorOptions = {}) {
    super(
      `line ${line} of the input differs from the line recorded in ${path}: this journal was made from another input. ` +
        'Lines may be appended to the input between runs, not changed; use a new --db for a new input.',
      { phase: 'none', ...options },
    );
    this.line = line;
  }
}
brand(InputChangedError, 'InputChangedError');

/** The file is not a dogged journal, or one of an incompatible version. */
export class JournalFormatError extends DoggedError {
  override name = 'JournalFormatError';
  override readonly code: string = 'ERR_DOGGED_JOURNAL_FORMAT';
  constructor(message: string, options: DoggedErrorOptions = {}) {
    super(message, { phase: 'none', ...options });
  }
}
brand(JournalFormatError, 'JournalFormatError');

/**
 * The input file cannot be read: missing, a directory, or not readable by this user. Found
 * before the journal is created, so a bad path leaves no journal behind.
 */
export class InputUnreadableError extends DoggedError {
  override name = 'InputUnreadableError';
  override readonly code: string = 'ERR_DOGGED_INPUT_UNREADABLE';
  /** The path given as input. */
  readonly path: string;
  constructor(path: string, why: string, options: DoggedErrorOptions = {}) {
    super(
      `cannot read the input ${path}: ${why}; give a file of URLs or JSONL lines, or - for stdin`,
      { phase: 'none', ...options },
    );
    this.path = path;
  }
}
brand(InputUnreadableError, 'InputUnreadableError');
