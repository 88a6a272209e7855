import { join } from 'node:path';
import { afterEach, beforeEach } from 'vitest';
import { Journal, type NewLine } from '../../src/batch/journal.js';
import { tempDir } from './batch-support.js';

/**
 * A temporary directory for each test of the file that calls it, and `journalAt` to open
 * journals in it: every journal opened is closed, and the directory removed, after each test.
 */
export function journalsPerTest(): {
  dir: () => string;
  journalAt: (path?: string, readonly?: boolean) => Journal;
  /** The journals opened and not closed yet by this test (`journalAt` adds to it). */
  open: Journal[];
} {
  let dir = '';
  let cleanup = () => {};
  const open: Journal[] = [];
  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
  });
  afterEach(() => {
    for (const journal of open.splice(0)) journal.close();
    cleanup();
  });
  return {
    dir: () => dir,
    journalAt: (path = join(dir, 'j.sqlite'), readonly = false) => {
      const journal = Journal.open(path, { readonly });
      open.push(journal);
      return journal;
    },
    open,
  };
}

/** Input line `n` as a GET of `http://127.0.0.1:1/n`, or as `overrides` say. */
export function requestLine(
  n: number,
  overrides: Partial<NewLine & { kind: 'request' }> = {},
): NewLine {
  return {
    kind: 'request',
    line: n,
    hash: `h${n}`,
    key: undefined,
    method: 'GET',
    url: `http://127.0.0.1:1/${n}`,
    host: '127.0.0.1:1',
    headers: {},
    body: undefined,
    dueAt: 100,
    ...overrides,
  };
}
