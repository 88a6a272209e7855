import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { exportRecords } from '../../src/batch/export.js';
import {
  HeaderFieldEncoder,
  type ResponseHeaderFields,
  responseHeadersSql,
} from '../../src/batch/header-fields.js';
import type { Journal, NewLine } from '../../src/batch/journal.js';
import { resetFailed } from '../../src/batch/retry-failed.js';
import { seededRandom } from '../../src/retry/random.js';
import { journalsPerTest, requestLine } from './journal-support.js';
import { attemptOutcome as outcome } from './outcome-support.js';

const journals = journalsPerTest();
const { journalAt } = journals;
const request = (line: number): NewLine => requestLine(line, { dueAt: 0 });

/** Records line `line` done with a response carrying `headers` (and no body). */
function answer(journal: Journal, line: number, headers: ResponseHeaderFields): void {
  journal.insertLines([request(line)]);
  journal.markInFlight(line, 0);
  journal.record({ kind: 'final', line, ...outcome({ responseHeaders: headers, body: null }) });
}

/** Each response's headers as the `response_headers` view gives them, by line. */
function viewed(journal: Journal): Map<number, string | null> {
  const rows = journal.db
    .prepare('SELECT line, headers FROM response_headers ORDER BY line')
    .all() as { line: number; headers: string | null }[];
  return new Map(rows.map((r) => [r.line, r.headers]));
}

/** Every id that `header_fields` names, each with its row in `header_values` or not. */
function namedIds(journal: Journal): { id: number; present: boolean }[] {
  return journal.db
    .prepare(
      `SELECT e.value AS id, v.id IS NOT NULL AS present FROM requests AS r, json_each(r.header_fields) AS e
       LEFT JOIN header_values AS v ON v.id = e.value WHERE e.type = 'integer'`,
    )
    .all()
    .map((r) => ({
      id: (r as { id: number }).id,
      present: (r as { present: number }).present === 1,
    }));
}

const TRICKY = [
  '',
  'a "quoted" \\ value',
  'ünïcødé ✓',
  'line\u2028sep\u2029',
  'ctl\u0001\u001f',
  '{"json":1}',
];

/** Header sets of a server: fixed fields, fields from a small or a large set, repeated headers. */
function randomHeaders(
  random: () => number,
  i: number,
): Record<string, string | string[] | undefined> {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  if (random() < 0.05) return {};
  const headers: Record<string, string | string[] | undefined> = {
    server: 'nginx/1.22.1',
    date: `Sun, 06 Dec 2026 10:${String(Math.floor(i / 40)).padStart(2, '0')}:00 GMT`,
  };
  if (random() < 0.8)
    headers['content-type'] = pick(['text/html', 'application/json', 'image/png']);
  // More values than a name's memory holds, in turn: some come back after they were forgotten.
  headers.etag = `"${Math.floor(random() * 24)}"`;
  if (random() < 0.5) headers['x-request-id'] = `${i}-${Math.floor(random() * 1e9)}`;
  if (random() < 0.3)
    headers['set-cookie'] = [`a=${i}`, pick(TRICKY), 'b=2'].slice(0, 1 + Math.floor(random() * 3));
  if (random() < 0.3) headers['x-tricky'] = pick(TRICKY);
  if (random() < 0.1) headers['x-dropped'] = undefined;
  if (random() < 0.05)
    for (let k = 0; k < 300; k++) headers[`x-many-${k}`] = String(Math.floor(random() * 3));
  return headers;
}

