import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseStoreUrl } from '../../../src/batch/distributed/connections.js';
import type { PgStore as Store } from '../../../src/batch/distributed/store.js';
import { PgStore } from '../../../src/batch/distributed/store.js';
import {
  encodeWrite,
  nearbyGroups,
  recordEncoded,
  SPAN_SLACK,
} from '../../../src/batch/distributed/store-chunks.js';
import type { AttemptOutcome } from '../../../src/batch/outcome.js';
import { available, needs } from '../../support/needs.js';
import { attemptOutcome } from '../outcome-support.js';
import { PG_URL, settledTableStat } from './distributed-support.js';

// PostgreSQL only (no Redis): a schema of its own, dropped after.
const describe = needs('postgres');

const schema = `dogged_test_${randomBytes(4).toString('hex')}`;
let store: Store;
let admin: pg.Pool;
beforeAll(async () => {
  if (!available('postgres')) return;
  store = await PgStore.open(parseStoreUrl(`${PG_URL}?schema=${schema}`));
  admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
  // The statistics are the analyze test's to make, not the server's on its own schedule.
  await admin.query(`ALTER TABLE ${schema}.requests SET (autovacuum_enabled = false)`);
});
afterAll(async () => {
  await store?.close();
  await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin?.end();
});

/** One attempt's outcome, when it started and which worker made it. */
interface AttemptRecord extends AttemptOutcome {
  readonly startedAt: number;
  readonly worker: string;
}

/** An outcome to write after `previousAttempts` attempts of `line`. */
interface PendingWrite {
  readonly line: number;
  readonly previousAttempts: number;
  readonly record: AttemptRecord;
}

/** Encodes the writes as a worker does, and writes them in one statement. */
function recordAttempts(
  store: Store,
  job: string,
  writes: readonly PendingWrite[],
): Promise<Set<number>> {
  return recordEncoded(
    store,
    job,
    writes.map(({ line, previousAttempts, record: r }) =>
      encodeWrite(line, previousAttempts, r, r.startedAt, r.worker),
    ),
  );
}

const base: AttemptRecord = {
  ...attemptOutcome({
    attempts: 1,
    reason: null,
    responseHeaders: { 'content-type': 'application/octet-stream' },
    body: null,
    bodySize: null,
    finishedAt: 1_765_000_000_123,
    durationMs: 2.25,
  }),
  startedAt: 1_765_000_000_100,
  worker: 'box:1',
};

async function lines(job: string, n: number): Promise<void> {
  await store.insertLines(
    job,
    Array.from({ length: n }, (_, i) => ({
      kind: 'request' as const,
      hash: `h${i + 1}`,
      line: i + 1,
      method: 'GET',
      url: `http://127.0.0.1:1/${i + 1}`,
      host: '127.0.0.1:1',
    })),
  );
}

interface Row {
  line: number;
  state: string;
  attempts: number;
  history: unknown;
  status: number | null;
  error_message: string | null;
  response_headers: unknown;
  body: Buffer | null;
  body_size: number | null;
  body_path: string | null;
  first_attempt_at: string | null;
  finished_at: string | null;
  ttfb_ms: number | null;
  worker: string | null;
}

async function read(job: string): Promise<Row[]> {
  const { rows } = await admin.query<Row>(
    `SELECT line, state, attempts, history, status, error_message, response_headers, body,
        body_size, body_path, first_attempt_at, finished_at, ttfb_ms, worker
      FROM ${schema}.requests WHERE job = $1 ORDER BY line`,
    [job],
  );
  return rows;
}

