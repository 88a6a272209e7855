import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { hashLine } from '../../src/batch/input-line.js';
import { type ClaimedLine, Journal, type NewLine } from '../../src/batch/journal.js';
import type { LineOutcome } from '../../src/batch/outcome.js';
import { collectReport } from '../../src/batch/report-data.js';
import { summarize } from '../../src/batch/summary.js';
import { exportRecords, InputChangedError, runBatch } from '../../src/index.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { journalRecords, tempDir } from './batch-support.js';
import { attemptOutcome } from './outcome-support.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

function line(n: number, host = '127.0.0.1:1'): NewLine {
  return {
    kind: 'request',
    line: n,
    hash: `h${n}`,
    key: n === 1 ? 'first' : undefined,
    method: 'GET',
    url: `http://${host}/${n}`,
    host,
    headers: n === 2 ? { accept: 'text/plain' } : {},
    body: undefined,
    dueAt: 1000 + n,
  };
}

function done(fresh: ClaimedLine | undefined, n: number, at = 5000): LineOutcome {
  const outcome = attemptOutcome({ attempts: 1, body: null, bodySize: 2, finishedAt: at });
  return { kind: 'final', line: n, startedAt: at - 10, fresh, ...outcome };
}

/** Rows of the table itself (not the view a read-only journal may show). */
function tableRows(journal: Journal): Record<string, unknown>[] {
  return journal.db.prepare('SELECT * FROM main.requests ORDER BY line').all() as Record<
    string,
    unknown
  >[];
}

function chunkCount(journal: Journal): number {
  return journal.db.prepare('SELECT count(*) FROM main.input_chunks').pluck().get() as number;
}

