import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExportRecord, exportRecords, Journal } from '../../src/index.js';
import { type CliRun, runCli, startCli, tempDir, writeLines } from '../batch/batch-support.js';
import {
  type Sandbox,
  sandbox,
  startWorker,
  stopWorker,
  waitForJob,
  workerReady,
} from '../batch/distributed/distributed-support.js';
import { available, needs } from '../support/needs.js';

/**
 * Issue 14, "no poison lines" (local runner): a line that kills its runner every time it is
 * fetched is failed with reason `crashed-runner` on the 4th run instead of being fetched again
 * for ever; every other line finishes; `dogged retry-failed` can still retry it.
 */

let server: Server;
let base: string;
/** The runner to kill -9 when the poison line arrives (undefined: answer it normally). */
let victim: { kill(signal: NodeJS.Signals): boolean } | undefined;
let poisonArrivals = 0;
let dir: string;
let cleanup: () => void;
let box: Sandbox;

beforeAll(async () => {
  ({ dir, cleanup } = tempDir('dogged-poison-'));
  if (available('redis', 'postgres')) box = await sandbox(9);
  server = createServer((req, res) => {
    if (req.url?.startsWith('/poison')) {
      poisonArrivals++;
      // The line "kills its runner" while its body downloads (as a huge body exhausting memory
      // would): the test kills the runner process 300 ms into the body.
      const runner = victim;
      if (runner) {
        res.writeHead(200, { 'content-length': '1000000' });
        res.write('x'.repeat(1000));
        setTimeout(() => runner.kill('SIGKILL'), 300);
        return; // the body never ends
      }
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`ok ${req.url}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(async () => {
  await box?.cleanup();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(() => resolve(undefined)));
  cleanup();
});

function exported(db: string): ExportRecord[] {
  const journal = Journal.open(db, { readonly: true });
  try {
    return [...exportRecords(journal, {})];
  } finally {
    journal.close();
  }
}

const flags = ['--concurrency', '1', '--per-host', '1', '--retries', '0', '-q'];

describe('no poison lines in the local runner', () => {
  it('a line in flight when the runner died 3 times fails with crashed-runner; the rest finish', async () => {
    const input = writeLines(dir, 'urls.txt', [
      `${base}/a`,
      `${base}/b`,
      `${base}/poison`,
      `${base}/c`,
      `${base}/d`,
    ]);
    const db = `${dir}/run.sqlite`;
    for (let round = 1; round <= 3; round++) {
      const run = startCli(['batch', input, '--db', db, ...flags]);
      victim = run.child;
      expect(await run.exited).toBe(-1); // killed by the poison line
      expect(poisonArrivals).toBe(round);
    }
    // Run 4: the poison line is not fetched again; every other line finishes.
    const fourth = await runCli(['batch', input, '--db', db, ...flags]);
    expect(poisonArrivals).toBe(3);
    expect(fourth.code).toBe(10); // finished, one line failed
    const records = exported(db);
    const poison = records.find((r) => r.url?.endsWith('/poison'));
    expect(poison).toMatchObject({ state: 'failed', reason: 'crashed-runner' });
    expect(poison?.error?.code).toBe('ERR_DOGGED_CRASHED_RUNNER');
    expect(records.filter((r) => r.state === 'done').map((r) => r.url)).toEqual([
      `${base}/a`,
      `${base}/b`,
      `${base}/c`,
      `${base}/d`,
    ]);

    // status and export show the reason.
    const status = await runCli(['status', db]);
    expect(status.stdout + status.stderr).toMatch(/in flight when the runner died 3 times/);
    const jsonl = await runCli(['export', db, '--format', 'jsonl']);
    expect(jsonl.stdout).toMatch(/"reason":"crashed-runner"/);

    // retry-failed still retries it, with its crash count started again.
    victim = undefined;
    const retried = await runCli(['retry-failed', db, ...flags]);
    expect(retried.code).toBe(0);
    expect(poisonArrivals).toBe(4);
    const after = exported(db).find((r) => r.url?.endsWith('/poison'));
    expect(after).toMatchObject({ state: 'done', reason: 'ok' });
  }, 120_000);

  it('a journal made before the crash count (no unfinished column) still opens and runs', async () => {
    const input = writeLines(dir, 'old.txt', [`${base}/e`, `${base}/f`]);
    const db = `${dir}/old.sqlite`;
    // Make a journal, then take the column away as the previous dogged would have made it.
    expect((await runCli(['batch', input, '--db', db, ...flags])).code).toBe(0);
    const journal = Journal.open(db);
    journal.db.exec('ALTER TABLE requests DROP COLUMN unfinished');
    journal.db.exec("UPDATE requests SET state = 'in_flight' WHERE line = 2");
    journal.close();
    const readonly = Journal.open(db, { readonly: true });
    expect(readonly.counts().in_flight).toBe(1);
    readonly.close();
    const again = await runCli(['batch', input, '--db', db, ...flags]);
    expect(again.code).toBe(0);
    const columns = Journal.open(db, { readonly: true });
    const names = (
      columns.db.prepare('PRAGMA table_info(requests)').all() as { name: string }[]
    ).map((c) => c.name);
    columns.close();
    expect(names).toContain('unfinished');
  }, 60_000);
});

needs('redis', 'postgres')('no poison lines in the distributed backend', () => {
  it('a line whose worker was killed 3 times fails with crashed-runner on the 4th; the rest finish', async () => {
    poisonArrivals = 0;
    const input = writeLines(dir, 'fleet.txt', [
      `${base}/g`,
      `${base}/h`,
      `${base}/poison?fleet`,
      `${base}/i`,
      `${base}/j`,
    ]);
    const job = 'poison';
    const target = ['--queue', box.queue, '--store', box.store, '--job', job];
    const enqueued = await runCli([
      'batch',
      input,
      ...target,
      '--retries',
      '0',
      '--lock-duration',
      '1s',
      '--enqueue-only',
    ]);
    expect(enqueued.code).toBe(0);
    const workerFlags = ['--concurrency', '1'];
    for (let round = 1; round <= 3; round++) {
      const worker: CliRun = startWorker(box, job, workerFlags);
      victim = worker.child;
      expect(await worker.exited).toBe(-1); // killed while the poison line was in flight
      expect(poisonArrivals).toBe(round);
    }
    victim = undefined; // from now on the line would be answered: it must not be fetched at all
    const last = startWorker(box, job, workerFlags);
    await workerReady(last);
    await waitForJob(box, job, 5, 60_000);
    expect(await stopWorker(last)).toBe(0);
    expect(poisonArrivals).toBe(3);
    const { rows } = await box.pg.query<{
      url: string;
      state: string;
      reason: string;
      error_code: string | null;
    }>(
      `SELECT url, state, reason, error_code FROM ${box.schema}.requests WHERE job = $1 ORDER BY line`,
      [job],
    );
    expect(rows.map((r) => [r.url.replace(base, ''), r.state, r.reason, r.error_code])).toEqual([
      ['/g', 'done', 'ok', null],
      ['/h', 'done', 'ok', null],
      ['/poison?fleet', 'failed', 'crashed-runner', 'ERR_DOGGED_CRASHED_RUNNER'],
      ['/i', 'done', 'ok', null],
      ['/j', 'done', 'ok', null],
    ]);
    const status = await runCli(['status', ...target]);
    expect(status.stdout + status.stderr).toMatch(/in flight when the runner died 3 times/);
  }, 180_000);
});
