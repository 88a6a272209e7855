import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ExportRecord, exportRecords, Journal, seededRandom } from '../../src/index.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { runCli, startCli, tempDir, waitFor } from './batch-support.js';

let chaos: ChaosServer;
let dir: string;
let cleanup: () => void;
beforeAll(async () => {
  chaos = await startChaosServer({ logLimit: 100 });
  ({ dir, cleanup } = tempDir());
});
afterAll(async () => {
  await chaos.close();
  cleanup();
});

const LINES = 400;

/**
 * Deterministic content: every line's final answer is the same in every run. The slow lines
 * keep the work longer than the ten kill rounds together (at most 3 s), so every round is killed
 * mid-run even on a fast, idle machine.
 */
function writeInput(path: string): void {
  const u = chaos.url;
  const lines: string[] = [];
  for (let i = 0; i < LINES; i++) {
    const kind = i % 8;
    lines.push(
      kind === 0
        ? `${u}/flaky/s${i}?fail=1&status=503`
        : kind === 1
          ? `${u}/flaky/r${i}?fail=1&mode=reset`
          : kind === 2
            ? `${u}/flaky/t${i}?fail=1&mode=truncate`
            : kind === 3
              ? `${u}/status/404?key=n${i}`
              : kind === 4
                ? `{"url":"${u}/bytes/48?seed=${i}","key":"k${i}"}`
                : `${u}/delay/60?key=d${i}`,
    );
  }
  lines.splice(7, 0, 'this line is not a URL');
  writeFileSync(path, `${lines.join('\n')}\n`);
}

/** What must be the same whatever killed the run: everything but timings and attempt counts. */
function content(record: ExportRecord): unknown {
  let body: unknown = record.body;
  if (record.url?.includes('/flaky/') && typeof body === 'string') {
    // The flaky endpoint reports which attempt succeeded: that depends on kills, not content.
    const { attempt: _attempt, ...rest } = JSON.parse(body) as Record<string, unknown>;
    body = rest;
  }
  return {
    line: record.line,
    key: record.key,
    method: record.method,
    url: record.url,
    raw: record.raw,
    state: record.state,
    status: record.status,
    reason: record.reason,
    error: record.error?.code ?? null,
    body,
  };
}

function exported(db: string): ExportRecord[] {
  const journal = Journal.open(db, { readonly: true });
  try {
    return [...exportRecords(journal, { bodies: true })];
  } finally {
    journal.close();
  }
}

const flags = ['--concurrency', '2', '--per-host', '2', '--backoff', '20ms', '--seed', '7', '-q'];

describe('kill -9 and resume', () => {
  it('loses nothing and records every line exactly once, whenever the runner is killed', async () => {
    const input = join(dir, 'urls.txt');
    writeInput(input);

    const reference = join(dir, 'reference.sqlite');
    const uninterrupted = await runCli(['batch', input, '--db', reference, ...flags]);
    expect(uninterrupted.code).toBe(10); // finished; the 404s and the invalid line failed

    chaos.reset();
    const db = join(dir, 'killed.sqlite');
    const random = seededRandom(42);
    let kills = 0;
    for (let round = 0; round < 10; round++) {
      const run = startCli(['batch', input, '--db', db, ...flags.slice(0, -1)]);
      // Running once it reports progress; then a seeded random moment later, kill -9.
      await waitFor(() => run.stderr().includes('dogged batch:'), 'the first progress line');
      await new Promise((resolve) => setTimeout(resolve, 20 + random() * 280));
      run.child.kill('SIGKILL');
      if ((await run.exited) === -1) kills++;
    }
    expect(kills).toBe(10);

    const resumed = await runCli(['batch', input, '--db', db, ...flags]);
    expect(resumed.code).toBe(10);

    const expected = exported(reference);
    const actual = exported(db);
    expect(actual).toHaveLength(LINES + 1);
    expect(new Set(actual.map((r) => r.line)).size).toBe(LINES + 1);
    expect(actual.filter((r) => r.state === 'pending' || r.state === 'in_flight')).toEqual([]);
    expect(actual.map(content)).toEqual(expected.map(content));
  }, 120_000);
});