describe('a journal deferring the rows of new lines', () => {
  it('runs no due-lines query while no row is pending, and reads the rows a release or a retry makes pending', () => {
    const journal = Journal.open(join(dir, 'j.sqlite'));
    journal.deferRows(true);
    journal.insertLines([line(1), line(3)]);
    const prepare = vi.spyOn(journal.db, 'prepare');
    const dueQueries = (): number =>
      prepare.mock.calls.filter(([sql]) => String(sql).includes('INDEXED BY requests_')).length;
    const finish = (n: number): void =>
      journal.transaction(() => {
        journal.claim([n], 7000);
        journal.record({ kind: 'final', line: n, ...attemptOutcome({ body: null }) });
      });
    // Every line is in a chunk: `requests` has no pending row, and nothing is read from it.
    expect(journal.dueLines('retry', 1e13, 64)).toEqual([]);
    expect(journal.dueLines('fresh', 1e13, 64)).toEqual([]);
    expect(dueQueries()).toBe(0);
    const [first, third] = journal.takeFresh(2, 10, () => true);
    // A line whose start was written, released (a stop): pending again, and read.
    journal.record({ kind: 'started', line: 3, at: 5000, fresh: third });
    journal.record({ kind: 'released', line: 3, started: true, fresh: third });
    expect(journal.dueLines('fresh', 1e13, 64).map((l) => l.line)).toEqual([3]);
    expect(dueQueries()).toBe(1);
    finish(3);
    // No pending row seen again: the queries stop.
    expect(journal.nextDueAt()).toBeUndefined();
    expect(journal.dueLines('fresh', 1e13, 32)).toEqual([]);
    expect(dueQueries()).toBe(1);
    // A retry is a pending row: read.
    journal.transaction(() =>
      journal.recordAll([
        {
          kind: 'retry',
          line: 1,
          startedAt: 4990,
          fresh: first,
          ...attemptOutcome({ state: 'pending', attempts: 1, nextAttemptAt: 6000, status: 503 }),
          responseHeaders: null,
          finishedAt: null,
        },
      ]),
    );
    expect(journal.dueLines('retry', 6000, 64).map((l) => l.line)).toEqual([1]);
    expect(dueQueries()).toBe(2);
    journal.close();
  });

  it('writes new lines a chunk to a row and hands them out in line order', () => {
    const journal = Journal.open(join(dir, 'j.sqlite'));
    journal.deferRows(true);
    const invalid: NewLine = {
      kind: 'invalid',
      line: 4,
      hash: 'h4',
      key: undefined,
      raw: 'not a url',
      reason: 'not a URL',
      at: 900,
    };
    expect(journal.insertLines([line(1), line(2), line(3), invalid, line(5)])).toMatchObject({
      pending: 4,
      invalid: 1,
    });
    // The invalid line has its row at once; the request lines have none yet.
    expect(tableRows(journal).map((r) => [r.line, r.state])).toEqual([[4, 'invalid']]);
    expect(chunkCount(journal)).toBe(2);
    expect(journal.hasFresh).toBe(true);
    expect(journal.nextDueAt()).toBe(0);
    const [first, second] = journal.takeFresh(2, 10, () => true);
    expect(first).toEqual({
      line: 1,
      key: 'first',
      method: 'GET',
      url: 'http://127.0.0.1:1/1',
      host: '127.0.0.1:1',
      requestHeaders: null,
      requestBody: null,
      attempts: 0,
      history: null,
      nextAttemptAt: 1001,
      firstAttemptAt: null,
      fresh: true,
      hash: 'h1',
      chunk: 1,
    });
    expect(second).toMatchObject({ line: 2, requestHeaders: '{"accept":"text/plain"}' });
    expect(journal.nextDueAt()).toBe(1003);
    expect(journal.takeFresh(5, 10, () => true).map((l) => l.line)).toEqual([3, 5]);
    expect(journal.hasFresh).toBe(false);
    expect(journal.takeFresh(5, 10, () => true)).toEqual([]);
    expect(journal.maxLine()).toBe(5);
    journal.close();
  });

  it('keeps the lines it was asked to pass over at the front, in order', () => {
    const journal = Journal.open(join(dir, 'j.sqlite'));
    journal.deferRows(true);
    journal.insertLines([1, 2, 3, 4, 5, 6].map((n) => line(n, n % 2 ? 'a:1' : 'b:1')));
    // Host b is busy: its lines stay for later, before anything not yet looked at.
    expect(journal.takeFresh(2, 10, (l) => l.host === 'a:1').map((l) => l.line)).toEqual([1, 3]);
    // At most `scan` lines are looked at.
    expect(journal.takeFresh(5, 2, (l) => l.host === 'a:1')).toEqual([]);
    expect(journal.takeFresh(10, 10, () => true).map((l) => l.line)).toEqual([2, 4, 5, 6]);
    journal.close();
  });

  it("writes a fresh line's row once with its outcome, or with its start and then updates it", () => {
    const journal = Journal.open(join(dir, 'j.sqlite'));
    journal.deferRows(true);
    journal.insertLines([line(1), line(2), line(3), line(4), line(5)]);
    const [l1, l2, l3, l4] = journal.takeFresh(4, 10, () => true) as ClaimedLine[];
    journal.transaction(() => {
      journal.record(done(l1, 1));
      journal.record({ kind: 'started', line: 2, at: 4000, fresh: l2 });
      journal.record({ kind: 'started', line: 3, at: 4000, fresh: l3 });
      journal.record({ kind: 'released', line: 4, started: false, fresh: l4 });
    });
    expect(tableRows(journal).map((r) => [r.line, r.state, r.unfinished])).toEqual([
      [1, 'done', 0],
      [2, 'in_flight', 1],
      [3, 'in_flight', 1],
    ]);
    expect(tableRows(journal)[0]).toMatchObject({
      line_hash: 'h1',
      key: 'first',
      url: 'http://127.0.0.1:1/1',
      host: '127.0.0.1:1',
      status: 200,
      attempts: 1,
      first_attempt_at: 4990,
      last_attempt_at: 4990,
      finished_at: 5000,
    });
    journal.transaction(() => {
      journal.record(done(l2, 2, 6000));
      journal.record({ kind: 'released', line: 3, started: true, fresh: l3 });
    });
    expect(tableRows(journal).map((r) => [r.line, r.state, r.unfinished])).toEqual([
      [1, 'done', 0],
      [2, 'done', 0],
      [3, 'pending', 0],
    ]);
    expect(tableRows(journal)[1]).toMatchObject({
      request_headers: '{"accept":"text/plain"}',
      first_attempt_at: 4000,
      finished_at: 6000,
    });
    const headers = journal.db.prepare('SELECT line, headers FROM response_headers ORDER BY line');
    expect(headers.all()).toEqual([
      { line: 1, headers: '{"content-type":"text/plain"}' },
      { line: 2, headers: '{"content-type":"text/plain"}' },
    ]);
    // The header came twice: the second response names it by its id.
    const fields = journal.db.prepare(
      'SELECT line, header_fields FROM requests WHERE header_fields IS NOT NULL ORDER BY line',
    );
    expect(fields.all()).toEqual([
      { line: 1, header_fields: '[["content-type","text/plain"]]' },
      { line: 2, header_fields: '[1]' },
    ]);
    expect(journal.db.prepare('SELECT * FROM header_values').all()).toEqual([
      { id: 1, name: 'content-type', value: 'text/plain' },
    ]);
    // The run's end: the lines never attempted (4 released unstarted, 5 never handed out)
    // become pending rows, and the chunks go.
    journal.deferRows(false);
    expect(chunkCount(journal)).toBe(0);
    expect(tableRows(journal).map((r) => [r.line, r.state, r.attempts])).toEqual([
      [1, 'done', 1],
      [2, 'done', 1],
      [3, 'pending', 0],
      [4, 'pending', 0],
      [5, 'pending', 0],
    ]);
    expect(tableRows(journal)[4]).toMatchObject({
      line_hash: 'h5',
      method: 'GET',
      url: 'http://127.0.0.1:1/5',
      next_attempt_at: 1005,
      key: null,
      request_headers: null,
    });
    expect(journal.counts()).toMatchObject({ pending: 3, done: 2 });
    journal.close();
  });

  it("writes a turn's new rows in multi-row statements, each as record() would", () => {
    const journal = Journal.open(join(dir, 'j.sqlite'));
    journal.deferRows(true);
    const n = 45; // 32 + 8 + 5 one at a time
    journal.insertLines(Array.from({ length: n + 1 }, (_, i) => line(i + 1)));
    const fresh = journal.takeFresh(n + 1, n + 1, () => true);
    const updates = fresh.slice(0, n).map((l) => {
      const o = done(l, l.line, 5000 + l.line);
      // Line 10 got no headers worth keeping; line 20 is retried.
      if (l.line === 10) return { ...o, responseHeaders: null };
      if (l.line === 20)
        return {
          ...o,
          kind: 'retry' as const,
          state: 'pending' as const,
          nextAttemptAt: 9000,
          history: [{ at: 5020, status: 503, delayMs: 100, source: 'backoff' as const }],
          finishedAt: null,
          responseHeaders: null,
        };
      return o;
    });
    const last = fresh[n] as ClaimedLine;
    journal.transaction(() =>
      journal.recordAll([
        ...updates.slice(0, 3),
        { kind: 'started', line: last.line, at: 4000, fresh: last },
        ...updates.slice(3),
      ]),
    );
    const rows = tableRows(journal);
    expect(rows).toHaveLength(n + 1);
    expect(rows.map((r) => r.line)).toEqual(Array.from({ length: n + 1 }, (_, i) => i + 1));
    expect(rows[0]).toMatchObject({
      state: 'done',
      line_hash: 'h1',
      key: 'first',
      finished_at: 5001,
    });
    expect(rows[19]).toMatchObject({
      state: 'pending',
      attempts: 1,
      next_attempt_at: 9000,
      finished_at: null,
    });
    expect(JSON.parse(rows[19]?.history as string)).toHaveLength(1);
    expect(rows[44]).toMatchObject({ state: 'done', url: 'http://127.0.0.1:1/45' });
    expect(rows[45]).toMatchObject({ state: 'in_flight', unfinished: 1 });
    const responses = journal.db
      .prepare('SELECT line FROM response_headers ORDER BY line')
      .pluck()
      .all();
    expect(responses).toEqual(
      Array.from({ length: n }, (_, i) => i + 1).filter((l) => l !== 10 && l !== 20),
    );
    expect(chunkCount(journal)).toBe(0);
    expect(journal.counts()).toMatchObject({ done: 44, pending: 1, in_flight: 1, retrying: 1 });
    journal.close();
  });

  it('writes the row of each kind of outcome as a journal that gave the line its row at once', () => {
    const n = 45;
    // Lines 1 and 2 have a key and headers of their own, line 3 a body; the rest are plain.
    const lines = Array.from({ length: n }, (_, i) =>
      i === 2 ? { ...line(3), method: 'POST', body: 'x=1' } : line(i + 1),
    );
    const outcomeOf = (l: number): Omit<LineOutcome, 'fresh'> => {
      const o = done(undefined, l, 5000 + l);
      if (l % 9 === 0)
        return {
          ...o,
          state: 'failed',
          status: null,
          errorCode: 'ECONNRESET',
          errorMessage: 'socket hang up',
          reason: 'retries-exhausted',
          responseHeaders: null,
          body: null,
          bodySize: null,
        };
      if (l % 7 === 0) return { ...o, bodyPath: `bodies/${l}`, body: null };
      if (l % 5 === 0)
        return {
          ...o,
          kind: 'retry',
          state: 'pending',
          nextAttemptAt: 9000,
          history: [{ at: 5000 + l, status: 503, delayMs: 100, source: 'backoff' }],
          finishedAt: null,
          responseHeaders: null,
        };
      // Plain, but not answered at once: its state, attempts and reason are values, not literals.
      if (l % 11 === 0) return { ...o, state: 'failed', status: 404, reason: 'http-status' };
      return o;
    };
    const deferred = Journal.open(join(dir, 'deferred.sqlite'));
    deferred.deferRows(true);
    deferred.insertLines(lines);
    const fresh = deferred.takeFresh(n, n, () => true);
    deferred.transaction(() =>
      deferred.recordAll(fresh.map((l) => ({ ...outcomeOf(l.line), fresh: l }))),
    );
    const atOnce = Journal.open(join(dir, 'at-once.sqlite'));
    atOnce.insertLines(lines);
    atOnce.transaction(() =>
      atOnce.recordAll(lines.map((l) => ({ ...outcomeOf(l.line), fresh: undefined }))),
    );
    const rows = tableRows(deferred);
    // Every kind is there: done at once, plain and failed with a status, with a key, headers or
    // body, failed with an error, body in a file, retried.
    expect(new Set(rows.map((r) => r.state))).toEqual(new Set(['done', 'failed', 'pending']));
    expect(rows.filter((r) => r.status === 404 && r.reason === 'http-status')).toHaveLength(4);
    expect(rows.filter((r) => r.body_path !== null)).toHaveLength(6);
    // The rows alike but for their headers' fields: the deferred journal encodes a turn's rows
    // by kind (done at once, plain, other), the other line by line, so a field written in full in
    // one may be named by its id in the other. Their headers read alike (below).
    const withoutFields = (all: Record<string, unknown>[]) =>
      all.map(({ header_fields, ...rest }) => rest);
    expect(withoutFields(rows)).toEqual(withoutFields(tableRows(atOnce)));
    const responses = (journal: Journal) =>
      journal.db
        .prepare(
          'SELECT h.line, h.headers, r.body FROM response_headers AS h LEFT JOIN responses AS r USING (line) ORDER BY h.line',
        )
        .all();
    // No response row for the 5 lines failed with an error (9, 18, ... 45) and the 7 retried (5,
    // 10, ... 40).
    expect(responses(deferred)).toHaveLength(n - 5 - 7);
    expect(responses(deferred)).toEqual(responses(atOnce));
    deferred.close();
    atOnce.close();
  });

  it('drops a chunk as soon as every line of it has its row', () => {
    const journal = Journal.open(join(dir, 'j.sqlite'));
    journal.deferRows(true);
    journal.insertLines([line(1), line(2)]);
    journal.insertLines([line(3)]);
    const [l1, l2, l3] = journal.takeFresh(3, 3, () => true) as ClaimedLine[];
    expect([l1?.chunk, l2?.chunk, l3?.chunk]).toEqual([1, 1, 3]);
    journal.transaction(() => {
      journal.record(done(l1, 1));
      journal.record({ kind: 'started', line: 3, at: 4000, fresh: l3 });
    });
    expect(chunkCount(journal)).toBe(1);
    // Line 2's start writes its row: the first chunk is all rows now.
    journal.transaction(() => journal.record({ kind: 'started', line: 2, at: 4000, fresh: l2 }));
    expect(chunkCount(journal)).toBe(0);
    expect(journal.maxLine()).toBe(3);
    journal.transaction(() => journal.record(done(l2, 2)));
    expect(tableRows(journal).map((r) => [r.line, r.state])).toEqual([
      [1, 'done'],
      [2, 'done'],
      [3, 'in_flight'],
    ]);
    journal.close();
  });

  it('shows a running or dead runner’s unattempted lines to a reader as pending rows', async () => {
    const path = join(dir, 'j.sqlite');
    const writer = Journal.open(path);
    writer.deferRows(true);
    writer.insertLines([line(1), line(2), line(3)]);
    const [l1] = writer.takeFresh(1, 1, () => true) as ClaimedLine[];
    writer.transaction(() => writer.record(done(l1, 1)));
    // The writer dies here: its chunks stay.
    writer.close();
    const reader = Journal.open(path, { readonly: true });
    expect(reader.counts()).toMatchObject({ pending: 2, done: 1 });
    expect([...exportRecords(reader)].map((r) => [r.line, r.state, r.url])).toEqual([
      [1, 'done', 'http://127.0.0.1:1/1'],
      [2, 'pending', 'http://127.0.0.1:1/2'],
      [3, 'pending', 'http://127.0.0.1:1/3'],
    ]);
    expect(summarize(reader).counts).toMatchObject({ pending: 2, done: 1 });
    const report = await collectReport(reader);
    expect(report.hosts.map((h) => [h.host, h.lines])).toEqual([['127.0.0.1:1', 3]]);
    reader.close();
    // The next runner (the lock held) makes them rows again before reading the journal.
    const next = Journal.open(path);
    expect(tableRows(next)).toHaveLength(1);
    next.writeDeferredRows();
    expect(tableRows(next).map((r) => [r.line, r.state])).toEqual([
      [1, 'done'],
      [2, 'pending'],
      [3, 'pending'],
    ]);
    expect(chunkCount(next)).toBe(0);
    next.close();
  });

  it('reads every field of a chunk alike from the runner and from SQL: shared, per line, left out', () => {
    const path = join(dir, 'j.sqlite');
    const writer = Journal.open(path);
    writer.deferRows(true);
    const post: NewLine = {
      kind: 'request',
      line: 3,
      hash: 'h3',
      key: 'third',
      method: 'POST',
      url: 'http://127.0.0.1:1/3',
      host: '127.0.0.1:1',
      headers: { 'content-type': 'text/plain' },
      body: 'hello',
      dueAt: 1003,
    };
    // One chunk with two methods and keys, headers and a body on some lines only; a second
    // where every line has the same method and due time, and none has a key, header or body.
    writer.insertLines([line(1), line(2), post]);
    const plain = (n: number): NewLine => ({
      ...(line(n) as Extract<NewLine, { kind: 'request' }>),
      key: undefined,
      headers: {},
      dueAt: 7,
    });
    writer.insertLines([plain(4), plain(5)]);
    // A line's fields, from a row (`request_headers`...) or a line handed out (`requestHeaders`...).
    const fields = (l: ClaimedLine | Record<string, unknown>) => {
      const r = l as Record<string, unknown>;
      const claimed = 'requestHeaders' in r;
      return [
        r.line,
        claimed ? r.hash : r.line_hash,
        r.key,
        r.method,
        r.url,
        r.host,
        claimed ? r.requestHeaders : r.request_headers,
        claimed ? r.requestBody : r.request_body,
        claimed ? r.nextAttemptAt : r.next_attempt_at,
      ];
    };
    const expected = [
      [1, 'h1', 'first', 'GET', 'http://127.0.0.1:1/1', '127.0.0.1:1', null, null, 1001],
      [
        2,
        'h2',
        null,
        'GET',
        'http://127.0.0.1:1/2',
        '127.0.0.1:1',
        '{"accept":"text/plain"}',
        null,
        1002,
      ],
      [
        3,
        'h3',
        'third',
        'POST',
        'http://127.0.0.1:1/3',
        '127.0.0.1:1',
        '{"content-type":"text/plain"}',
        'hello',
        1003,
      ],
      [4, 'h4', null, 'GET', 'http://127.0.0.1:1/4', '127.0.0.1:1', null, null, 7],
      [5, 'h5', null, 'GET', 'http://127.0.0.1:1/5', '127.0.0.1:1', null, null, 7],
    ];
    // A reader sees them through SQL while the run is under way.
    const reader = Journal.open(path, { readonly: true });
    const viewed = reader.db.prepare('SELECT * FROM requests ORDER BY line').all() as Record<
      string,
      unknown
    >[];
    expect(viewed.map(fields)).toEqual(expected);
    expect(viewed.every((r) => r.state === 'pending' && r.attempts === 0)).toBe(true);
    reader.close();
    // The runner reads them from the chunks themselves.
    expect(writer.takeFresh(5, 5, () => true).map(fields)).toEqual(expected);
    expect(writer.maxLine()).toBe(5);
    writer.close();
    // A run that died: the next makes them rows, through SQL again.
    const next = Journal.open(path);
    next.writeDeferredRows();
    expect(tableRows(next).map(fields)).toEqual(expected);
    next.close();
  });

  it('shows and resumes the lines an earlier dogged left in its chunks, an array a line', () => {
    const path = join(dir, 'j.sqlite');
    Journal.open(path).close();
    const db = new Database(path);
    // A chunk as dogged 0.1 wrote it: each line [line, hash, key, method, url, host, request
    // headers, request body, next attempt at].
    db.prepare('INSERT INTO input_chunks (first_line, lines) VALUES (?, ?)').run(
      1,
      JSON.stringify([
        [1, 'h1', 'k1', 'GET', 'http://127.0.0.1:1/1', '127.0.0.1:1', null, null, 11],
        [2, 'h2', null, 'PUT', 'http://127.0.0.1:1/2', '127.0.0.1:1', '{"a":"b"}', 'x', 12],
      ]),
    );
    db.close();
    const expected = [
      [1, 'h1', 'k1', 'GET', 'http://127.0.0.1:1/1', '127.0.0.1:1', null, null, 11],
      [2, 'h2', null, 'PUT', 'http://127.0.0.1:1/2', '127.0.0.1:1', '{"a":"b"}', 'x', 12],
    ];
    const row = (r: Record<string, unknown>) => [
      r.line,
      r.line_hash,
      r.key,
      r.method,
      r.url,
      r.host,
      r.request_headers,
      r.request_body,
      r.next_attempt_at,
    ];
    const reader = Journal.open(path, { readonly: true });
    expect(reader.counts()).toMatchObject({ pending: 2 });
    const viewed = reader.db.prepare('SELECT * FROM requests ORDER BY line').all() as Record<
      string,
      unknown
    >[];
    expect(viewed.map(row)).toEqual(expected);
    reader.close();
    const next = Journal.open(path);
    next.deferRows(true);
    expect(tableRows(next).map(row)).toEqual(expected);
    expect(chunkCount(next)).toBe(0);
    next.close();
  });

  it('opens the journal of an earlier dogged, which has no chunk table', () => {
    const path = join(dir, 'j.sqlite');
    const writer = Journal.open(path);
    writer.insertLines([line(1)]);
    writer.close();
    const db = new Database(path);
    db.exec('DROP TABLE input_chunks');
    db.close();
    const reader = Journal.open(path, { readonly: true });
    expect(reader.counts()).toMatchObject({ pending: 1 });
    reader.close();
    const again = Journal.open(path);
    again.writeDeferredRows();
    expect(again.counts()).toMatchObject({ pending: 1 });
    again.close();
  });

  it('refuses to defer on a read-only journal', () => {
    const path = join(dir, 'j.sqlite');
    Journal.open(path).close();
    const reader = Journal.open(path, { readonly: true });
    expect(() => reader.deferRows(true)).toThrow(`${path} was opened read-only`);
    expect(() => reader.writeDeferredRows()).toThrow(`${path} was opened read-only`);
    reader.close();
  });
});

