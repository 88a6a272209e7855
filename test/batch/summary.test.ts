import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal } from '../../src/batch/journal.js';
import { type BatchSummary, summarize } from '../../src/batch/summary.js';
import { seededRandom } from '../../src/retry/random.js';
import { tempDir } from './batch-support.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

interface Row {
  state: string;
  host: string | null;
  attempts: number;
  nextAttemptAt: number;
  history: unknown[] | null;
  status: number | null;
  errorCode: string | null;
  reason: string | null;
}

/** An invalid line's row. */
const INVALID: Row = {
  state: 'invalid',
  host: null,
  attempts: 0,
  nextAttemptAt: 0,
  history: null,
  status: null,
  errorCode: 'ERR_DOGGED_INVALID_LINE',
  reason: 'invalid',
};

function insert(journal: Journal, rows: readonly Row[]): void {
  const statement = journal.db.prepare(
    `INSERT INTO requests (line, line_hash, method, url, host, state, attempts, next_attempt_at, history,
       status, error_code, reason)
     VALUES (?, 'h', 'GET', 'http://x/', ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  journal.transaction(() => {
    rows.forEach((r, i) => {
      statement.run(
        i + 1,
        r.host,
        r.state,
        r.attempts,
        r.nextAttemptAt,
        r.history ? JSON.stringify(r.history) : null,
        r.status,
        r.errorCode,
        r.reason,
      );
    });
  });
}

/**
 * The summary as the journal's aggregate queries give it, one query per tally: what
 * `summarize` returned before it read the journal in two scans, kept here as the reference.
 */
function reference(journal: Journal): BatchSummary {
  const db = journal.db;
  const counts = journal.counts();
  const all = <T>(sql: string): T[] => db.prepare(sql).all() as T[];
  const kind = `coalesce(CAST(json_extract(h.value, '$.status') AS TEXT), json_extract(h.value, '$.code'), 'unknown')`;
  const held = `coalesce(json_extract(h.value, '$.throttled'), json_extract(h.value, '$.down'))`;
  const retried = all<{ value: string; count: number }>(
    `SELECT ${kind} AS value, count(*) AS count FROM requests, json_each(requests.history) AS h
     WHERE requests.history IS NOT NULL AND ${held} IS NULL GROUP BY 1 ORDER BY count DESC, value`,
  );
  return {
    counts,
    total: counts.pending + counts.in_flight + counts.done + counts.failed + counts.invalid,
    statuses: all(
      `SELECT status AS value, count(*) AS count FROM requests
       WHERE state IN ('done', 'failed') AND status IS NOT NULL GROUP BY status ORDER BY status`,
    ),
    failures: all(
      `SELECT coalesce(reason, 'unknown') AS reason, status, error_code AS errorCode, count(*) AS count
       FROM requests WHERE state = 'failed' GROUP BY 1, 2, 3 ORDER BY count DESC, reason, status, errorCode`,
    ),
    retried,
    held: all(
      `SELECT ${kind} AS value, sum(${held}) AS count FROM requests, json_each(requests.history) AS h
       WHERE requests.history IS NOT NULL AND ${held} IS NOT NULL GROUP BY 1 ORDER BY count DESC, value`,
    ),
    attempts: all(
      `SELECT attempts AS value, count(*) AS count FROM requests
       WHERE state IN ('done', 'failed') GROUP BY attempts ORDER BY attempts`,
    ),
    hosts: all(
      `SELECT host, count(*) AS lines, sum(state = 'done') AS done, sum(state = 'failed') AS failed,
              sum(state IN ('pending', 'in_flight')) AS left,
              sum((SELECT count(*) FROM json_each(history) AS h WHERE ${held} IS NULL)) AS retries
       FROM requests WHERE host IS NOT NULL GROUP BY host ORDER BY lines DESC, host LIMIT 10`,
    ),
    hostCount: db
      .prepare('SELECT count(DISTINCT host) FROM requests WHERE host IS NOT NULL')
      .pluck()
      .get() as number,
    retries: retried.reduce((n, t) => n + t.count, 0),
    nextDueAt:
      (db
        .prepare("SELECT min(next_attempt_at) FROM requests WHERE state = 'pending'")
        .pluck()
        .get() as number | null) ?? undefined,
  };
}

/** A journal's worth of lines in every state, with histories of every kind of entry. */
function randomRows(seed: number, n: number): Row[] {
  const r = seededRandom(seed);
  const pick = <T>(values: readonly T[]): T => values[Math.floor(r() * values.length)] as T;
  const hosts = Array.from({ length: 14 }, (_, i) => `h${i}.test:80`);
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const state = pick([
      'pending',
      'pending',
      'in_flight',
      'done',
      'done',
      'done',
      'failed',
      'invalid',
    ]);
    if (state === 'invalid') {
      rows.push(INVALID);
      continue;
    }
    const attempts = state === 'pending' ? pick([0, 0, 1, 2]) : pick([1, 1, 1, 2, 3, 5]);
    const history =
      attempts > 1 || (state === 'pending' && attempts > 0)
        ? Array.from({ length: attempts }, () =>
            pick([
              { at: 1, status: 503, delayMs: 10, source: 'backoff' },
              { at: 1, code: 'ECONNRESET', phase: 'headers', delayMs: 10, source: 'backoff' },
              {
                at: 1,
                status: 429,
                delayMs: 10,
                source: 'retry-after',
                throttled: pick([1, 2, 7]),
              },
              { at: 1, code: 'ECONNREFUSED', delayMs: 10, source: 'backoff', down: pick([1, 3]) },
              { at: 1, delayMs: 10, source: 'backoff' },
            ]),
          )
        : null;
    const failed = state === 'failed';
    const status =
      state === 'done' ? pick([200, 200, 204, 404]) : failed ? pick([500, 503, null]) : null;
    rows.push({
      state,
      // Hosts used unevenly (a few lines each for most), and a tie or two among the busiest.
      host: hosts[Math.floor(r() ** 2 * hosts.length)] as string,
      attempts,
      nextAttemptAt: state === 'pending' ? 1000 + Math.floor(r() * 1000) : 0,
      history,
      status,
      errorCode: failed && status === null ? pick(['ECONNRESET', 'UND_ERR_HEADERS_TIMEOUT']) : null,
      reason: failed
        ? pick(['http-status', 'retries-exhausted', 'not-retriable', 'rate-limited', null])
        : state === 'done'
          ? 'ok'
          : null,
    });
  }
  return rows;
}

/** A line answered at its first attempt, with nothing else to tell. */
const ANSWERED_ROW: Row = {
  state: 'done',
  host: 'a:80',
  attempts: 1,
  nextAttemptAt: 0,
  history: null,
  status: 200,
  errorCode: null,
  reason: 'ok',
};

describe('the summary of a journal', () => {
  it('reads the histories of lines answered at their first attempt after the host held them', () => {
    const journal = Journal.open(join(dir, 'j.sqlite'));
    insert(journal, [
      ANSWERED_ROW,
      // Turned away twice by a 429 (no retry spent), then answered: its only history.
      {
        ...ANSWERED_ROW,
        history: [{ at: 1, status: 429, delayMs: 5, source: 'retry-after', throttled: 2 }],
      },
    ]);
    const summary = summarize(journal);
    expect(summary).toEqual(reference(journal));
    expect(summary.held).toEqual([{ value: '429', count: 2 }]);
    expect(summary.retries).toBe(0);
    journal.close();
  });

  it('tallies lines, failures, retries, held attempts and hosts', () => {
    const journal = Journal.open(join(dir, 'j.sqlite'));
    insert(journal, [
      ANSWERED_ROW,
      {
        state: 'done',
        host: 'a:80',
        attempts: 3,
        nextAttemptAt: 0,
        history: [
          { at: 1, status: 503, delayMs: 5, source: 'backoff' },
          { at: 2, status: 429, delayMs: 5, source: 'retry-after', throttled: 4 },
          { at: 3, code: 'ECONNRESET', delayMs: 5, source: 'backoff' },
        ],
        status: 200,
        errorCode: null,
        reason: 'ok',
      },
      {
        state: 'failed',
        host: 'b:80',
        attempts: 1,
        nextAttemptAt: 0,
        history: null,
        status: 404,
        errorCode: null,
        reason: 'http-status',
      },
      {
        state: 'failed',
        host: 'b:80',
        attempts: 2,
        nextAttemptAt: 0,
        history: [{ at: 1, code: 'ECONNRESET', delayMs: 5, source: 'backoff' }],
        status: null,
        errorCode: 'ECONNRESET',
        reason: 'retries-exhausted',
      },
      {
        state: 'pending',
        host: 'b:80',
        attempts: 1,
        nextAttemptAt: 7000,
        history: [{ at: 1, status: 503, delayMs: 5, source: 'backoff' }],
        status: 503,
        errorCode: null,
        reason: null,
      },
      {
        state: 'pending',
        host: 'c:80',
        attempts: 0,
        nextAttemptAt: 5000,
        history: null,
        status: null,
        errorCode: null,
        reason: null,
      },
      INVALID,
    ]);
    expect(summarize(journal)).toEqual({
      counts: { pending: 2, in_flight: 0, done: 2, failed: 2, invalid: 1, retrying: 1 },
      total: 7,
      statuses: [
        { value: 200, count: 2 },
        { value: 404, count: 1 },
      ],
      failures: [
        { reason: 'http-status', status: 404, errorCode: null, count: 1 },
        { reason: 'retries-exhausted', status: null, errorCode: 'ECONNRESET', count: 1 },
      ],
      retried: [
        { value: '503', count: 2 },
        { value: 'ECONNRESET', count: 2 },
      ],
      held: [{ value: '429', count: 4 }],
      attempts: [
        { value: 1, count: 2 },
        { value: 2, count: 1 },
        { value: 3, count: 1 },
      ],
      hosts: [
        { host: 'b:80', lines: 3, done: 0, failed: 2, left: 1, retries: 2 },
        { host: 'a:80', lines: 2, done: 2, failed: 0, left: 0, retries: 2 },
        { host: 'c:80', lines: 1, done: 0, failed: 0, left: 1, retries: 0 },
      ],
      hostCount: 3,
      retries: 4,
      nextDueAt: 5000,
    });
    journal.close();
  });

  it('of an empty journal is all zeros', () => {
    const journal = Journal.open(join(dir, 'j.sqlite'));
    expect(summarize(journal)).toEqual(reference(journal));
    expect(summarize(journal)).toMatchObject({
      total: 0,
      hosts: [],
      hostCount: 0,
      nextDueAt: undefined,
    });
    journal.close();
  });

  it.each([1, 2, 3, 4, 5])(
    'reads the same as one aggregate query per tally (random journal, seed %i)',
    (seed) => {
      const journal = Journal.open(join(dir, `j${seed}.sqlite`));
      insert(journal, randomRows(seed, 600));
      const summary = summarize(journal);
      expect(summary).toEqual(reference(journal));
      // The random journal exercises what it is meant to: more than 10 hosts, held attempts.
      expect(summary.hostCount).toBeGreaterThan(10);
      expect(summary.held.length).toBeGreaterThan(0);
      expect(summary.failures.length).toBeGreaterThan(5);
      journal.close();
    },
  );
});
