/**
 * Distributed progress tells the truth about the lines in flight and retrying (issue 16): the
 * batch process's own attempts count as in flight, never more than the per-host limit on one
 * host, and a job with 0 retries shows none retrying.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { runCli, tempDir, writeLines } from '../batch/batch-support.js';
import { type Sandbox, sandbox } from '../batch/distributed/distributed-support.js';
import { available, needs } from '../support/needs.js';
import { piped } from './cli-support.js';

// Needs Redis and PostgreSQL: skipped without them, failing at once on CI (support/needs.ts).
const describe = needs('redis', 'postgres');

let chaos: ChaosServer;
let box: Sandbox;
let dir: string;
beforeAll(async () => {
  chaos = await startChaosServer();
  // Redis database 1: this file's own.
  if (available('redis', 'postgres')) box = await sandbox(1);
  ({ dir } = tempDir('dogged-dprogress-'));
});
afterAll(async () => {
  await chaos.close();
  await box?.cleanup(); // undefined when Redis or PostgreSQL is missing
});

describe('distributed progress', () => {
  it('counts its own lines in flight, within --per-host, and none retrying with 0 retries', async () => {
    const input = writeLines(
      dir,
      'slow.txt',
      Array.from({ length: 6 }, (_, i) => `${chaos.url}/delay/800?key=dp${i}`),
    );
    const { code, stderr } = await runCli([
      'batch',
      input,
      '--queue',
      box.queue,
      '--store',
      box.store,
      '--job',
      'dprogress',
      '--retries',
      '0',
      '--per-host',
      '2',
      '--progress-interval',
      '100ms',
    ]);
    expect(code).toBe(0);
    const lines = stderr.split('\n').filter((l) => l.startsWith('dogged batch: '));
    const inFlight = lines.map((l) => Number(/in flight (\d+)/.exec(l)?.[1]));
    const retrying = lines.map((l) => Number(/retrying (\d+)/.exec(l)?.[1]));
    expect(lines.length).toBeGreaterThan(1);
    expect(Math.max(...inFlight)).toBeGreaterThan(0);
    expect(Math.max(...inFlight)).toBeLessThanOrEqual(2);
    expect(retrying.every((n) => n === 0)).toBe(true);

    // dogged status --queue ... | head: a reader gone ends it quietly.
    const status = await piped(['status', '--queue', box.queue, '--job', 'dprogress'], 'true');
    expect(status.stderr).not.toMatch(/EPIPE|unexpected error|^\s+at /m);
    expect(status.code).toBe(0);
  });
});