describe('response headers in the journal', () => {
  it.each([1, 2, 3])(
    'the response_headers view gives back each response headers as JSON.stringify wrote them (seed %i)',
    (seed) => {
      const random = seededRandom(seed);
      const journal = journalAt();
      const expected = new Map<number, ResponseHeaderFields>();
      for (let line = 1; line <= 300; line++) {
        const headers = randomHeaders(random, line);
        expected.set(line, headers);
        answer(journal, line, headers);
      }
      const got = viewed(journal);
      for (const [line, headers] of expected) expect(got.get(line)).toBe(JSON.stringify(headers));
      // The export reads them the same way.
      for (const record of exportRecords(journal, { includeSecrets: true }))
        expect(record.headers).toEqual(JSON.parse(JSON.stringify(expected.get(record.line))));
      // Every id named has its row; and the repeated fields made the journal smaller.
      const ids = namedIds(journal);
      expect(ids.length).toBeGreaterThan(300);
      expect(ids.every((r) => r.present)).toBe(true);
      // Responses with a server's usual few dozen headers at most (not the 300 names, more than
      // the encoder remembers): their fields and the whole dictionary take under 70% of their
      // JSON (57–58% with these seeds; written in full, with no ids, 100% and more).
      const ordinary = [...expected].filter(([, h]) => Object.keys(h).length < 50);
      const fieldsOf = journal.db
        .prepare('SELECT length(header_fields) FROM requests WHERE line = ?')
        .pluck();
      const fields = ordinary.reduce((n, [line]) => n + (fieldsOf.get(line) as number), 0);
      const dictionary = journal.db
        .prepare('SELECT sum(length(name) + length(value) + 8) FROM header_values')
        .pluck()
        .get() as number;
      const json = ordinary.reduce((n, [, h]) => n + JSON.stringify(h).length, 0);
      expect(fields + dictionary).toBeLessThan(json * 0.7);
    },
  );

  it('a value gets an id the second time it comes; ids go on after the journal is reopened', () => {
    const path = join(journals.dir(), 'j.sqlite');
    const headers = { server: 'nginx', date: 'one' };
    let journal = journalAt(path);
    answer(journal, 1, headers);
    answer(journal, 2, headers);
    answer(journal, 3, { ...headers, date: 'two' });
    const fields = () =>
      journal.db.prepare('SELECT header_fields FROM requests ORDER BY line').pluck().all();
    expect(fields()).toEqual([
      '[["server","nginx"],["date","one"]]',
      '[1,2]',
      '[1,["date","two"]]',
    ]);
    journal.close();
    journal = journalAt(path);
    // A new run remembers nothing yet: the first response is written in full, the second names
    // new ids, after those written.
    answer(journal, 4, headers);
    answer(journal, 5, headers);
    expect(fields().slice(3)).toEqual(['[["server","nginx"],["date","one"]]', '[3,4]']);
    expect(
      journal.db.prepare('SELECT id, name, value FROM header_values ORDER BY id').raw().all(),
    ).toEqual([
      [1, 'server', 'nginx'],
      [2, 'date', 'one'],
      [3, 'server', 'nginx'],
      [4, 'date', 'one'],
    ]);
    for (const line of [1, 2, 4, 5])
      expect(viewed(journal).get(line)).toBe(JSON.stringify(headers));
  });

  it('the header values of a transaction that rolled back are written with the next responses', () => {
    const journal = journalAt();
    const headers = { server: 'nginx' };
    expect(() =>
      journal.transaction(() => {
        answer(journal, 1, headers);
        answer(journal, 2, headers);
        throw new Error('the disk is full');
      }),
    ).toThrow('the disk is full');
    expect(journal.db.prepare('SELECT count(*) FROM header_values').pluck().get()).toBe(0);
    answer(journal, 3, headers);
    answer(journal, 4, headers);
    answer(journal, 5, headers);
    // Id 1 was given in the transaction that rolled back: still given (all three name it), and
    // written now.
    expect(namedIds(journal)).toEqual([
      { id: 1, present: true },
      { id: 1, present: true },
      { id: 1, present: true },
    ]);
    for (const line of [3, 4, 5]) expect(viewed(journal).get(line)).toBe('{"server":"nginx"}');
  });

  it('an outcome encoded before a transaction that rolled back names ids written after it', () => {
    const journal = journalAt();
    const headers = { server: 'nginx' };
    answer(journal, 1, headers);
    journal.insertLines([request(2), request(3)]);
    journal.markInFlight(2, 0);
    journal.markInFlight(3, 0);
    // Encoded as the attempt ended (the runner's way): the second time `server: nginx` comes,
    // it gets an id, to be written with the outcome.
    const encoded = journal.encodeHeaders(headers);
    expect(encoded).toBe('[1]');
    // A transaction that writes no outcome rolls back (a refill, an input chunk).
    expect(() =>
      journal.transaction(() => {
        journal.record({ kind: 'final', line: 3, ...outcome({ body: null }) });
        throw new Error('the disk is full');
      }),
    ).toThrow('the disk is full');
    journal.transaction(() =>
      journal.recordAll([
        {
          kind: 'final',
          line: 2,
          ...outcome({ responseHeaders: null, body: null }),
          headerFields: encoded,
        },
      ]),
    );
    expect(namedIds(journal)).toEqual([{ id: 1, present: true }]);
    expect(viewed(journal).get(2)).toBe('{"server":"nginx"}');
  });

  it('a savepoint that rolled back puts back only its own header values', () => {
    const journal = journalAt();
    journal.transaction(() => {
      answer(journal, 1, { a: '1' });
      answer(journal, 2, { a: '1' });
      expect(() =>
        journal.transaction(() => {
          answer(journal, 3, { b: '2' });
          answer(journal, 4, { b: '2' });
          throw new Error('the disk is full');
        }),
      ).toThrow('the disk is full');
      answer(journal, 5, { a: '1', b: '2' });
    });
    // `a` (id 1) was written before the savepoint and stays; `b` (id 2) is written again with
    // line 5, once (a second write of id 1 would break its primary key).
    expect(namedIds(journal)).toEqual([
      { id: 1, present: true },
      { id: 1, present: true },
      { id: 2, present: true },
    ]);
    expect(journal.db.prepare('SELECT id, name, value FROM header_values').raw().all()).toEqual([
      [1, 'a', '1'],
      [2, 'b', '2'],
    ]);
    expect(viewed(journal).get(5)).toBe('{"a":"1","b":"2"}');
  });

  it('remembers at most a mebibyte of values: a server that sends long different ones is forgotten', () => {
    const journal = journalAt();
    const long = (n: number) => `${n}`.padEnd(1000, '.');
    answer(journal, 1, { a: 'kept' });
    answer(journal, 2, { a: 'kept' });
    answer(journal, 3, { b: 'once' });
    // 80 names (fewer than the 256 remembered), each with 16 different values of 1,000
    // characters (as many as a name keeps): 1.28 million characters to remember.
    let line = 4;
    for (let v = 0; v < 16; v++) {
      const headers: Record<string, string> = {};
      for (let name = 0; name < 80; name++) headers[`x-${name}`] = long(v);
      answer(journal, line++, headers);
    }
    answer(journal, line, { a: 'kept', b: 'once' });
    // Both were forgotten: written in full (remembered, `a` would be named by its id 1, and `b`
    // get the next: `[1,2]`).
    expect(
      journal.db.prepare('SELECT header_fields FROM requests WHERE line = ?').pluck().get(line),
    ).toBe('[["a","kept"],["b","once"]]');
    expect(viewed(journal).get(line)).toBe('{"a":"kept","b":"once"}');
  });

  it('retry-failed drops a failed line response with its outcome: headers and body', () => {
    const journal = journalAt();
    journal.insertLines([request(1), request(2)]);
    for (const [line, status] of [
      [1, 500],
      [2, 200],
    ] as const) {
      journal.markInFlight(line, 0);
      journal.record({
        kind: 'final',
        line,
        ...outcome({
          state: status === 500 ? 'failed' : 'done',
          status,
          reason: status === 500 ? 'http-status' : 'ok',
          responseHeaders: { server: `s${line}` },
        }),
      });
    }
    expect([...viewed(journal).keys()]).toEqual([1, 2]);
    expect(resetFailed(journal)).toBe(1);
    expect([...viewed(journal)]).toEqual([[2, '{"server":"s2"}']]);
    expect(
      journal.db.prepare('SELECT line, header_fields FROM requests ORDER BY line').raw().all(),
    ).toEqual([
      [1, null],
      [2, '[["server","s2"]]'],
    ]);
    expect(journal.db.prepare('SELECT line FROM responses').pluck().all()).toEqual([2]);
  });

  it('a journal of schema version 1: read as it is, and brought to version 3 when written', () => {
    const path = join(journals.dir(), 'old.sqlite');
    const made = journalAt(path);
    made.insertLines([request(1), request(2)]);
    made.markInFlight(1, 0);
    made.record({ kind: 'final', line: 1, ...outcome({ responseHeaders: null, body: null }) });
    made.close();
    journals.open.pop();
    // What dogged wrote before the header fields: headers as JSON in `responses.headers`.
    const db = new Database(path);
    db.exec(`DROP VIEW response_headers; DROP TABLE header_values;
      ALTER TABLE responses DROP COLUMN header_fields;
      ALTER TABLE requests DROP COLUMN header_fields;
      UPDATE meta SET value = '1' WHERE name = 'schema_version';
      INSERT INTO responses (line, headers, body) VALUES (1, '{"server":"old","x":["a","b"]}', NULL);`);
    db.close();
    const reader = journalAt(path, true);
    expect(reader.getMeta('schema_version')).toBe('1');
    expect([...exportRecords(reader)].map((r) => r.headers)).toEqual([
      { server: 'old', x: ['a', 'b'] },
      null,
    ]);
    reader.close();
    const writer = journalAt(path);
    expect(writer.getMeta('schema_version')).toBe('3');
    writer.markInFlight(2, 0);
    writer.record({
      kind: 'final',
      line: 2,
      ...outcome({ responseHeaders: { server: 'new' }, body: null }),
    });
    expect([...viewed(writer)]).toEqual([
      [1, '{"server":"old","x":["a","b"]}'],
      [2, '{"server":"new"}'],
    ]);
    expect([...exportRecords(writer)].map((r) => r.headers)).toEqual([
      { server: 'old', x: ['a', 'b'] },
      { server: 'new' },
    ]);
  });

  it('a journal of schema version 2 (fields in responses): read as it is, then brought to version 3', () => {
    const path = join(journals.dir(), 'v2.sqlite');
    const made = journalAt(path);
    made.insertLines([request(1), request(2), request(3)]);
    made.close();
    journals.open.pop();
    // What dogged 2 wrote: the fields in `responses`, its view reading that table alone.
    const db = new Database(path);
    db.exec(`DROP VIEW response_headers;
      ALTER TABLE requests DROP COLUMN header_fields;
      UPDATE meta SET value = '2' WHERE name = 'schema_version';
      UPDATE requests SET state = 'done', status = 200, attempts = 1, reason = 'ok' WHERE line = 1;
      INSERT INTO header_values (id, name, value) VALUES (1, 'server', 'v2');
      INSERT INTO responses (line, header_fields, body) VALUES (1, '[1,["x",["a","b"]]]', X'6f6b');
      CREATE VIEW response_headers (line, headers) AS
        SELECT r.line, ${responseHeadersSql('q', 'r', { requests: false, responses: true })} FROM responses AS r;`);
    db.close();
    const reader = journalAt(path, true);
    expect(reader.getMeta('schema_version')).toBe('2');
    expect(viewed(reader).get(1)).toBe('{"server":"v2","x":["a","b"]}');
    expect([...exportRecords(reader, { bodies: true })].map((r) => [r.headers, r.body])).toEqual([
      [{ server: 'v2', x: ['a', 'b'] }, 'ok'],
      [null, null],
      [null, null],
    ]);
    reader.close();
    const writer = journalAt(path);
    expect(writer.getMeta('schema_version')).toBe('3');
    expect(
      writer.db
        .prepare("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = 'response_headers'")
        .pluck()
        .get(),
    ).toContain('FROM requests AS q');
    for (const line of [2, 3]) {
      writer.markInFlight(line, 0);
      writer.record({
        kind: 'final',
        line,
        ...outcome({
          responseHeaders: { server: 'v2' },
          body: line === 3 ? Buffer.from('b3') : null,
        }),
      });
    }
    // Ids go on after the journal's: `server: v2` gets a new id on its second sighting.
    expect(writer.db.prepare('SELECT line, header_fields FROM requests').raw().all()).toEqual([
      [1, null],
      [2, '[["server","v2"]]'],
      [3, '[2]'],
    ]);
    expect([...viewed(writer)]).toEqual([
      [1, '{"server":"v2","x":["a","b"]}'],
      [2, '{"server":"v2"}'],
      [3, '{"server":"v2"}'],
    ]);
    expect(
      [...exportRecords(writer, { bodies: true })].map((r) => [r.line, r.headers, r.body]),
    ).toEqual([
      [1, { server: 'v2', x: ['a', 'b'] }, 'ok'],
      [2, { server: 'v2' }, null],
      [3, { server: 'v2' }, 'b3'],
    ]);
  });
});

