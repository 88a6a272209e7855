import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { runCli, startCli, tempDir, waitFor, writeLines } from '../batch/batch-support.js';

let chaos: ChaosServer;
let dir: string;
let cleanup: () => void;
beforeAll(async () => {
  chaos = await startChaosServer();
});
afterAll(async () => {
  await chaos.close();
});
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

const input = (name: string, lines: string[]): string => writeLines(dir, name, lines);

const fast = ['--backoff', '5ms', '--seed', '1'];

describe('dogged batch', () => {
  it('exits 0 when every line is done, and prints the summary', async () => {
    const urls = input('ok.txt', [`${chaos.url}/bytes/16?key=ok1`, `${chaos.url}/flaky/b1?fail=1`]);
    const db = join(dir, 'run.sqlite');
    const { code, stdout, stderr } = await runCli(['batch', urls, '--db', db, ...fast]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/2 lines in .*: 2 done, 0 failed, 0 invalid, 0 left/);
    expect(stdout).toMatch(/retried\s+1 retries after: HTTP 503 ×1/);
    expect(stdout).toMatch(/attempts\s+1\s+1 /);
    // Not a terminal: plain progress lines.
    expect(stderr).toMatch(/dogged batch: 2\/2 \(100\.0%\)/);
  });

  it('exits 10 when lines failed or were invalid; -v prints every retry; --json', async () => {
    const urls = input('mixed.txt', [
      `${chaos.url}/flaky/v1?fail=1&status=503`,
      `${chaos.url}/status/404`,
      'nonsense',
    ]);
    const { code, stdout, stderr } = await runCli([
      'batch',
      urls,
      '--db',
      join(dir, 'run.sqlite'),
      '-v',
      '-q',
      '--json',
      ...fast,
    ]);
    expect(code).toBe(10);
    expect(stderr).toMatch(
      /GET http:\/\/127\.0\.0\.1:\d+\/flaky\/v1\?fail=1&status=503 \(line 1\) attempt 1\/6 failed: HTTP 503; retry in \d+ ms \(backoff\)/,
    );
    const summary = JSON.parse(stdout);
    expect(summary).toMatchObject({
      end: 'complete',
      counts: { done: 1, failed: 1, invalid: 1 },
      failures: [{ reason: 'http-status', status: 404, count: 1 }],
    });
  });

  it('refuses a second runner on the same journal with exit 12 and a clear message', async () => {
    // The first runner's line answers in 30 s: it is still running whatever the second's start-up
    // takes; it is stopped once the second has been refused.
    const urls = input('slow.txt', [`${chaos.url}/delay/30000`]);
    const db = join(dir, 'run.sqlite');
    const first = startCli(['batch', urls, '--db', db, '--progress-interval', '50ms']);
    await waitFor(() => first.stderr().includes('dogged batch:'), 'the first runner');
    const second = await runCli(['batch', urls, '--db', db]);
    expect(second.code).toBe(12);
    expect(second.stderr).toMatch(/is in use by another dogged runner \(pid \d+/);
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(130);
  });

  it('stops on Ctrl-C (exit 130), says how to resume, and the same command finishes the job', async () => {
    const lines = Array.from({ length: 30 }, (_, i) => `${chaos.url}/delay/100?key=c${i}`);
    const urls = input('many.txt', lines);
    const db = join(dir, 'run.sqlite');
    const args = ['batch', urls, '--db', db, '--concurrency', '2', '--progress-interval', '50ms'];
    const run = startCli(args);
    await waitFor(() => /dogged batch: [1-9]/.test(run.stderr()), 'some progress');
    run.child.kill('SIGINT');
    expect(await run.exited).toBe(130);
    expect(run.stderr()).toMatch(/SIGINT: stopping/);
    expect(run.stderr()).toMatch(/interrupted with \d+ lines left; nothing is lost\. Resume with:/);
    expect(run.stderr()).toContain(`dogged batch ${urls} --db ${db}`);

    const status = await runCli(['status', db]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/runner\s+none/);
    expect(status.stdout).toMatch(/lines left: run the same dogged batch command again/);

    const resumed = await runCli(args);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/30 lines in .*: 30 done/);
  });

  it('exits 2 for bad usage: a missing --db, a bad value, a missing input', async () => {
    expect((await runCli(['batch', 'x.txt'])).code).toBe(2);
    expect((await runCli(['batch', 'x.txt', '--db', join(dir, 'a'), '--rate', 'fast'])).code).toBe(
      2,
    );
    const missing = await runCli(['batch', join(dir, 'nope.txt'), '--db', join(dir, 'a')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no such file/);
  });

  it('stops with exit 11 when only lines scheduled beyond --max-wait are left', async () => {
    const urls = input('later.txt', [`${chaos.url}/status/503?retry-after=3600`]);
    const { code, stderr } = await runCli([
      'batch',
      urls,
      '--db',
      join(dir, 'run.sqlite'),
      '--max-wait',
      '1m',
      '-q',
    ]);
    expect(code).toBe(11);
    expect(stderr).toMatch(/1 lines are scheduled later \(the next at .*\), beyond --max-wait/);
  });
});

describe('dogged status, export and retry-failed', () => {
  it('report the journal, export it as JSONL and CSV, and retry the failed lines', async () => {
    const urls = input('urls.txt', [
      `${chaos.url}/bytes/4?seed=1`,
      `${chaos.url}/flaky/rf?fail=2&status=500`,
      'oops',
    ]);
    const db = join(dir, 'run.sqlite');
    const first = await runCli(['batch', urls, '--db', db, '--retries', '1', ...fast, '-q']);
    expect(first.code).toBe(10);

    const status = await runCli(['status', db, '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({
      counts: { done: 1, failed: 1, invalid: 1 },
      failures: [{ reason: 'retries-exhausted', status: 500 }],
      runner: null,
    });

    const jsonl = await runCli(['export', db, '--format', 'jsonl', '--bodies']);
    const records = jsonl.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(records.map((r) => [r.line, r.state])).toEqual([
      [1, 'done'],
      [2, 'failed'],
      [3, 'invalid'],
    ]);
    expect(records[0]).toMatchObject({ status: 200, bodySize: 4, bodyEncoding: 'base64' });
    expect(records[1].history).toHaveLength(1);

    const csvPath = join(dir, 'out.csv');
    expect(
      (await runCli(['export', db, '--format', 'csv', '--state', 'failed', '-o', csvPath])).code,
    ).toBe(0);
    const csv = readFileSync(csvPath, 'utf8').split('\r\n');
    expect(csv[0]).toMatch(/^line,key,method,url,state,status,reason,error_code/);
    expect(csv[1]).toMatch(/^2,,GET,http:.*,failed,500,retries-exhausted,/);
    expect(csv).toHaveLength(3);

    const retried = await runCli(['retry-failed', db, '--status', '5xx', '-q']);
    expect(retried.stderr).toMatch(/1 failed line is pending again/);
    // The invalid line stays invalid: still exit 10, but the 500 is done now.
    expect(retried.code).toBe(10);
    expect(retried.stdout).toMatch(/2 done, 0 failed, 1 invalid/);
  });

  it('exit 2 on a file that is not a journal', async () => {
    const path = input('plain.txt', ['hello']);
    const status = await runCli(['status', path]);
    expect(status.code).toBe(2);
    expect(status.stderr).toMatch(/not a dogged journal/);
  });
});
