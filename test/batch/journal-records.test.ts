import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { JournalFormatError } from '../../src/batch/errors.js';
import { createJournalFile, Journal, type NewLine } from '../../src/batch/journal.js';
import { MAX_CRASHES } from '../../src/batch/journal-schema.js';
import { root } from './batch-support.js';
import { journalsPerTest, requestLine } from './journal-support.js';
import { attemptOutcome as outcome } from './outcome-support.js';

/**
 * What the SQLite journal writes and reads back, row by row: the columns of each line, the
 * outcomes recorded, the crash count, and the files it refuses to open.
 */

const journals = journalsPerTest();
const { journalAt, open } = journals;
const request = requestLine;

function invalid(n: number, raw: string, hash = `i${n}`): NewLine {
  return { kind: 'invalid', line: n, hash, key: 'k', raw, reason: 'not JSON', at: 777 };
}

/** The error `fn` throws (the test fails if it throws none). */
function thrown(fn: () => unknown): Error & { cause?: unknown; code?: unknown } {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('nothing was thrown');
}

const row = (journal: Journal, line: number) =>
  journal.db.prepare('SELECT * FROM requests WHERE line = ?').get(line) as Record<string, unknown>;
/**
 * A line's final response: its headers as the `response_headers` view gives them (a JSON
 * object), and its body from `responses`.
 */
const response = (journal: Journal, line: number) =>
  journal.db
    .prepare(
      'SELECT h.line, h.headers, r.body FROM response_headers AS h LEFT JOIN responses AS r USING (line) WHERE h.line = ?',
    )
    .get(line) as { headers: string | null; body: Buffer | null } | undefined;

