import { afterAll, beforeAll, expect, it } from 'vitest';
import { runBatch } from '../../../src/index.js';
import { type ChaosServer, startChaosServer } from '../../../src/testing/index.js';
import { available, needs } from '../../support/needs.js';
import { type Sandbox, sandbox } from './distributed-support.js';

let box: Sandbox;
let chaos: ChaosServer;
beforeAll(async () => {
  if (available('redis', 'postgres')) box = await sandbox(5);
  chaos = await startChaosServer();
});
afterAll(async () => {
  await chaos.close();
  await box?.cleanup();
});

const LINES = 12;

/**
 * A job whose every line fails once (503) then answers, with full jitter over 0..1 s: the delay
 * each line drew before its retry, by line.
 */
async function delaysOf(job: string, seed: number): Promise<number[]> {
  const result = await runBatch({
    queue: box.queue,
    store: box.store,
    job,
    // Each job its own flaky keys: every line fails once in every job.
    input: Array.from({ length: LINES }, (_, i) => `${chaos.url}/flaky/${job}-${i}?fail=1`),
    seed,
    perHost: LINES,
    chunkSize: 4,
    retry: { total: 2, backoff: 1000, maxBackoff: 1000 },
    budget: false,
  });
  expect(result.counts.done).toBe(LINES);
  const { rows } = await box.pg.query<{ delay: number }>(
    `SELECT (history->0->>'delayMs')::float8 AS delay FROM ${box.schema}.requests WHERE job = $1 ORDER BY line`,
    [job],
  );
  return rows.map((r) => r.delay);
}

needs('redis', 'postgres')('--seed in a distributed job', () => {
  it('gives each line the same jitter in every run of the job; another seed, other waits', async () => {
    const [a, b, c] = await Promise.all([
      delaysOf('seed-a', 7),
      delaysOf('seed-b', 7),
      delaysOf('seed-c', 8),
    ]);
    expect(a).toHaveLength(LINES);
    // Drawn, not constant: the waits spread over the jitter's range.
    expect(new Set(a).size).toBe(LINES);
    for (const d of a) expect(d).toBeGreaterThanOrEqual(0);
    for (const d of a) expect(d).toBeLessThanOrEqual(1000);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(c.filter((d, i) => d === a[i])).toEqual([]);
  }, 60_000);
});
