/**
 * `dogged ... | head`: a reader that goes away ends the command quietly, with exit 0 (or the
 * code of what completed), no `write EPIPE`, no stack (issue 16, "Pipes").
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBatch } from '../../src/batch/runner.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { runCli, tempDir, writeLines } from '../batch/batch-support.js';
import { piped } from './cli-support.js';

let chaos: ChaosServer;
let dir: string;
let big: string;
beforeAll(async () => {
  chaos = await startChaosServer();
  ({ dir } = tempDir('dogged-pipes-'));
  big = join(dir, 'big.sqlite');
  // 3,000 invalid lines: an export of about 1 MB, more than a pipe holds.
  await runBatch({
    db: big,
    input: Array.from({ length: 3000 }, (_, i) => `not a url, line ${i} ${'x'.repeat(200)}`),
  });
});
afterAll(async () => {
  await chaos.close();
});

describe('a closed stdout ends the command quietly', () => {
  it('plan | head -2, export | head, status | true, get | head -c 10: exit 0, no EPIPE', async () => {
    const runs = await Promise.all([
      piped(['plan', '--retries', '1000', '--samples', '10'], 'head -2'),
      piped(['export', big], 'head -3'),
      piped(['export', big, '--format', 'csv'], 'head -3'),
      piped(['status', big], 'true'),
      piped(['get', `${chaos.url}/bytes/2000000`], 'head -c 10'),
    ]);
    const [plan, jsonl, csv, , get] = runs;
    for (const run of runs) {
      expect(run.stderr).not.toMatch(/EPIPE|unexpected error|^\s+at /m);
      expect(run.code).toBe(0);
    }
    expect(plan?.stdout.split('\n')[0]).toContain('1000 retries (1001 attempts)');
    expect(jsonl?.stdout.split('\n').filter(Boolean)).toHaveLength(3);
    expect(csv?.stdout.split('\n')[0]).toMatch(/^line,key,method/);
    expect(get?.stdout).toHaveLength(10);
  });

  it('batch | true: the summary is lost, the journal is whole, the exit code is the batch’s', async () => {
    const input = writeLines(dir, 'lines.txt', ['not a url', 'nor this']);
    const db = join(dir, 'piped.sqlite');
    const batch = await piped(['batch', input, '--db', db, '-q', '--json'], 'true');
    expect(batch.stderr).not.toMatch(/EPIPE|unexpected error/);
    expect(batch.code).toBe(10);
    const status = await runCli(['status', db, '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ total: 2, counts: { invalid: 2 } });
  });
});