describe('the journal file', () => {
  it('is created empty and readable by its owner only; an existing file is left as it is', () => {
    const path = join(journals.dir(), 'new.sqlite');
    expect(createJournalFile(path)).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(path).size).toBe(0);
    const existing = join(journals.dir(), 'old.sqlite');
    writeFileSync(existing, 'x', { mode: 0o644 });
    expect(createJournalFile(existing)).toBe(false);
    expect(statSync(existing).mode & 0o777).toBe(0o644);
  });

  it('is not created in a directory that does not exist', () => {
    const missing = join(journals.dir(), 'nope', 'j.sqlite');
    const error = thrown(() => createJournalFile(missing));
    expect(error.message).toMatch(`its directory ${join(journals.dir(), 'nope')} does not exist`);
    expect(error.cause).toMatchObject({ code: 'ENOENT' });
    const wrapped = thrown(() => Journal.open(missing));
    expect(wrapped).toBeInstanceOf(JournalFormatError);
    expect(wrapped.message).toMatch(`cannot open ${missing}: its directory`);
    expect((wrapped.cause as Error).message).toMatch('does not exist');
  });

  it('is made readable and writable by its owner whatever the umask; so is a path beginning with file:', () => {
    // In a process of its own: the test runner's worker threads may not set the umask or the
    // working directory. (better-sqlite3 reads no URI: file:j.sqlite is a file name.)
    const script = `
      import { createJournalFile, Journal } from './src/batch/journal.ts';
      process.chdir(process.argv[1]);
      process.umask(0o277);
      createJournalFile('masked.sqlite');
      process.umask(0o022);
      Journal.open('file:j.sqlite').close();
    `;
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script, journals.dir()],
      { cwd: root, encoding: 'utf8' },
    );
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    expect(statSync(join(journals.dir(), 'masked.sqlite')).mode & 0o777).toBe(0o600);
    expect(statSync(join(journals.dir(), 'file:j.sqlite')).mode & 0o777).toBe(0o600);
  });

  it.skipIf(process.platform !== 'linux')('leaves no file descriptor open', () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 50; i++) createJournalFile(join(journals.dir(), `fd${i}.sqlite`));
    // 50 leaked would show; a little noise from elsewhere in the process would not matter.
    expect(fds() - before).toBeLessThan(10);
  });

  it('a journal opened for writing is made 0600 (SQLite would use the umask)', () => {
    const path = join(journals.dir(), 'j.sqlite');
    journalAt(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('in memory or temporary, a journal has no file', () => {
    try {
      for (const path of [':memory:', '']) {
        const journal = Journal.open(path);
        open.push(journal);
        expect(journal.insertLines([request(1)])).toMatchObject({ pending: 1 });
      }
      expect(existsSync(':memory:')).toBe(false);
    } finally {
      // Made in the working directory by a journal that took ':memory:' for a file name.
      rmSync(':memory:', { force: true });
    }
  });

  it('other errors creating it are thrown as they are', () => {
    // A path through a regular file: ENOTDIR.
    writeFileSync(join(journals.dir(), 'file'), '');
    expect(() => createJournalFile(join(journals.dir(), 'file', 'j.sqlite'))).toThrow(
      expect.objectContaining({ code: 'ENOTDIR' }),
    );
  });

  it('a new journal records its schema version and when it was made', () => {
    const journal = journalAt();
    expect(journal.getMeta('schema_version')).toBe('3');
    expect(Date.parse(journal.getMeta('created_at') ?? '')).not.toBeNaN();
    expect(journal.getMeta('nothing')).toBeUndefined();
    expect(journal.readonly).toBe(false);
    expect(journal.db.pragma('journal_mode', { simple: true })).toBe('wal');
    // synchronous = NORMAL is 1.
    expect(journal.db.pragma('synchronous', { simple: true })).toBe(1);
    expect(journal.db.pragma('busy_timeout', { simple: true })).toBe(5000);
  });

  it('reopening keeps the version and creation time', () => {
    const path = join(journals.dir(), 'j.sqlite');
    const first = journalAt(path);
    const created = first.getMeta('created_at');
    first.close();
    const again = journalAt(path);
    expect(again.getMeta('created_at')).toBe(created);
    expect(again.getMeta('schema_version')).toBe('3');
  });

  it('meta values are set and replaced', () => {
    const journal = journalAt();
    journal.setMeta('input', 'a.jsonl');
    expect(journal.getMeta('input')).toBe('a.jsonl');
    journal.setMeta('input', 'b.jsonl');
    expect(journal.getMeta('input')).toBe('b.jsonl');
  });

  it('read-only: reads a journal, writes nothing, and refuses the write methods', () => {
    const path = join(journals.dir(), 'j.sqlite');
    const writer = journalAt(path);
    writer.insertLines([request(1), request(2)]);
    writer.close();
    const reader = journalAt(path, true);
    expect(reader.readonly).toBe(true);
    expect(reader.counts()).toMatchObject({ pending: 2 });
    expect(reader.maxLine()).toBe(2);
    expect(reader.inFlightLines()).toEqual([]);
    expect(() => reader.insertLines([request(3)])).toThrow(`${path} was opened read-only`);
    expect(() => reader.markInFlight(1, 0)).toThrow('opened read-only');
    expect(() => reader.nextDueAt()).toThrow('opened read-only');
    expect(() => reader.db.prepare('DELETE FROM requests').run()).toThrow(/readonly/);
  });

  it('read-only: refuses a database that is not a journal, and one without a version', () => {
    const plain = join(journals.dir(), 'plain.sqlite');
    const db = new Database(plain);
    db.exec('CREATE TABLE t (x)');
    db.close();
    expect(() => Journal.open(plain, { readonly: true })).toThrow(
      `${plain} is not a dogged journal (no meta table)`,
    );
    // Opened for writing, a database without the meta table is not a journal either... once
    // the schema is made, though, it has one; with no version yet, it is given one.
    const versionless = join(journals.dir(), 'versionless.sqlite');
    const v = new Database(versionless);
    v.exec('CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)');
    v.close();
    expect(() => Journal.open(versionless, { readonly: true })).toThrow(
      `${versionless} is not a dogged journal (no schema version)`,
    );
    expect(journalAt(versionless).getMeta('schema_version')).toBe('3');
  });

  it('refuses a journal of another schema version, for reading or writing', () => {
    const path = join(journals.dir(), 'j.sqlite');
    for (const version of ['4', '0', 'x']) {
      journalAt(path).setMeta('schema_version', version);
      open.pop()?.close();
      for (const readonly of [false, true]) {
        const error = thrown(() => Journal.open(path, { readonly }));
        expect(error).toBeInstanceOf(JournalFormatError);
        expect(error.message).toBe(
          `${path} is a journal of schema version ${version}; this dogged reads versions 1, 2, 3`,
        );
      }
      const db = new Database(path);
      db.prepare("UPDATE meta SET value = '3' WHERE name = 'schema_version'").run();
      db.close();
    }
  });

  it('a file that is not SQLite is named as not a journal', () => {
    const path = join(journals.dir(), 'text.sqlite');
    writeFileSync(path, 'hello, this is not a database at all, not even close to one');
    const error = thrown(() => Journal.open(path));
    expect(error).toBeInstanceOf(JournalFormatError);
    expect(error.message).toMatch(`${path} is not a dogged journal: `);
    expect(error.cause).toMatchObject({ code: 'SQLITE_NOTADB' });
  });

  it('gives an older journal the columns added since, keeping its rows', () => {
    const path = join(journals.dir(), 'old.sqlite');
    const first = journalAt(path);
    first.insertLines([request(1)]);
    first.db.exec('ALTER TABLE requests DROP COLUMN unfinished');
    first.close();
    const again = journalAt(path);
    expect(row(again, 1)).toMatchObject({ unfinished: 0, state: 'pending' });
  });
});

describe('lines in the journal', () => {
  it('stores a request line with its key, headers and body', () => {
    const journal = journalAt();
    journal.insertLines([
      request(1, { key: 'k1', method: 'POST', headers: { a: '1' }, body: '{"x":1}', dueAt: 42 }),
      request(2),
    ]);
    expect(row(journal, 1)).toMatchObject({
      line_hash: 'h1',
      key: 'k1',
      method: 'POST',
      url: 'http://127.0.0.1:1/1',
      host: '127.0.0.1:1',
      request_headers: '{"a":"1"}',
      request_body: '{"x":1}',
      state: 'pending',
      attempts: 0,
      next_attempt_at: 42,
    });
    expect(row(journal, 2)).toMatchObject({ key: null, request_headers: null, request_body: null });
  });

  it('stores an invalid line with its reason, its raw text cut at 2000 characters', () => {
    const journal = journalAt();
    const raw = 'x'.repeat(2500);
    expect(journal.insertLines([invalid(1, raw), invalid(2, 'short'), request(3)])).toEqual({
      pending: 1,
      invalid: 2,
      changedLine: undefined,
    });
    expect(row(journal, 1)).toMatchObject({
      key: 'k',
      state: 'invalid',
      error_code: 'ERR_DOGGED_INVALID_LINE',
      error_message: 'not JSON',
      reason: 'invalid',
      finished_at: 777,
      raw: `${'x'.repeat(1997)}...`,
    });
    expect(row(journal, 2)).toMatchObject({ raw: 'short' });
    expect(journal.counts()).toMatchObject({ invalid: 2, pending: 1 });
    // Inserted again: nothing new.
    expect(journal.insertLines([invalid(1, raw), invalid(2, 'short')])).toEqual({
      pending: 0,
      invalid: 0,
      changedLine: undefined,
    });
  });

  it('names the first of the recorded lines that changed', () => {
    const journal = journalAt();
    journal.insertLines([request(1), request(2), request(3)]);
    expect(
      journal.insertLines([request(1), request(2, { hash: 'x' }), invalid(3, 'y')]).changedLine,
    ).toBe(2);
  });

  it('maxLine is the highest line recorded, 0 when empty', () => {
    const journal = journalAt();
    expect(journal.maxLine()).toBe(0);
    journal.insertLines([request(7), request(3)]);
    expect(journal.maxLine()).toBe(7);
  });

  it('reads at least one and at most 1024 due lines at once', () => {
    const journal = journalAt();
    journal.insertLines(Array.from({ length: 1030 }, (_, i) => request(i + 1)));
    expect(journal.dueLines('fresh', 100, 0)).toHaveLength(1);
    expect(journal.dueLines('fresh', 100, -5)).toHaveLength(1);
    expect(journal.dueLines('fresh', 100, 2.9)).toHaveLength(2);
    expect(journal.dueLines('fresh', 100, 5000)).toHaveLength(1024);
    expect(journal.dueLines('fresh', 99, 10)).toEqual([]);
    expect(journal.dueLines('fresh', 100, 1)[0]).toEqual({
      line: 1,
      key: null,
      method: 'GET',
      url: 'http://127.0.0.1:1/1',
      host: '127.0.0.1:1',
      requestHeaders: null,
      requestBody: null,
      attempts: 0,
      history: null,
      nextAttemptAt: 100,
      firstAttemptAt: null,
      fresh: false,
      hash: null,
      chunk: 0,
    });
  });

  it('the lines in flight, in line order; the earliest due pending line', () => {
    const journal = journalAt();
    expect(journal.nextDueAt()).toBeUndefined();
    journal.insertLines([request(1, { dueAt: 300 }), request(2, { dueAt: 200 }), request(3)]);
    expect(journal.nextDueAt()).toBe(100);
    journal.markInFlight(3, 10);
    journal.markInFlight(1, 10);
    expect(journal.inFlightLines()).toEqual([1, 3]);
    expect(journal.nextDueAt()).toBe(200);
  });

  it('keeps the time of the first attempt, and stamps the last', () => {
    const journal = journalAt();
    journal.insertLines([request(1)]);
    journal.markInFlight(1, 1000);
    journal.record({ kind: 'released', line: 1, started: false });
    journal.markInFlight(1, 2000);
    expect(row(journal, 1)).toMatchObject({ first_attempt_at: 1000, last_attempt_at: 2000 });
  });
});

describe('outcomes in the journal', () => {
  it('a final outcome: every column, and the response kept apart', () => {
    const journal = journalAt();
    journal.insertLines([request(1)]);
    journal.markInFlight(1, 1000);
    journal.record({
      kind: 'final',
      line: 1,
      ...outcome({ history: [{ at: 900, status: 503, delayMs: 100, source: 'backoff' }] }),
    });
    expect(row(journal, 1)).toMatchObject({
      state: 'done',
      attempts: 2,
      next_attempt_at: 0,
      history: '[{"at":900,"status":503,"delayMs":100,"source":"backoff"}]',
      status: 200,
      error_code: null,
      reason: 'ok',
      body_size: 5,
      finished_at: 5000,
      ttfb_ms: 1.5,
      duration_ms: 2.5,
    });
    expect(response(journal, 1)).toEqual({
      line: 1,
      headers: '{"content-type":"text/plain"}',
      body: Buffer.from('hello'),
    });
    expect(journal.counts()).toMatchObject({ done: 1, in_flight: 0 });
  });

  it('a failure: its error and no history column when nothing was retried', () => {
    const journal = journalAt();
    journal.insertLines([request(1)]);
    journal.markInFlight(1, 1000);
    journal.record({
      kind: 'final',
      line: 1,
      ...outcome({
        state: 'failed',
        status: null,
        errorCode: 'ECONNRESET',
        errorMessage: 'socket hang up',
        reason: 'not-retriable',
        responseHeaders: null,
        body: null,
        bodySize: null,
        bodyPath: '/tmp/b',
      }),
    });
    expect(row(journal, 1)).toMatchObject({
      state: 'failed',
      history: null,
      error_code: 'ECONNRESET',
      error_message: 'socket hang up',
      body_path: '/tmp/b',
    });
    // Neither headers nor body: no response row.
    expect(response(journal, 1)).toBeUndefined();
  });

  it('a response row with headers only, or with a body only', () => {
    const journal = journalAt();
    journal.insertLines([request(1), request(2)]);
    journal.markInFlight(1, 0);
    journal.markInFlight(2, 0);
    journal.record({ kind: 'final', line: 1, ...outcome({ body: null }) });
    journal.record({ kind: 'final', line: 2, ...outcome({ responseHeaders: null }) });
    expect(response(journal, 1)).toMatchObject({
      headers: '{"content-type":"text/plain"}',
      body: null,
    });
    expect(response(journal, 2)).toMatchObject({ headers: null, body: Buffer.from('hello') });
  });

  it('a retry keeps no response; an outcome for a line not in flight changes nothing', () => {
    const journal = journalAt();
    journal.insertLines([request(1), request(2)]);
    journal.markInFlight(1, 0);
    journal.record({
      kind: 'retry',
      line: 1,
      ...outcome({ state: 'pending', nextAttemptAt: 900 }),
    });
    expect(row(journal, 1)).toMatchObject({ state: 'pending', next_attempt_at: 900, attempts: 2 });
    expect(response(journal, 1)).toBeUndefined();
    expect(journal.counts()).toMatchObject({ pending: 2, retrying: 1 });
    // Line 2 was never claimed: its final outcome is not written, nor its response.
    journal.record({ kind: 'final', line: 2, ...outcome() });
    expect(row(journal, 2)).toMatchObject({ state: 'pending', attempts: 0 });
    expect(response(journal, 2)).toBeUndefined();
  });

  it('a line claimed without a write: its start marks it in flight, its outcome needs neither', () => {
    const journal = journalAt();
    journal.insertLines([request(1), request(2), request(3)]);
    // Line 1: started (written), then its outcome.
    journal.record({ kind: 'started', line: 1, at: 1000 });
    expect(row(journal, 1)).toMatchObject({
      state: 'in_flight',
      unfinished: 1,
      first_attempt_at: 1000,
      last_attempt_at: 1000,
    });
    journal.record({ kind: 'final', line: 1, startedAt: 1000, ...outcome() });
    expect(row(journal, 1)).toMatchObject({ state: 'done', unfinished: 0, first_attempt_at: 1000 });
    expect(response(journal, 1)).toBeDefined();
    // Line 2: started and ended between two writes, only its outcome written (still pending).
    journal.record({ kind: 'retry', line: 2, startedAt: 2000, ...outcome({ state: 'pending' }) });
    expect(row(journal, 2)).toMatchObject({
      state: 'pending',
      attempts: 2,
      first_attempt_at: 2000,
      last_attempt_at: 2000,
    });
    journal.record({ kind: 'final', line: 2, startedAt: 3000, ...outcome() });
    expect(row(journal, 2)).toMatchObject({
      state: 'done',
      first_attempt_at: 2000,
      last_attempt_at: 3000,
    });
    // A finished line is not written again, with or without a start.
    journal.record({ kind: 'started', line: 2, at: 4000 });
    journal.record({ kind: 'final', line: 2, startedAt: 4000, ...outcome({ status: 500 }) });
    expect(row(journal, 2)).toMatchObject({ state: 'done', status: 200, last_attempt_at: 3000 });
    expect(journal.counts()).toMatchObject({ pending: 1, in_flight: 0, done: 2 });
  });

  it('a retry claimed again is in flight, not retrying', () => {
    const journal = journalAt();
    journal.insertLines([request(1), request(2)]);
    for (const n of [1, 2]) {
      journal.markInFlight(n, 0);
      journal.record({ kind: 'retry', line: n, ...outcome({ state: 'pending' }) });
    }
    journal.markInFlight(2, 10);
    journal.record({ kind: 'final', line: 2, ...outcome() });
    journal.markInFlight(1, 10);
    expect(journal.counts()).toEqual({
      pending: 0,
      in_flight: 1,
      done: 1,
      failed: 0,
      invalid: 0,
      retrying: 0,
    });
  });

  it('counts lines per state, and pending lines that already had an attempt', () => {
    const journal = journalAt();
    journal.insertLines([request(1), request(2), request(3), request(4), invalid(5, '?')]);
    for (const n of [1, 2, 3]) journal.markInFlight(n, 0);
    journal.record({ kind: 'final', line: 1, ...outcome() });
    journal.record({ kind: 'final', line: 2, ...outcome({ state: 'failed' }) });
    expect(journal.counts()).toEqual({
      pending: 1,
      in_flight: 1,
      done: 1,
      failed: 1,
      invalid: 1,
      retrying: 0,
    });
  });
});

describe('lines left in flight by runners that died', () => {
  function start(journal: Journal, line: number): void {
    expect(journal.markInFlight(line, 0)).toBe(true);
    journal.record({ kind: 'started', line });
  }
  const unfinished = (journal: Journal, line: number) => row(journal, line).unfinished;

  it('an attempt started counts until its outcome; one cut off by a stop does not', () => {
    const journal = journalAt();
    journal.insertLines([request(1), request(2)]);
    start(journal, 1);
    expect(unfinished(journal, 1)).toBe(1);
    journal.record({ kind: 'released', line: 1, started: true });
    expect(row(journal, 1)).toMatchObject({ state: 'pending', unfinished: 0 });
    // Released twice (not in flight any more): nothing changes, and never below 0.
    journal.record({ kind: 'released', line: 1, started: true });
    expect(unfinished(journal, 1)).toBe(0);
    journal.markInFlight(1, 0);
    journal.record({ kind: 'released', line: 1, started: true });
    expect(unfinished(journal, 1)).toBe(0);
    // Claimed, never started, released: the count is kept.
    start(journal, 2);
    journal.releaseInFlight(10);
    journal.markInFlight(2, 0);
    journal.record({ kind: 'released', line: 2, started: false });
    expect(row(journal, 2)).toMatchObject({ state: 'pending', unfinished: 1 });
    // An outcome clears it.
    start(journal, 2);
    journal.record({ kind: 'retry', line: 2, ...outcome({ state: 'pending' }) });
    expect(unfinished(journal, 2)).toBe(0);
  });

  it(`fails a line whose attempts were cut by ${MAX_CRASHES} dead runners, not fetched again`, () => {
    const journal = journalAt();
    journal.insertLines([request(1), request(2), request(3)]);
    for (let crash = 1; crash <= MAX_CRASHES; crash++) {
      start(journal, 1);
      if (crash < MAX_CRASHES) start(journal, 2);
      else journal.markInFlight(2, 0);
      const released = journal.releaseInFlight(9000 + crash);
      if (crash < MAX_CRASHES) {
        expect(released).toBe(2);
        expect(journal.counts()).toMatchObject({ pending: 3, failed: 0 });
      } else {
        // Line 2's last claim never started: it went back to pending.
        expect(released).toBe(1);
      }
    }
    expect(row(journal, 1)).toMatchObject({
      state: 'failed',
      reason: 'crashed-runner',
      status: null,
      error_code: 'ERR_DOGGED_CRASHED_RUNNER',
      finished_at: 9000 + MAX_CRASHES,
    });
    expect(row(journal, 1).error_message).toContain(`died ${MAX_CRASHES} times`);
    expect(row(journal, 2)).toMatchObject({ state: 'pending', unfinished: MAX_CRASHES - 1 });
    expect(journal.counts()).toMatchObject({ pending: 2, failed: 1, in_flight: 0 });
  });
});

describe('journal transactions', () => {
  it('a transaction that throws writes nothing; nested calls join the outer one', () => {
    const journal = journalAt();
    expect(() =>
      journal.transaction(() => {
        journal.insertLines([request(1)]);
        journal.transaction(() => journal.setMeta('x', 'y'));
        throw new Error('stop');
      }),
    ).toThrow('stop');
    expect(journal.maxLine()).toBe(0);
    expect(journal.getMeta('x')).toBeUndefined();
    expect(journal.transaction(() => 42)).toBe(42);
  });

  it('close is idempotent', () => {
    const journal = journalAt();
    journal.close();
    expect(() => journal.close()).not.toThrow();
    expect(journal.db.open).toBe(false);
  });
});