describe('runBatch with deferred rows', () => {
  let chaos: ChaosServer;
  beforeAll(async () => {
    chaos = await startChaosServer();
  });
  afterAll(async () => {
    await chaos.close();
  });
  beforeEach(() => chaos.reset());

  it('gives a line its row when attempted; a reader sees every line read meanwhile', async () => {
    const db = join(dir, 'run.sqlite');
    const input = Array.from({ length: 40 }, (_, i) => `${chaos.url}/delay/40?key=d${i}`);
    const seen: { rows: number; total: number; pending: number }[] = [];
    const controller = new AbortController();
    const stopped = await runBatch({
      db,
      input,
      concurrency: 4,
      signal: controller.signal,
      progressIntervalMs: 5,
      onProgress: (p) => {
        if (p.finished < 4 || seen.length > 0) return;
        const reader = Journal.open(db, { readonly: true });
        try {
          const counts = reader.counts();
          seen.push({
            rows: tableRows(reader).length,
            total: counts.pending + counts.in_flight + counts.done,
            pending: counts.pending,
          });
        } finally {
          reader.close();
        }
        controller.abort();
      },
    });
    expect(stopped.end).toBe('interrupted');
    const [mid] = seen;
    // Every line was read at once; only the attempted ones (a few rounds of 4) have rows.
    expect(mid?.total).toBe(40);
    expect(mid?.rows).toBeGreaterThanOrEqual(4);
    expect(mid?.rows).toBeLessThan(20);
    expect(mid?.pending).toBeGreaterThan(20);
    // Stopped: every line has its row again, as between runs, and the chunks are gone.
    const journal = Journal.open(db, { readonly: true });
    expect(tableRows(journal)).toHaveLength(40);
    expect(chunkCount(journal)).toBe(0);
    journal.close();
    const resumed = await runBatch({ db, input });
    expect(resumed.end).toBe('complete');
    expect(resumed.counts.done).toBe(40);
    expect(resumed.attempts).toBe(40 - stopped.counts.done);
    expect(chaos.log().length).toBe(40);
  });

  it("commits a new line's start once its attempt has run 50 ms (no poison lines)", async () => {
    const db = join(dir, 'run.sqlite');
    let seen: Record<string, unknown>[] | undefined;
    const controller = new AbortController();
    const result = await runBatch({
      db,
      input: [`${chaos.url}/delay/600?key=slow`],
      signal: controller.signal,
      progressIntervalMs: 10,
      onProgress: (p) => {
        if (seen || p.inFlight === 0 || p.elapsedMs < 250) return;
        const reader = Journal.open(db, { readonly: true });
        try {
          seen = tableRows(reader);
        } finally {
          reader.close();
        }
        controller.abort(); // the attempt in flight finishes within the stop's grace
      },
    });
    expect(seen).toEqual([expect.objectContaining({ line: 1, state: 'in_flight', unfinished: 1 })]);
    expect(result.counts.done).toBe(1);
    const journal = Journal.open(db, { readonly: true });
    expect(tableRows(journal)).toEqual([
      expect.objectContaining({ line: 1, state: 'done', unfinished: 0, attempts: 1 }),
    ]);
    journal.close();
  });

  /**
   * A server that answers `/hold` only once `release()` is called, and anything else at once
   * (`answered()` counts those answers).
   */
  async function holdingServer(): Promise<{
    base: string;
    release: () => void;
    answered: () => number;
    close: () => Promise<void>;
  }> {
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let answered = 0;
    const server = createServer((req, res) => {
      if (req.url === '/hold') void held.then(() => res.end('held'));
      else res.end('ok', () => answered++);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      release,
      answered: () => answered,
      close: async () => {
        release();
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      },
    };
  }

  it('commits the outcomes of new lines within 50 ms while other lines are in flight', async () => {
    const { base, release, close } = await holdingServer();
    const db = join(dir, 'run.sqlite');
    try {
      const run = runBatch({
        db,
        input: [`${base}/hold`, ...[1, 2, 3, 4, 5].map((n) => `${base}/fast?n=${n}`)],
      });
      // The held line stays in flight: the others' rows must be committed all the same.
      for (;;) {
        const reader = Journal.open(db, { readonly: true });
        const done = tableRows(reader).filter((r) => r.state === 'done').length;
        reader.close();
        if (done === 5) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      release();
      expect((await run).counts).toMatchObject({ done: 6 });
    } finally {
      await close();
    }
  });

  it('commits the outcomes of new lines 1,024 at a time when its 50 ms timer never fires', async () => {
    // Only setTimeout is faked: the runner's turns (setImmediate) and the sockets go on, and
    // the flush timer never fires, so nothing but the count commits while a line is held.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { base, release, answered, close } = await holdingServer();
    const db = join(dir, 'run.sqlite');
    const fast = 3000;
    const committed = (): number => {
      const reader = Journal.open(db, { readonly: true });
      try {
        return tableRows(reader).filter((r) => r.state === 'done').length;
      } finally {
        reader.close();
      }
    };
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    try {
      const run = runBatch({
        db,
        input: [`${base}/hold`, ...Array.from({ length: fast }, (_, n) => `${base}/fast?n=${n}`)],
      });
      while (answered() < fast) await turn();
      // The runner's last turns after the last answer: a bounded number of them.
      let done = committed();
      for (let i = 0; i < 200 && done < 1024; i++) {
        await turn();
        done = committed();
      }
      // Commits of 1,024 outcomes or more while the held line keeps one attempt in flight; the
      // outcomes of the last lines, after the last turn that reads, wait for the timer.
      expect(done).toBeGreaterThanOrEqual(1024);
      expect(done).toBeLessThan(fast);
      release();
      expect((await run).counts).toMatchObject({ done: fast + 1 });
    } finally {
      vi.useRealTimers();
      await close();
    }
  });

  /** A runner that read `input` into the journal at `db`, fetched nothing and died. */
  function deadRunner(db: string, input: readonly string[]): void {
    const dead = Journal.open(db);
    dead.deferRows(true);
    dead.insertLines(
      input.map((url, i) => ({
        ...line(i + 1, new URL(url).host),
        url,
        key: undefined,
        headers: {},
        hash: hashLine(url),
      })),
    );
    dead.close();
  }

  it('resumes the lines a dead runner read and never attempted', async () => {
    const db = join(dir, 'run.sqlite');
    const input = [1, 2, 3].map((n) => `${chaos.url}/bytes/8?seed=${n}`);
    deadRunner(db, input);
    const result = await runBatch({ db, input });
    expect(result.end).toBe('complete');
    expect(result.counts).toMatchObject({ done: 3, pending: 0 });
    expect(journalRecords(db).map((r) => [r.line, r.state, r.bodySize])).toEqual([
      [1, 'done', 8],
      [2, 'done', 8],
      [3, 'done', 8],
    ]);
    expect(chaos.log().length).toBe(3);
  });

  it('notices a changed line among those a dead runner read and never attempted', async () => {
    const db = join(dir, 'run.sqlite');
    const input = [1, 2, 3].map((n) => `${chaos.url}/bytes/8?seed=${n}`);
    deadRunner(db, input);
    const changed = [input[0] as string, `${chaos.url}/bytes/9?seed=2`, input[2] as string];
    await expect(runBatch({ db, input: changed })).rejects.toBeInstanceOf(InputChangedError);
    expect(chaos.log().length).toBe(0);
  });
});