describe('recordEncoded: many outcomes in one statement', () => {
  it('writes each row its own body slice, headers, history and times, byte for byte', async () => {
    await lines('bodies', 6);
    const bodyOf = (n: number): Buffer => randomBytes(n);
    const bodies = [bodyOf(0), bodyOf(1), null, bodyOf(4096), bodyOf(3), null];
    const writes: PendingWrite[] = bodies.map((body, i) => ({
      line: i + 1,
      previousAttempts: 0,
      record: {
        ...base,
        body,
        bodySize: body === null ? (i === 2 ? 77 : null) : body.length,
        bodyPath: i === 2 ? `/bodies/${i + 1}.body` : null,
        status: 200 + i,
      },
    }));
    const written = await recordAttempts(store, 'bodies', writes);
    expect([...written].sort()).toEqual([1, 2, 3, 4, 5, 6]);
    const rows = await read('bodies');
    rows.forEach((row, i) => {
      const body = bodies[i];
      expect(row.body === null ? null : Buffer.from(row.body)).toEqual(body ?? null);
      expect(row.status).toBe(200 + i);
    });
    expect(rows[2]).toMatchObject({ body: null, body_size: 77, body_path: '/bodies/3.body' });
    expect(rows[0]).toMatchObject({
      state: 'done',
      attempts: 1,
      history: null,
      response_headers: { 'content-type': 'application/octet-stream' },
      first_attempt_at: '1765000000100',
      finished_at: '1765000000123',
      ttfb_ms: 1.5,
      worker: 'box:1',
    });
  });

  it('writes only where the line is pending after the attempts it follows', async () => {
    await lines('guard', 3);
    const history = [
      { at: 1_765_000_000_000, status: 503, delayMs: 250, source: 'backoff' as const },
    ];
    const first = await recordAttempts(store, 'guard', [
      {
        line: 1,
        previousAttempts: 0,
        record: {
          ...base,
          state: 'pending',
          attempts: 1,
          history,
          nextAttemptAt: 1_765_000_000_350,
        },
      },
      { line: 2, previousAttempts: 0, record: base },
      // Follows an attempt the store never saw: another execution got there first.
      { line: 3, previousAttempts: 1, record: base },
    ]);
    expect([...first].sort()).toEqual([1, 2]);
    // Line 2 is final now: a late duplicate of its attempt is not written again.
    const again = await recordAttempts(store, 'guard', [
      { line: 2, previousAttempts: 0, record: { ...base, status: 500 } },
      { line: 1, previousAttempts: 1, record: { ...base, attempts: 2 } },
    ]);
    expect([...again]).toEqual([1]);
    const rows = await read('guard');
    expect(rows.map((r) => [r.line, r.state, r.attempts, r.status])).toEqual([
      [1, 'done', 2, 200],
      [2, 'done', 1, 200],
      [3, 'pending', 0, null],
    ]);
  });

  it('stores a message with NUL or a lone surrogate (which PostgreSQL text cannot hold) as U+FFFD', async () => {
    await lines('text', 2);
    const written = await recordAttempts(store, 'text', [
      {
        line: 1,
        previousAttempts: 0,
        record: { ...base, state: 'failed', errorMessage: 'bad\u0000byte "quoted" \\ back' },
      },
      {
        line: 2,
        previousAttempts: 0,
        record: {
          ...base,
          state: 'failed',
          errorMessage: 'lone \ud800 high, pair 😀, lone \udc00',
        },
      },
    ]);
    expect(written.size).toBe(2);
    const rows = await read('text');
    expect(rows.map((r) => r.error_message)).toEqual([
      'bad\ufffdbyte "quoted" \\ back',
      'lone \ufffd high, pair 😀, lone \ufffd',
    ]);
  });

  it('keeps every column as it was, whatever its text: headers as JSON, numbers JSON lacks as null', async () => {
    await lines('exact', 2);
    const headers = {
      'content-type': 'text/html; charset="utf-8"',
      'x-path': 'C:\\dir\\file',
      'x-latin1': 'caf\u00e9 \u00ff',
      'set-cookie': ['a=1; Path=/', 'b="2"'],
    };
    const history = [
      { at: 1_765_000_000_000, status: 503, delayMs: 250.5, source: 'backoff' as const },
      {
        at: 1_765_000_000_300,
        code: 'ECONNRESET',
        phase: 'body',
        delayMs: 0,
        source: 'retry-after' as const,
      },
    ];
    const written = await recordAttempts(store, 'exact', [
      {
        line: 1,
        previousAttempts: 0,
        record: {
          ...base,
          state: 'failed',
          attempts: 3,
          history,
          status: null,
          errorCode: 'E"Q\\',
          reason: 'reason \u2028 "quoted"',
          responseHeaders: headers,
          ttfbMs: Number.NaN,
          durationMs: Number.POSITIVE_INFINITY,
          worker: 'box "7" \u00e9',
        },
      },
      {
        line: 2,
        previousAttempts: 0,
        record: { ...base, responseHeaders: {}, ttfbMs: null, durationMs: 0.125 },
      },
    ]);
    expect(written.size).toBe(2);
    const { rows } = await admin.query(
      `SELECT line, state, attempts, history, status, error_code, reason, response_headers,
          ttfb_ms, duration_ms, worker FROM ${schema}.requests WHERE job = 'exact' ORDER BY line`,
    );
    expect(rows[0]).toEqual({
      line: 1,
      state: 'failed',
      attempts: 3,
      history,
      status: null,
      error_code: 'E"Q\\',
      reason: 'reason \u2028 "quoted"',
      response_headers: headers,
      ttfb_ms: null,
      duration_ms: null,
      worker: 'box "7" \u00e9',
    });
    expect(rows[1]).toMatchObject({ response_headers: {}, ttfb_ms: null, duration_ms: 0.125 });
  });
});