describe('HeaderFieldEncoder', () => {
  it('gives the same text for the same ids, and the right text for lists whose hashes collide', () => {
    const encoder = new HeaderFieldEncoder(1);
    // Names h1..h32 with ids 1..32: each value seen twice.
    for (let i = 1; i <= 32; i++) {
      encoder.encode({ [`h${i}`]: `v${i}` });
      expect(encoder.encode({ [`h${i}`]: `v${i}` })).toBe(`[${i}]`);
    }
    expect(encoder.take().map((row) => row.id)).toEqual(
      Array.from({ length: 32 }, (_, i) => i + 1),
    );
    // [1,32] and [2,1] hash alike (1·31 + 32 = 2·31 + 1): each keeps its own text.
    for (let round = 0; round < 3; round++) {
      expect(encoder.encode({ h1: 'v1', h32: 'v32' })).toBe('[1,32]');
      expect(encoder.encode({ h2: 'v2', h1: 'v1' })).toBe('[2,1]');
      expect(encoder.encode({ h2: 'v2', h1: 'v1', h3: 'v3' })).toBe('[2,1,3]');
      expect(encoder.encode({ h2: 'v2' })).toBe('[2]');
    }
    // A field written in full is never taken from a kept text.
    expect(encoder.encode({ h1: 'v1', h32: 'other' })).toBe('[1,["h32","other"]]');
    expect(encoder.encode({ h1: 'v1', h32: 'more', x: ['a', 'b'] })).toBe(
      '[1,["h32","more"],["x",["a","b"]]]',
    );
    expect(encoder.take()).toEqual([]);
  });
});
