/**
 * The report of a distributed job (PostgreSQL) holds the same numbers as the report of a
 * journal with the same lines. Uses a private schema of the test PostgreSQL; no Redis.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStoreUrl } from '../../../src/batch/distributed/connections.js';
import { UnknownJobError } from '../../../src/batch/distributed/errors.js';
import { PgStore } from '../../../src/batch/distributed/store.js';
import { collectJobReport } from '../../../src/batch/distributed-api.js';
import { Journal } from '../../../src/batch/journal.js';
import { collectReport, type ReportData } from '../../../src/batch/report-data.js';
import { renderReport } from '../../../src/batch/report-html.js';
import { runCli, tempDir } from '../batch-support.js';
import { COLUMNS, knownRows, valuesOf } from '../report-support.js';
import { PG_URL } from './distributed-support.js';

const schema = `dogged_test_${randomBytes(4).toString('hex')}`;
const store = `${PG_URL}?schema=${schema}`;
let pool: pg.Pool;
let dir: string;
let cleanup: () => void;

beforeAll(async () => {
  ({ dir, cleanup } = tempDir('dogged-report-store-'));
  pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
  const opened = await PgStore.open(parseStoreUrl(store));
  await opened.close();
  await pool.query(`INSERT INTO ${schema}.jobs (job, config) VALUES ('known', '{}')`);
  for (const row of knownRows()) {
    const values = valuesOf(row);
    await pool.query(
      `INSERT INTO ${schema}.requests (job, ${COLUMNS.join(', ')}) VALUES ('known', ${COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`,
      values,
    );
  }
}, 30_000);
afterAll(async () => {
  await pool?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
  await pool?.end();
  cleanup?.();
});

/** The data without what differs by source or moment. */
const comparable = (data: ReportData): Omit<ReportData, 'title' | 'generatedAt' | 'counts'> => {
  const { title: _t, generatedAt: _g, counts: _c, ...rest } = data;
  return rest;
};

describe('collectJobReport', () => {
  it('reads the same numbers from PostgreSQL as from a journal', async () => {
    const path = join(dir, 'known.sqlite');
    const journal = Journal.open(path);
    const insert = journal.db.prepare(
      `INSERT INTO requests (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`,
    );
    for (const row of knownRows()) insert.run(...valuesOf(row));
    const fromJournal = await collectReport(journal);
    journal.close();
    const fromStore = await collectJobReport(store, 'known');
    expect(fromStore.title).toBe('job known');
    expect(fromStore.counts).toMatchObject({ done: 13, failed: 5, pending: 1, invalid: 1 });
    expect(comparable(fromStore)).toEqual(comparable(fromJournal));
    expect(renderReport(fromStore)).toContain('data-chart="delays"');
    await expect(collectJobReport(store, 'nope')).rejects.toBeInstanceOf(UnknownJobError);
  });

  it('dogged report --store --job writes the page; an unknown job exits 2', async () => {
    const out = join(dir, 'job.html');
    const ok = await runCli(['report', '--store', store, '--job', 'known', '-o', out]);
    expect(ok.code).toBe(0);
    const unknown = await runCli(['report', '--store', store, '--job', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/nope/);
  });
});
