import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { HistoryEntry } from '../../src/batch/journal-schema.js';
import { runBatch } from '../../src/index.js';
import { type CliRun, waitFor } from '../batch/batch-support.js';
import {
  type Sandbox,
  sandbox,
  startWorker,
  stopWorker,
  waitForJob,
} from '../batch/distributed/distributed-support.js';
import { available, needs } from '../support/needs.js';
import { type Arrival, startNginxLimiter, startUpstream } from './real-limiters.js';

/**
 * The distributed backend against nginx: two `dogged worker` processes share one host's pace
 * and pauses through Redis. What is checked: every line done, no retry spent on a 429, the
 * Retry-After pause obeyed by both workers, lines held (not failed) while the upstream is down.
 */

let box: Sandbox;
beforeAll(async () => {
  if (available('redis', 'postgres', 'nginx')) box = await sandbox(10);
});
afterAll(async () => {
  await box?.cleanup();
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Two workers waiting for `job` (they start on it together once it is enqueued). */
async function twoWorkers(job: string): Promise<CliRun[]> {
  const workers = [startWorker(box, job), startWorker(box, job)];
  cleanups.push(() => Promise.all(workers.map(stopWorker)));
  await Promise.all(
    workers.map((w) =>
      waitFor(() => /no configuration yet/.test(w.stderr()), 'a waiting worker', 30_000, 20),
    ),
  );
  return workers;
}

async function histories(job: string): Promise<HistoryEntry[][]> {
  const { rows } = await box.pg.query<{ history: HistoryEntry[] | null }>(
    `SELECT history FROM ${box.schema}.requests WHERE job = $1`,
    [job],
  );
  return rows.map((r) => r.history ?? []);
}

needs(
  'redis',
  'postgres',
  'nginx',
)('dogged worker ×2 against nginx limit_req', () => {
  it('with Retry-After: both workers pause the host, every line done, no retry spent on a 429', async () => {
    const nginx = await startNginxLimiter({ rate: 100, burst: 10, retryAfter: 1 });
    cleanups.push(() => nginx.close());
    const job = 'limits-ra';
    await twoWorkers(job);
    const urls = Array.from({ length: 400 }, (_, i) => `${nginx.url}/item/${i}`);
    await runBatch({ queue: box.queue, store: box.store, job, input: urls, enqueueOnly: true });
    await waitForJob(box, job, 400, 40_000);
    const arrivals = await nginx.arrivals();
    expect(arrivals.filter((a) => a.status === 200)).toHaveLength(400);
    const s429 = arrivals.filter((a) => a.status === 429).length;
    expect(s429 / arrivals.length).toBeLessThan(0.1);
    // After a 429 at t, nothing sent later arrives before t + 1 s: the pause is fleet-wide.
    // (Each worker may have perHost requests in flight when it begins.)
    let until = 0;
    let since = 0;
    let inPause = 0;
    let breakers = 0;
    for (const a of arrivals as Arrival[]) {
      if (a.ms < until && ++inPause > 8 && a.ms - since > 50) breakers++;
      if (a.status === 429 && a.ms >= until) {
        since = a.ms;
        until = a.ms + 995;
        inPause = 0;
      }
    }
    expect(breakers).toBe(0);
    const spent = (await histories(job)).flat().filter((h) => !h.throttled && !h.down);
    expect(spent).toEqual([]);
  }, 60_000);

  it('an upstream that dies for 1.5 s: every line done, none failed', async () => {
    const upstream = await startUpstream();
    cleanups.push(() => upstream.close());
    const nginx = await startNginxLimiter({ rate: 2000, burst: 200, upstream: upstream.url });
    cleanups.push(() => nginx.close());
    const job = 'limits-restart';
    await twoWorkers(job);
    const urls = Array.from({ length: 1000 }, (_, i) => `${nginx.url}/item/${i}`);
    await runBatch({
      queue: box.queue,
      store: box.store,
      job,
      input: urls,
      rate: 300,
      enqueueOnly: true,
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await upstream.stop();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await upstream.start();
    await waitForJob(box, job, 1000, 40_000);
    const { rows } = await box.pg.query<{ state: string; n: number }>(
      `SELECT state, count(*)::int AS n FROM ${box.schema}.requests WHERE job = $1 GROUP BY state`,
      [job],
    );
    expect(Object.fromEntries(rows.map((r) => [r.state, r.n]))).toEqual({ done: 1000 });
    expect((await nginx.stats()).byStatus[502]).toBeGreaterThan(0);
  }, 60_000);
});
