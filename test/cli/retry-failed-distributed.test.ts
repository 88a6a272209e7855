import { afterAll, beforeAll, it } from 'vitest';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { runCli, tempDir, writeLines } from '../batch/batch-support.js';
import { type Sandbox, sandbox, storeCounts } from '../batch/distributed/distributed-support.js';
import { available, needs } from '../support/needs.js';

// Every suite here needs Redis and PostgreSQL: skipped without them, failing at once on CI (support/needs.ts).
const describe = needs('redis', 'postgres');

let chaos: ChaosServer;
let box: Sandbox;
let dir: string;
let cleanup: () => void;
beforeAll(async () => {
  chaos = await startChaosServer();
  if (available('redis', 'postgres')) box = await sandbox(3);
  ({ dir, cleanup } = tempDir('dogged-rf-'));
});
afterAll(async () => {
  await chaos.close();
  await box?.cleanup();
  cleanup();
});

const JOB = 'rf';
const target = (job = JOB): string[] => ['--queue', box.queue, '--store', box.store, '--job', job];

/** The job's counters in Redis, as `dogged status --queue` reads them. */
async function stats(): Promise<Record<string, string>> {
  return box.redis.hgetall(`dogged:${JOB}:x:stats`);
}

interface Row {
  line: number;
  state: string;
  attempts: number;
  history: unknown;
  status: number | null;
  error_code: string | null;
  reason: string | null;
  body: Buffer | null;
  finished_at: string | null;
  worker: string | null;
  unfinished: number;
}

async function rows(): Promise<Row[]> {
  const { rows } = await box.pg.query<Row>(
    `SELECT line, state, attempts, history, status, error_code, reason, body, finished_at, worker, unfinished
     FROM ${box.schema}.requests WHERE job = $1 ORDER BY line`,
    [JOB],
  );
  return rows;
}

