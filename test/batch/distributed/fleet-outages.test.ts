import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ChaosServer, startChaosServer } from '../../../src/testing/index.js';
import { available, needs } from '../../support/needs.js';
import { runCli, startCli, tempDir, waitFor } from '../batch-support.js';
import {
  freePort,
  PG_URL,
  type Sandbox,
  sandbox,
  shutdownRedisServer,
  startRedisServer,
  startWorker,
  stopWorker,
} from './distributed-support.js';

let chaos: ChaosServer;
let dir: string;
let cleanup: () => void;
let arrivals = 0;
let port: number;
let redisServer: ChildProcessWithoutNullStreams | undefined;
let box: Sandbox;
beforeAll(async () => {
  chaos = await startChaosServer({ logLimit: 100, onArrival: () => void arrivals++ });
  ({ dir, cleanup } = tempDir('dogged-outages-'));
  if (!available('redis-server', 'postgres')) return; // skipped, or failing on CI: needs.ts
  port = await freePort();
  redisServer = await startRedisServer(port, dir);
  box = await sandbox(0, `redis://127.0.0.1:${port}`);
});
afterAll(async () => {
  await box?.cleanup();
  if (redisServer) await shutdownRedisServer(port, redisServer);
  await chaos.close();
  cleanup();
});

needs('redis-server', 'postgres')('outages of Redis and PostgreSQL', () => {
  it('survives a Redis restart (AOF) and dropped PostgreSQL connections mid-run: nothing lost or recorded twice', async () => {
    const lines = Array.from({ length: 1500 }, (_, i) =>
      i % 10 === 3
        ? `${chaos.url}/flaky/x${i}?fail=1&status=503`
        : `${chaos.url}/delay/10?key=r${i}`,
    );
    const path = join(dir, 'urls.txt');
    writeFileSync(path, `${lines.join('\n')}\n`);
    const job = 'outage';
    const helper = startWorker(box, job, ['--concurrency', '8', '--lock-duration', '2s']);
    const run = startCli([
      'batch',
      path,
      '--queue',
      box.queue,
      '--store',
      box.store,
      '--job',
      job,
      '--per-host',
      '16',
      '--concurrency',
      '8',
      '--backoff',
      '20ms',
      '--lock-duration',
      '2s',
      '--progress-interval',
      '500ms',
    ]);
    await waitFor(() => arrivals > 300, 'the run to be under way', 60_000, 20);
    await shutdownRedisServer(port, redisServer as ChildProcessWithoutNullStreams);
    const downAt = arrivals;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    redisServer = await startRedisServer(port, dir);
    await waitFor(() => arrivals > downAt + 200, 'work to go on after the restart', 60_000, 20);
    // Every connection of dogged to PostgreSQL is cut: the pools reconnect.
    const cut = await box.pg.query<{ ended: boolean }>(
      `SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE application_name = 'dogged' AND pid <> pg_backend_pid()`,
    );
    // dogged's connections are found by their application_name: were any cut at all?
    expect(cut.rows.filter((r) => r.ended).length).toBeGreaterThanOrEqual(1);
    expect(await run.exited).toBe(0);
    expect(run.stdout()).toMatch(
      /job outage: 1,500 lines in .*: 1,500 done, 0 failed, 0 invalid, 0 left/,
    );
    expect(await stopWorker(helper)).toBe(0);

    const { rows } = await box.pg.query<{
      line: number;
      state: string;
      attempts: number;
      history: unknown[] | null;
    }>(
      `SELECT line, state, attempts, history FROM ${box.schema}.requests WHERE job = $1 ORDER BY line`,
      [job],
    );
    expect(rows).toHaveLength(1500);
    expect(rows.filter((r) => r.state !== 'done')).toEqual([]);
    expect(rows.filter((r) => r.attempts !== (r.history?.length ?? 0) + 1)).toEqual([]);
  }, 180_000);

  it('names Redis or PostgreSQL and where when either is unreachable at start (exit 13, 14)', async () => {
    const path = join(dir, 'one.txt');
    writeFileSync(path, `${chaos.url}/status/200\n`);
    const closed = await freePort();
    const noRedis = await runCli([
      'batch',
      path,
      '--queue',
      `redis://127.0.0.1:${closed}/0`,
      '--store',
      box.store,
      '--job',
      'x',
    ]);
    expect(noRedis.code).toBe(13);
    expect(noRedis.stderr).toMatch(
      new RegExp(
        `cannot reach Redis \\(--queue\\) at redis://127\\.0\\.0\\.1:${closed}/0: connect ECONNREFUSED`,
      ),
    );
    const badStore = PG_URL.replace(/:\d+\//, `:${closed}/`);
    const noStore = await runCli(['worker', '--queue', box.queue, '--store', badStore]);
    expect(noStore.code).toBe(14);
    expect(noStore.stderr).toMatch(
      new RegExp(
        `cannot reach PostgreSQL \\(--store\\) at .*:${closed}/test: connect ECONNREFUSED`,
      ),
    );
  }, 60_000);

  it('exits 2 for a half-given distributed target or a journal and a queue at once', async () => {
    const path = join(dir, 'one.txt');
    const half = await runCli(['batch', path, '--queue', box.queue, '--job', 'x']);
    expect(half.code).toBe(2);
    expect(half.stderr).toMatch(/needs --store too/);
    const both = await runCli([
      'batch',
      path,
      '--db',
      join(dir, 'a.sqlite'),
      '--queue',
      box.queue,
      '--store',
      box.store,
      '--job',
      'x',
    ]);
    expect(both.code).toBe(2);
    const badJob = await runCli([
      'batch',
      path,
      '--queue',
      box.queue,
      '--store',
      box.store,
      '--job',
      'no spaces',
    ]);
    expect(badJob.code).toBe(2);
    expect(badJob.stderr).toMatch(/a job name must be/);
    const unknown = await runCli(['status', '--queue', box.queue, '--job', 'never-ran']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no job named "never-ran"/);
  }, 60_000);
});
