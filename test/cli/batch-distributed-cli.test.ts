import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { runCli, startCli, tempDir, waitFor, writeLines } from '../batch/batch-support.js';
import {
  type Sandbox,
  sandbox,
  settledTableStat,
} from '../batch/distributed/distributed-support.js';
import { available, needs } from '../support/needs.js';

// Every suite here needs Redis and PostgreSQL: skipped without them, failing at once on CI (support/needs.ts).
const describe = needs('redis', 'postgres');

let chaos: ChaosServer;
let box: Sandbox;
let dir: string;
let cleanup: () => void;
beforeAll(async () => {
  chaos = await startChaosServer();
  if (available('redis', 'postgres')) box = await sandbox(14);
  ({ dir, cleanup } = tempDir('dogged-dcli-'));
});
afterAll(async () => {
  await chaos.close();
  await box?.cleanup();
  cleanup();
});

const input = (name: string, lines: string[]): string => writeLines(dir, name, lines);

/** Scans of the sandbox's requests table, once settled (see {@link settledTableStat}). */
const settledScans = (): Promise<number> =>
  settledTableStat(box.pg, box.schema, 'seq_scan + coalesce(idx_scan, 0)');

const target = (job: string): string[] => [
  '--queue',
  box.queue,
  '--store',
  box.store,
  '--job',
  job,
];