// The two tests share nothing (the second never reaches job rf): they run at the same time.
describe.concurrent('dogged retry-failed --queue --store --job', () => {
  it('resets the lines the filters pick, fixes the counters, then runs them', async ({
    expect,
  }) => {
    // Each /flaky key fails its first request, then answers 200: with --retries 0 the batch
    // fails them all; the second chance succeeds.
    const input = writeLines(dir, 'urls.txt', [
      `${chaos.url}/bytes/8`,
      `${chaos.url}/flaky/a?fail=1&status=503`,
      `${chaos.url}/flaky/b?fail=1&status=500`,
      `${chaos.url}/flaky/c?fail=1&status=404`,
      `${chaos.url}/flaky/d?fail=1&mode=reset`,
    ]);
    const batch = await runCli([
      'batch',
      input,
      ...target(),
      '--retries',
      '0',
      '--per-host',
      '3',
      '-q',
    ]);
    expect(batch.code).toBe(10);
    expect(batch.stdout).toMatch(/^job rf: 5 lines in .*: 1 done, 4 failed, 0 invalid, 0 left/);
    expect(await stats()).toMatchObject({ lines: '5', done: '1', failed: '4' });
    const host = new URL(chaos.url).host;
    expect((await stats())[`h:${host}:failed`]).toBe('4');

    // A worker that died three times with line 5 in flight made it crashed-runner.
    await box.pg.query(
      `UPDATE ${box.schema}.requests SET reason = 'crashed-runner', status = NULL,
         error_code = 'ERR_DOGGED_CRASHED_RUNNER', unfinished = 3 WHERE job = $1 AND line = 5`,
      [JOB],
    );

    // --status 5xx --reset-only: lines 2 and 3 only, pending again, enqueued, not run.
    const reset = await runCli(['retry-failed', ...target(), '--status', '5xx', '--reset-only']);
    expect(reset.code).toBe(0);
    expect(reset.stderr).toMatch(/^dogged retry-failed: 2 failed lines are pending again$/m);
    // The store's user name is shown as *** (as every URL credential), with a note.
    const shownStore = box.store.replace('postgres@', '***@');
    expect(reset.stderr).toContain(
      `dogged worker --queue ${box.queue} --store ${shownStore} --job rf`,
    );
    expect(reset.stderr).toContain(
      `dogged batch --queue ${box.queue} --store ${shownStore} --job rf`,
    );
    expect(reset.stderr).toContain('(secrets are shown as ***: give them again)');
    const after = await rows();
    expect(after.map((r) => [r.line, r.state])).toEqual([
      [1, 'done'],
      [2, 'pending'],
      [3, 'pending'],
      [4, 'failed'],
      [5, 'failed'],
    ]);
    for (const r of after.filter((r) => r.state === 'pending'))
      expect(r).toMatchObject({
        attempts: 0,
        history: null,
        status: null,
        error_code: null,
        reason: null,
        body: null,
        finished_at: null,
        worker: null,
      });
    expect(after[4]?.unfinished).toBe(3);
    expect(await stats()).toMatchObject({ lines: '5', done: '1', failed: '2' });
    expect((await stats())[`h:${host}:failed`]).toBe('2');
    const status = await runCli(['status', '--queue', box.queue, '--job', JOB]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^job rf on \S+: 5 lines: 1 done, 2 failed, 0 invalid, 2 left$/m);
    // The two lines are in one chunk of the queue.
    expect(status.stdout).toMatch(/queue\s+chunks of 250 lines: waiting 1 · running 0/);
    expect(status.stdout).toMatch(/hosts\s+127\.0\.0\.1:\d+\s+5 lines: 1 done, 2 failed/);

    // --code: the crashed-runner line, its crash count back to 0 (else it would fail again at
    // once), then the job runs here with the flags it was started with: every line but the 404
    // is done now.
    const retried = await runCli([
      'retry-failed',
      ...target(),
      '--code',
      'ERR_DOGGED_CRASHED_RUNNER',
      '-q',
    ]);
    expect(retried.stderr).toMatch(/^dogged retry-failed: 1 failed line is pending again$/m);
    expect(retried.code).toBe(10);
    expect(retried.stdout).toMatch(/^job rf: 5 lines in .*: 4 done, 1 failed, 0 invalid, 0 left/);
    expect(await storeCounts(box, JOB)).toEqual({ done: 4, failed: 1 });
    const final = await rows();
    expect(final.map((r) => [r.line, r.state, r.status, r.attempts])).toEqual([
      [1, 'done', 200, 1],
      [2, 'done', 200, 1],
      [3, 'done', 200, 1],
      [4, 'failed', 404, 1],
      [5, 'done', 200, 1],
    ]);
    expect(await stats()).toMatchObject({ lines: '5', done: '4', failed: '1' });
    expect((await stats())[`h:${host}:done`]).toBe('4');
    expect((await stats())[`h:${host}:failed`]).toBe('1');
    // The job's stored flags were applied again (not dogged batch's defaults).
    const config = JSON.parse((await box.redis.get(`dogged:${JOB}:x:config`)) ?? '{}');
    expect(config).toMatchObject({ perHost: 3, retry: { total: 0 } });
  }, 60_000);

  it('refuses a mix of both forms, half a target, an unknown job and unreachable servers', async ({
    expect,
  }) => {
    const [mixed, half, none, unknown, noRedis, noPg] = await Promise.all([
      runCli(['retry-failed', 'run.sqlite', ...target()]),
      runCli(['retry-failed', '--queue', box.queue, '--job', JOB]),
      runCli(['retry-failed']),
      runCli(['retry-failed', ...target('nosuchjob')]),
      runCli([
        'retry-failed',
        '--queue',
        'redis://127.0.0.1:1/0',
        '--store',
        box.store,
        '--job',
        JOB,
      ]),
      runCli([
        'retry-failed',
        '--queue',
        box.queue,
        '--store',
        'postgres://postgres@127.0.0.1:1/test',
        '--job',
        JOB,
      ]),
    ]);
    expect([mixed.code, mixed.stderr]).toEqual([
      2,
      'dogged retry-failed: give either a journal (run.sqlite) or --queue, --store and --job, not both\n',
    ]);
    expect([half.code, half.stderr]).toEqual([
      2,
      'dogged retry-failed: a distributed batch needs --store too\n',
    ]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/give a journal \(run\.sqlite\), or --queue, --store and --job/);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^dogged retry-failed: no job named "nosuchjob" in postgres:/);
    expect(noRedis.code).toBe(13);
    expect(noRedis.stderr).toMatch(/cannot reach Redis \(--queue\) at redis:\/\/127\.0\.0\.1:1\/0/);
    expect(noPg.code).toBe(14);
    expect(noPg.stderr).toMatch(
      /cannot reach PostgreSQL \(--store\) at postgres:\/\/\*\*\*@127\.0\.0\.1:1\/test/,
    );
  }, 60_000);
});
