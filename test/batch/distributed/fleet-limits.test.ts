import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { ChaosArrival } from '../../../src/testing/index.js';
import { type ChaosServer, startChaosServer } from '../../../src/testing/index.js';
import { available, needs } from '../../support/needs.js';
import type { CliRun } from '../batch-support.js';
import { runCli, tempDir, waitFor, writeLines } from '../batch-support.js';
import {
  type Sandbox,
  sandbox,
  startWorker,
  stopWorker,
  waitForJob,
} from './distributed-support.js';

let chaos: ChaosServer;
let box: Sandbox;
let dir: string;
let cleanup: () => void;
let arrivals: ChaosArrival[] = [];
let workers: CliRun[] = [];
beforeAll(async () => {
  chaos = await startChaosServer({ logLimit: 100, onArrival: (a) => void arrivals.push(a) });
  if (available('redis', 'postgres')) box = await sandbox(12);
  ({ dir, cleanup } = tempDir('dogged-limits-'));
});
afterEach(async () => {
  await Promise.all(workers.map(stopWorker));
  workers = [];
  arrivals = [];
  chaos.reset();
});
afterAll(async () => {
  await chaos.close();
  await box?.cleanup();
  cleanup();
});

const input = (name: string, lines: string[]): string => writeLines(dir, name, lines);

/** Three workers waiting for `job`, then the job enqueued: all three start on it together. */
async function runWithThreeWorkers(
  job: string,
  path: string,
  flags: string[],
  lines: number,
): Promise<void> {
  workers = [0, 1, 2].map(() => startWorker(box, job, ['--concurrency', '8']));
  await Promise.all(
    workers.map((w) =>
      waitFor(() => /no configuration yet/.test(w.stderr()), 'a waiting worker', 30_000, 20),
    ),
  );
  const target = ['--queue', box.queue, '--store', box.store, '--job', job];
  const enqueued = await runCli(['batch', path, ...target, ...flags, '--enqueue-only', '-q']);
  expect(enqueued.code).toBe(0);
  await waitForJob(box, job, lines, 90_000);
}

needs('redis', 'postgres')('fleet-wide politeness', () => {
  it('holds the per-host rate limit across 3 workers (arrivals per second at the server)', async () => {
    const lines = Array.from({ length: 120 }, (_, i) => `${chaos.url}/bytes/16?key=p${i}`);
    await runWithThreeWorkers(
      'paced',
      input('paced.txt', lines),
      // Chunks of 10 lines: 120 lines are shared by the three workers.
      ['--rate', '20', '--per-host', '8', '--chunk-size', '10'],
      120,
    );
    const times = arrivals.map((a) => a.timeMs).sort((a, b) => a - b);
    expect(times).toHaveLength(120);
    // The most arrivals within any window: the limiter lets at most `rate` starts per second
    // plus one (a start at each edge of a window); requests reach the server a few ms after
    // they start, unevenly on a busy machine: a tolerance of 20% over one second, less over 3 s.
    const most = (windowMs: number): number => {
      let best = 0;
      for (let i = 0, j = 0; j < times.length; j++) {
        while ((times[j] as number) - (times[i] as number) >= windowMs) i++;
        best = Math.max(best, j - i + 1);
      }
      return best;
    };
    expect(most(1000)).toBeLessThanOrEqual(24);
    expect(most(3000)).toBeLessThanOrEqual(64);
    // Without the limit 120 small requests take well under a second.
    expect((times[times.length - 1] as number) - (times[0] as number)).toBeGreaterThan(4000);
    // Every worker took part: the limit held for the fleet, not per worker.
    const { rows } = await box.pg.query<{ n: number }>(
      `SELECT count(DISTINCT worker)::int AS n FROM ${box.schema}.requests WHERE job = 'paced'`,
    );
    expect(rows[0]?.n).toBe(3);
  }, 120_000);

  it('a Retry-After seen by one worker holds every worker off that host', async () => {
    const lines = Array.from({ length: 600 }, (_, i) =>
      i === 300
        ? `${chaos.url}/flaky/ra?fail=1&status=503&retry-after=3`
        : `${chaos.url}/delay/30?key=c${i}`,
    );
    await runWithThreeWorkers(
      'cool',
      input('cool.txt', lines),
      ['--per-host', '6', '--retries', '2', '--backoff', '20ms', '--chunk-size', '20'],
      600,
    );
    const hits = arrivals.filter((a) => a.key === 'ra');
    expect(hits).toHaveLength(2);
    const t = (hits[0] as ChaosArrival).timeMs;
    // Traffic was flowing when the 503 came...
    expect(arrivals.filter((a) => a.timeMs > t - 500 && a.timeMs < t).length).toBeGreaterThan(10);
    // ...then nobody sent anything to that host until the Retry-After had passed...
    // (Requests admitted just before the hold was set may still arrive in its first moments.)
    const held = arrivals.filter((a) => a.timeMs > t + 600 && a.timeMs < t + 2600);
    expect(held).toEqual([]);
    // ...and the line itself came back after it.
    expect((hits[1] as ChaosArrival).timeMs - t).toBeGreaterThanOrEqual(2900);
    const { rows } = await box.pg.query<{ n: number }>(
      `SELECT count(DISTINCT worker)::int AS n FROM ${box.schema}.requests WHERE job = 'cool'`,
    );
    expect(rows[0]?.n).toBe(3);
  }, 120_000);
});
