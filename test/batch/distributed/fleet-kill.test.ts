import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ChaosServer, startChaosServer } from '../../../src/testing/index.js';
import { available, needs } from '../../support/needs.js';
import { runCli, tempDir, waitFor } from '../batch-support.js';
import {
  type Sandbox,
  sandbox,
  startWorker,
  stopWorker,
  storeCounts,
  waitForJob,
  workerReady,
} from './distributed-support.js';

// Every suite here needs Redis and PostgreSQL: skipped without them, failing at once on CI (support/needs.ts).
const describe = needs('redis', 'postgres');

let chaos: ChaosServer;
let box: Sandbox;
let dir: string;
let cleanup: () => void;
let arrivals = 0;
beforeAll(async () => {
  chaos = await startChaosServer({ logLimit: 100, onArrival: () => void arrivals++ });
  if (available('redis', 'postgres')) box = await sandbox(11);
  ({ dir, cleanup } = tempDir('dogged-fleet-'));
});
afterAll(async () => {
  await chaos.close();
  await box?.cleanup();
  cleanup();
});

const LINES = 5000;

interface Expected {
  state: string;
  status: number | null;
  reason: string;
}

/** Mixed faults, each line's final outcome known in advance whatever happens to the workers. */
function writeInput(path: string): Map<number, Expected> {
  const u = chaos.url;
  const lines: string[] = [];
  const expected = new Map<number, Expected>();
  const ok: Expected = { state: 'done', status: 200, reason: 'ok' };
  for (let i = 0; i < LINES; i++) {
    const kind = i % 8;
    let line: string;
    let outcome = ok;
    if (i % 40 === 5) {
      line = `${u}/status/500?key=e${i}`;
      outcome = { state: 'failed', status: 500, reason: 'retries-exhausted' };
    } else if (kind === 0) line = `${u}/flaky/s${i}?fail=1&status=503`;
    else if (kind === 1) line = `${u}/flaky/r${i}?fail=1&mode=reset`;
    else if (kind === 2) line = `${u}/flaky/t${i}?fail=1&mode=truncate`;
    else if (kind === 3) {
      line = `${u}/status/404?key=n${i}`;
      outcome = { state: 'failed', status: 404, reason: 'http-status' };
    } else if (kind === 4) line = `{"url":"${u}/bytes/48?seed=${i}","key":"k${i}"}`;
    else line = `${u}/delay/20?key=d${i}`;
    lines.push(line);
    expected.set(lines.length, outcome);
  }
  lines.push('this line is not a URL');
  expected.set(lines.length, { state: 'invalid', status: null, reason: 'invalid' });
  writeFileSync(path, `${lines.join('\n')}\n`);
  return expected;
}

interface Row {
  line: number;
  state: string;
  status: number | null;
  reason: string;
  attempts: number;
  history: unknown[] | null;
}

describe('the distributed backend: 3 workers, kill -9 one of them mid-run', () => {
  it('records every line exactly once with the right outcome, and a re-run enqueues nothing twice', async () => {
    const input = join(dir, 'urls.txt');
    const expected = writeInput(input);
    const job = 'fleet';
    const target = ['--queue', box.queue, '--store', box.store, '--job', job];
    const flags = [
      '--retries',
      '2',
      '--backoff',
      '20ms',
      '--per-host',
      '24',
      '--timeout',
      '5s,5s',
      '--lock-duration',
      '2s',
    ];

    const enqueued = await runCli(['batch', input, ...target, ...flags, '--enqueue-only']);
    expect(enqueued.stderr).toBe('');
    expect(enqueued.code).toBe(0);
    expect(enqueued.stdout).toMatch(/job fleet: 5,001 lines recorded, 5,000 waiting for workers/);

    const workerFlags = ['--concurrency', '12', '--progress-interval', '1s'];
    const workers = [0, 1, 2].map(() => startWorker(box, job, workerFlags));
    await Promise.all(workers.map(workerReady));
    await waitFor(() => arrivals > 1500, 'a third of the work', 60_000, 20);
    const victim = workers[0];
    victim?.child.kill('SIGKILL');
    expect(await victim?.exited).toBe(-1);
    const restarted = startWorker(box, job, workerFlags);
    workers[0] = restarted;

    await waitForJob(box, job, LINES + 1, 150_000);
    const codes = await Promise.all(workers.map(stopWorker));
    expect(codes).toEqual([0, 0, 0]);
    // Each worker reported the job's progress, fleet-wide, in the local runner's words.
    expect(workers[1]?.stderr()).toMatch(
      /dogged worker: job fleet: [\d,]+\/5,001 \([\d.]+%\) · done [\d,]+ · failed/,
    );

    const { rows } = await box.pg.query<Row>(
      `SELECT line, state, status, reason, attempts, history FROM ${box.schema}.requests WHERE job = $1 ORDER BY line`,
      [job],
    );
    expect(rows).toHaveLength(LINES + 1);
    const wrong = rows.filter((r) => {
      const e = expected.get(r.line);
      return !e || e.state !== r.state || e.status !== r.status || e.reason !== r.reason;
    });
    expect(wrong).toEqual([]);
    // One recorded attempt per attempt number: a line executed twice was recorded once.
    const doubled = rows.filter(
      (r) => r.state !== 'invalid' && r.attempts !== (r.history?.length ?? 0) + 1,
    );
    expect(doubled).toEqual([]);
    // The queue's counters counted each line once too.
    const stats = await box.redis.hgetall(`dogged:${job}:x:stats`);
    const counts = await storeCounts(box, job);
    expect({
      done: Number(stats.done),
      failed: Number(stats.failed),
      invalid: Number(stats.invalid),
    }).toEqual({
      done: counts.done,
      failed: counts.failed,
      invalid: counts.invalid,
    });
    expect(Number(stats.lines)).toBe(LINES + 1);

    const before = arrivals;
    const again = await runCli(['batch', input, ...target, ...flags, '-q']);
    expect(again.code).toBe(10);
    expect(again.stdout).toMatch(
      /job fleet: 5,001 lines in .*: \d[\d,]* done, \d[\d,]* failed, 1 invalid, 0 left/,
    );
    expect(arrivals).toBe(before);
    expect(await storeCounts(box, job)).toEqual(counts);

    const status = await runCli(['status', '--queue', box.queue, '--job', job, '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ lines: LINES + 1, left: 0, invalid: 1 });
  }, 200_000);
});