describe('analyze: the planner statistics after the first lines of a job', () => {
  it('samples 3,000 rows of job, line and state only, and leaves the session as it was', async () => {
    await lines('analyzed', 4000);
    await store.analyze();
    const { rows } = await admin.query<{ attname: string; bounds: number | null }>(
      `SELECT attname, cardinality(histogram_bounds::text::text[]) AS bounds FROM pg_stats
        WHERE schemaname = $1 AND tablename = 'requests' ORDER BY attname`,
      [schema],
    );
    expect(rows.map((r) => r.attname)).toEqual(['job', 'line', 'state']);
    // Every line is distinct: its histogram has the target's 10 buckets (101 by default).
    expect(rows.find((r) => r.attname === 'line')?.bounds).toBe(11);
    const { rows: table } = await admin.query<{ reltuples: number }>(
      `SELECT reltuples FROM pg_class WHERE oid = '${schema}.requests'::regclass`,
    );
    expect(table[0]?.reltuples).toBeGreaterThanOrEqual(4000);
    // SET LOCAL: no connection of the pool keeps the lower target; they have the server's.
    const { rows: server } = await admin.query('SHOW default_statistics_target');
    expect(server).not.toEqual([{ default_statistics_target: '10' }]);
    for (let i = 0; i < 3; i++)
      expect(await store.query('SHOW default_statistics_target')).toEqual(server);
  });
});