describe('dogged batch --queue --store --job: the same command, output and exit codes', () => {
  it('prints the same progress lines and summary, and exits 10 when lines failed', async () => {
    const urls = input('mixed.txt', [
      `${chaos.url}/bytes/16?key=ok1`,
      `${chaos.url}/flaky/dv1?fail=1`,
      `${chaos.url}/status/404`,
      'nonsense',
    ]);
    const { code, stdout, stderr } = await runCli([
      'batch',
      urls,
      ...target('mixed'),
      '--backoff',
      '5ms',
      '-v',
    ]);
    expect(code).toBe(10);
    expect(stdout).toMatch(/^job mixed: 4 lines in .*: 2 done, 1 failed, 1 invalid, 0 left/);
    expect(stdout).toMatch(/retried\s+1 retries after: HTTP 503 ×1/);
    expect(stdout).toMatch(/failed\s+1 {2}HTTP 404 \(not retried\)/);
    expect(stderr).toMatch(/dogged batch: 4\/4 \(100\.0%\) · done 2 · failed 1 · invalid 1 ·/);
    expect(stderr).toMatch(
      /\/flaky\/dv1\?fail=1 \(line 2\) attempt 1\/6 failed: HTTP 503; retry in \d+ ms \(backoff\)/,
    );

    const status = await runCli([
      'status',
      '--queue',
      box.queue,
      '--job',
      'mixed',
      '--store',
      box.store,
    ]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/job mixed: 4 lines: 2 done, 1 failed, 1 invalid, 0 left/);
    expect(status.stdout).toMatch(/queue\s+chunks of 250 lines: waiting 0 · running 0 · delayed 0/);
    expect(status.stdout).toMatch(
      /hosts\s+127\.0\.0\.1:\d+\s+3 lines: 2 done, 1 failed · slots held 0\/4/,
    );
    expect(status.stdout).toMatch(/rate\s+[\d.]+ lines\/s/);

    const jsonl = await runCli(['export', '--store', box.store, '--job', 'mixed', '--bodies']);
    expect(jsonl.code).toBe(0);
    const records = jsonl.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(records.map((r) => [r.line, r.state, r.status])).toEqual([
      [1, 'done', 200],
      [2, 'done', 200],
      [3, 'failed', 404],
      [4, 'invalid', null],
    ]);
    expect(records[0]).toMatchObject({ bodySize: 16, bodyEncoding: 'base64' });
    expect(records[1].history).toHaveLength(1);
    const csvPath = join(dir, 'failed.csv');
    const csv = await runCli([
      'export',
      '--store',
      box.store,
      '--job',
      'mixed',
      '--format',
      'csv',
      '--state',
      'failed',
      '-o',
      csvPath,
    ]);
    expect(csv.code).toBe(0);
    const rows = readFileSync(csvPath, 'utf8').split('\r\n');
    expect(rows[0]).toMatch(/^line,key,method,url,state,status,reason,error_code/);
    expect(rows[1]).toMatch(/^3,,GET,http:.*,failed,404,http-status,/);
  }, 60_000);

  it('keeps each body byte for byte in the store, many lines written in one statement', async () => {
    // Sizes around the edges: empty, one byte, odd lengths, a few KiB; every line's bytes differ.
    const sizes = [0, 1, 2, 3, 15, 16, 17, 255, 1000, 1024, 4095, 4096, 10_000, 33];
    const urls = sizes.map((n, i) => `${chaos.url}/bytes/${n}?seed=${i + 7}`);
    const { code } = await runCli(['batch', input('bodies.txt', urls), ...target('bodies')]);
    expect(code).toBe(0);
    const jsonl = await runCli(['export', '--store', box.store, '--job', 'bodies', '--bodies']);
    expect(jsonl.code).toBe(0);
    const records = jsonl.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            line: number;
            bodySize: number;
            body: string | null;
            bodyEncoding: 'utf8' | 'base64';
          },
      );
    expect(records).toHaveLength(sizes.length);
    for (const r of records) {
      const sent = Buffer.from(await (await fetch(urls[r.line - 1] as string)).arrayBuffer());
      expect(r.bodySize).toBe(sizes[r.line - 1]);
      const kept = Buffer.from(r.body ?? '', r.bodyEncoding);
      expect({ line: r.line, equal: kept.equals(sent) }).toEqual({ line: r.line, equal: true });
    }
  }, 60_000);

  it('stops on Ctrl-C (exit 130), says how to resume, and the same command finishes the job', async () => {
    const urls = input(
      'slow.txt',
      Array.from({ length: 40 }, (_, i) => `${chaos.url}/delay/100?key=s${i}`),
    );
    const args = [
      'batch',
      urls,
      ...target('slow'),
      '--concurrency',
      '2',
      '--progress-interval',
      '50ms',
    ];
    const run = startCli(args);
    await waitFor(() => /dogged batch: [1-9]/.test(run.stderr()), 'some progress', 30_000);
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    expect(run.stderr()).toMatch(/interrupted with \d+ lines left; nothing is lost\. Resume with:/);
    const resumed = await runCli(args);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/job slow: 40 lines in .*: 40 done/);
  }, 60_000);

  it('adds appended lines on a re-run, refuses a changed line (exit 2), stops at --max-wait (exit 11)', async () => {
    const path = join(dir, 'grow.txt');
    writeFileSync(path, `${chaos.url}/bytes/8?key=g1\n${chaos.url}/bytes/8?key=g2\n`);
    expect((await runCli(['batch', path, ...target('grow'), '-q'])).code).toBe(0);
    const before = chaos.log().filter((a) => a.key?.startsWith('g')).length;
    writeFileSync(
      path,
      `${chaos.url}/bytes/8?key=g1\n${chaos.url}/bytes/8?key=g2\n${chaos.url}/bytes/8?key=g3\n`,
    );
    const grown = await runCli(['batch', path, ...target('grow'), '-q']);
    expect(grown.code).toBe(0);
    expect(grown.stdout).toMatch(/job grow: 3 lines in .*: 3 done/);
    // Only the new line was fetched.
    expect(
      chaos
        .log()
        .filter((a) => a.key?.startsWith('g'))
        .map((a) => a.key),
    ).toHaveLength(before + 1);

    writeFileSync(path, `${chaos.url}/bytes/9?key=g1\n`);
    const changed = await runCli(['batch', path, ...target('grow'), '-q']);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toMatch(
      /line 1 of the input differs from the line recorded in job grow/,
    );

    const later = input('later.txt', [`${chaos.url}/status/503?retry-after=3600`]);
    const deferred = await runCli(['batch', later, ...target('later'), '--max-wait', '1m', '-q']);
    expect(deferred.code).toBe(11);
    expect(deferred.stderr).toMatch(
      /1 lines are scheduled later \(the next at .*\), beyond --max-wait/,
    );
  }, 60_000);

  it('a worker without --job serves every job on the queue, and leaves a job once it is finished', async () => {
    const worker = startCli([
      'worker',
      '--queue',
      box.queue,
      '--store',
      box.store,
      '--progress-interval',
      '200ms',
    ]);
    try {
      const urls = input('any.txt', [
        `${chaos.url}/bytes/8?key=any1`,
        `${chaos.url}/bytes/8?key=any2`,
      ]);
      const enqueued = await runCli(['batch', urls, ...target('anyjob'), '--enqueue-only']);
      expect(enqueued.code).toBe(0);
      await waitFor(
        () => /working on job anyjob/.test(worker.stderr()),
        'the worker to join',
        30_000,
      );
      await waitFor(
        () => /left job anyjob: it is finished/.test(worker.stderr()),
        'the job to end',
        30_000,
      );
      expect(worker.stderr()).toMatch(/dogged worker: job anyjob: 2\/2 \(100\.0%\) · done 2/);
    } finally {
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
    }
    expect(worker.stderr()).toMatch(
      /dogged worker: stopped after .*: [\d,]+ attempts on \d+ job\(s\)/,
    );
  }, 60_000);

  it('--enqueue-only tells the lines recorded and waiting, from one read of the job rows', async () => {
    const lines = [1, 2, 3].map((i) => `${chaos.url}/bytes/8?key=eo${i}`);
    const first = await runCli(['batch', input('eo3.txt', lines), ...target('eo')]);
    expect(first.code).toBe(0);
    const before = await settledScans();
    const more = [...lines, `${chaos.url}/bytes/8?key=eo4`, `${chaos.url}/bytes/8?key=eo5`];
    const urls = input('eo5.txt', more);
    const json = await runCli(['batch', urls, ...target('eo'), '--enqueue-only', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      end: 'enqueued',
      job: 'eo',
      total: 5,
      counts: { pending: 2, in_flight: 0, done: 3, failed: 0, invalid: 0, retrying: 0 },
    });
    // The enqueue's own reads of the table (7 in all with the count, here) and not the eight
    // aggregates of a full summary on top, each a read of the job's rows (15 in all before).
    expect((await settledScans()) - before).toBeLessThanOrEqual(8);
    const text = await runCli(['batch', urls, ...target('eo'), '--enqueue-only']);
    expect(text.stdout).toMatch(/^job eo: 5 lines recorded, 2 waiting for workers/);
  }, 60_000);

  it('refuses --bodies dir: (bodies live in the store) and a missing job on export', async () => {
    const urls = input('one.txt', [`${chaos.url}/status/200`]);
    const bodies = await runCli(['batch', urls, ...target('b'), '--bodies', 'dir:out']);
    expect(bodies.code).toBe(2);
    expect(bodies.stderr).toMatch(/--bodies must be db or none with --queue/);
    const missing = await runCli(['export', '--store', box.store, '--job', 'nope']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no job named "nope"/);
  }, 30_000);
});
