import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JournalFormatError, JournalLockedError } from '../../src/batch/errors.js';
import { Journal, type NewLine } from '../../src/batch/journal.js';
import { acquireLock, lockHolder } from '../../src/batch/lock.js';
import { tempDir } from './batch-support.js';
import { requestLine } from './journal-support.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

const line = (n: number, hash = `h${n}`): NewLine => requestLine(n, { hash, dueAt: 1000 + n });

describe('the journal', () => {
  it('records each line once, however often it is inserted', () => {
    const journal = Journal.open(join(dir, 'j.sqlite'));
    expect(journal.insertLines([line(1), line(2)])).toMatchObject({ pending: 2 });
    expect(journal.insertLines([line(1), line(2), line(3)])).toMatchObject({
      pending: 1,
      changedLine: undefined,
    });
    expect(journal.counts()).toMatchObject({ pending: 3 });
    journal.close();
  });

  it('notices a recorded line that reads differently now', () => {
    const journal = Journal.open(join(dir, 'j.sqlite'));
    journal.insertLines([line(1), line(2)]);
    expect(journal.insertLines([line(1), line(2, 'other')]).changedLine).toBe(2);
    journal.close();
  });

  it('hands out due lines in due order and skips lines in flight', () => {
    const journal = Journal.open(join(dir, 'j.sqlite'));
    journal.insertLines([line(3), line(1), line(2)]);
    expect(journal.dueLines('fresh', 1002, 10).map((l) => l.line)).toEqual([1, 2]);
    expect(journal.markInFlight(1, 5000)).toBe(true);
    expect(journal.markInFlight(1, 5000)).toBe(false);
    expect(journal.dueLines('fresh', 5000, 10).map((l) => l.line)).toEqual([2, 3]);
    expect(journal.dueLines('fresh', 5000, 10, { at: 1002, line: 2 }).map((l) => l.line)).toEqual([
      3,
    ]);
    journal.close();
  });

  it('reads due retries apart from fresh lines, each queue in due order', () => {
    const journal = Journal.open(join(dir, 'j.sqlite'));
    journal.insertLines([line(1), line(2), line(3), line(4)]);
    for (const n of [3, 1]) {
      expect(journal.markInFlight(n, 1500)).toBe(true);
      journal.record({
        kind: 'retry',
        line: n,
        state: 'pending',
        attempts: 1,
        nextAttemptAt: n === 3 ? 1600 : 1700,
        history: [{ at: 1500, status: 503, delayMs: 100, source: 'backoff' }],
        status: 503,
        errorCode: null,
        errorMessage: null,
        reason: null,
        responseHeaders: null,
        body: null,
        bodySize: null,
        bodyPath: null,
        finishedAt: null,
        ttfbMs: 1,
        durationMs: 1,
      });
    }
    expect(journal.dueLines('retry', 1650, 10).map((l) => l.line)).toEqual([3]);
    expect(journal.dueLines('retry', 2000, 10).map((l) => l.line)).toEqual([3, 1]);
    expect(journal.dueLines('fresh', 2000, 10).map((l) => l.line)).toEqual([2, 4]);
    expect(journal.dueLines('retry', 2000, 10)[0]).toMatchObject({ firstAttemptAt: 1500 });
    journal.close();
  });

  it('puts lines left in flight by a dead runner back to pending', () => {
    const path = join(dir, 'j.sqlite');
    const journal = Journal.open(path);
    journal.insertLines([line(1), line(2)]);
    journal.markInFlight(1, 5000);
    journal.close();
    const again = Journal.open(path);
    expect(again.counts()).toMatchObject({ pending: 1, in_flight: 1 });
    expect(again.releaseInFlight()).toBe(1);
    expect(again.counts()).toMatchObject({ pending: 2, in_flight: 0 });
    again.close();
  });

  it("keeps the writer's page cache, and with it SQLite's sorter, to 4 MiB", () => {
    const path = join(dir, 'j.sqlite');
    const writer = Journal.open(path);
    // Negative: KiB. better-sqlite3's default is 16 MiB, which a 1,000,000-line run paid twice.
    expect(writer.db.pragma('cache_size', { simple: true })).toBe(-4096);
    writer.close();
    const reader = Journal.open(path, { readonly: true });
    expect(reader.db.pragma('cache_size', { simple: true })).toBe(-16000);
    reader.close();
  });

  it('refuses to open a file that is not a journal', () => {
    const path = join(dir, 'not.sqlite');
    writeFileSync(path, 'hello');
    expect(() => Journal.open(path)).toThrow(JournalFormatError);
    expect(() => Journal.open(join(dir, 'missing.sqlite'), { readonly: true })).toThrow(
      /does not exist/,
    );
  });
});

describe('the runner lock', () => {
  it('refuses a second runner while the first holds the journal', () => {
    const path = join(dir, 'j.sqlite');
    const first = Journal.open(path);
    const release = acquireLock(first);
    const second = Journal.open(path);
    expect(() => acquireLock(second)).toThrow(JournalLockedError);
    expect(lockHolder(second)).toMatchObject({ pid: process.pid });
    release();
    const releaseSecond = acquireLock(second);
    releaseSecond();
    first.close();
    second.close();
  });

  it('takes over the lock of a runner that died', () => {
    const path = join(dir, 'j.sqlite');
    const journal = Journal.open(path);
    // A pid that surely exited: a child that has already run to completion.
    const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid as number;
    journal.db
      .prepare(
        'INSERT INTO runner (id, pid, hostname, started_at, process_start) VALUES (1, ?, ?, ?, NULL)',
      )
      .run(dead, hostname(), Date.now());
    expect(lockHolder(journal)).toBeUndefined();
    const release = acquireLock(journal);
    expect(lockHolder(journal)).toMatchObject({ pid: process.pid });
    release();
    journal.close();
  });
});