describe('recordEncoded on a job grown past its statistics', () => {
  // A store of its own: the statistics are those of its rows only.
  const own = `${schema}_grown`;
  const open = () => PgStore.open(parseStoreUrl(`${PG_URL}?schema=${own}`), { poolSize: 1 });
  const requests = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => ({
      kind: 'request' as const,
      hash: `h${from + i}`,
      line: from + i,
      method: 'GET',
      url: `http://127.0.0.1:1/${from + i}`,
      host: '127.0.0.1:1',
    }));

  beforeAll(async () => {
    if (!available('postgres')) return;
    // A finished job; then a new one, analyzed after its first lines (as the enqueue does),
    // which then grows a hundredfold before the planner hears of it again.
    const setup = await open();
    try {
      await admin.query(`ALTER TABLE ${own}.requests SET (autovacuum_enabled = false)`);
      for (let from = 1; from <= 5000; from += 1000)
        await setup.insertLines('old', requests(from, from + 999));
      await setup.query(`UPDATE ${own}.requests SET state = 'done' WHERE job = 'old'`);
      await setup.insertLines('new', requests(1, 200));
      await setup.analyze();
      for (let from = 201; from <= 20_200; from += 1000)
        await setup.insertLines('new', requests(from, from + 999));
    } finally {
      await setup.close();
    }
  });
  afterAll(async () => {
    await admin?.query(`DROP SCHEMA IF EXISTS ${own} CASCADE`);
  });

  /** Rows the table's scans have read, once no backend that touched it is left to report. */
  const rowsRead = (): Promise<number> =>
    settledTableStat(admin, own, 'coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)');

  /** Writes each batch of lines of job `new` (first attempts, done), as a worker would. */
  async function record(batches: readonly (readonly number[])[]): Promise<number> {
    const writer = await open();
    let written = 0;
    try {
      for (const batch of batches) {
        const writes = batch.map((line) => encodeWrite(line, 0, base, base.startedAt, base.worker));
        written += (await recordEncoded(writer, 'new', writes)).size;
      }
    } finally {
      // The backend reports what it read as it exits.
      await writer.close();
    }
    return written;
  }

  const range = (from: number, n: number): number[] =>
    Array.from({ length: n }, (_, i) => from + i);

  it('reads the batch’s own lines, not every pending line of the job', async () => {
    const before = await rowsRead();
    // Past the five executions after which PostgreSQL may keep a generic plan.
    const batches = Array.from({ length: 7 }, (_, k) => range(k * 256 + 1, 256));
    expect(await record(batches)).toBe(7 * 256);
    // Each batch's 256 lines, read once (the code before read the job's ~20,000 pending lines
    // for each batch: 136,000 rows).
    expect((await rowsRead()) - before).toBeLessThanOrEqual(2 * 7 * 256);
  });

  it('reads near each cluster of a batch’s lines only, however far apart they are', async () => {
    const before = await rowsRead();
    // Each batch: 128 lines near the start of the job and 128 near its end, shuffled (a chunk
    // run again for its retries next to the chunk under way, say): two statements, each reading
    // its own part of the job.
    const batches = Array.from({ length: 7 }, (_, k) =>
      [...range(2000 + k * 128, 128), ...range(20_200 - (k + 1) * 128 + 1, 128)].sort(
        (a, b) => ((a * 7919) % 256) - ((b * 7919) % 256),
      ),
    );
    expect(await record(batches)).toBe(7 * 256);
    expect((await rowsRead()) - before).toBeLessThanOrEqual(2 * 7 * 256);
    const { rows } = await admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${own}.requests WHERE job = 'new' AND state = 'done'
        AND attempts = 1 AND finished_at = $1`,
      [base.finishedAt],
    );
    expect(rows[0]?.n).toBe(2 * 7 * 256);
  });
});

describe('nearbyGroups: the statements of a batch of outcomes', () => {
  const writes = (lines: readonly number[]) =>
    lines.map((line) => encodeWrite(line, 0, base, base.startedAt, base.worker));
  const linesOf = (groups: readonly (readonly { line: number }[])[]) =>
    groups.map((g) => g.map((w) => w.line));

  it('keeps a worker’s chunks together, in line order', () => {
    expect(linesOf(nearbyGroups(writes([3, 1, 2])))).toEqual([[1, 2, 3]]);
    // 256 lines over five chunks of 250 (the others' chunks between): one statement.
    const spread = Array.from({ length: 256 }, (_, i) => 1 + Math.floor((i * 1250) / 256));
    expect(nearbyGroups(writes(spread))).toHaveLength(1);
  });

  it('parts lines far apart, each part spanning at most 4 lines a write plus the slack', () => {
    expect(linesOf(nearbyGroups(writes([50_000, 7, 8, 50_001])))).toEqual([
      [7, 8],
      [50_000, 50_001],
    ]);
    // Within the bound (1 line: 4 × 2 + slack), and one past it.
    expect(nearbyGroups(writes([1, 8 + SPAN_SLACK]))).toHaveLength(1);
    expect(nearbyGroups(writes([1, 9 + SPAN_SLACK]))).toHaveLength(2);
    const lines = Array.from({ length: 256 }, (_, i) => 1 + i * 997);
    for (const group of nearbyGroups(writes(lines))) {
      const span = (group.at(-1)?.line ?? 0) - (group[0]?.line ?? 0) + 1;
      expect(span).toBeLessThanOrEqual(4 * group.length + SPAN_SLACK);
    }
  });
});
