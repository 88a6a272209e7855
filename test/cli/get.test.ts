import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { runCli, tempDir } from '../batch/batch-support.js';

let chaos: ChaosServer;
let closedPort: number;
beforeAll(async () => {
  chaos = await startChaosServer();
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  closedPort = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
});
afterAll(async () => {
  await chaos.close();
});

describe('dogged get', () => {
  it('prints the body and exits 0, after retrying a flaky URL; -v shows each retry on stderr', async () => {
    const { code, stdout, stderr } = await runCli([
      'get',
      `${chaos.url}/flaky/get-v?fail=2&status=503`,
      '--backoff',
      '10ms',
      '-v',
    ]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ key: 'get-v', attempt: 3 });
    const retries = stderr.split('\n').filter((l) => /attempt \d\/4 failed: 503/.test(l));
    expect(retries).toHaveLength(2);
    expect(retries[0]).toMatch(/retrying in \d+ ms \(backoff\)/);
  });

  it('exits 22 for a final status of 400 or more, and still prints the body', async () => {
    const { code, stdout, stderr } = await runCli(['get', `${chaos.url}/status/404`]);
    expect(code).toBe(22);
    expect(JSON.parse(stdout)).toMatchObject({ status: 404 });
    expect(stderr).toMatch(/answered 404 Not Found/);
  });

  it('exits 22 when a retried status is still failing after the last retry', async () => {
    const { code, stderr } = await runCli([
      'get',
      `${chaos.url}/status/503`,
      '--retries',
      '1',
      '--backoff',
      '1ms',
    ]);
    expect(code).toBe(22);
    expect(stderr).toMatch(/503 Service Unavailable after 2 attempts/);
  });

  it('exits 7 when the connection is refused, after the retries too (as curl --retry)', async () => {
    const target = `http://127.0.0.1:${closedPort}/`;
    expect((await runCli(['get', target, '--retries', '0'])).code).toBe(7);
    const exhausted = await runCli(['get', target, '--retries', '1', '--backoff', '1ms']);
    expect(exhausted.code).toBe(7);
    expect(exhausted.stderr).toMatch(/failed after 2 attempts.*retries exhausted/);
  });

  it('exits 28 on a read timeout, 56 on a reset and 18 on a cut body', async () => {
    const once = ['--retries', '0'];
    expect(
      (await runCli(['get', `${chaos.url}/delay/2000`, '--timeout', '1s,200ms', ...once])).code,
    ).toBe(28);
    expect((await runCli(['get', `${chaos.url}/reset`, ...once])).code).toBe(56);
    expect((await runCli(['get', `${chaos.url}/truncate`, ...once])).code).toBe(18);
  });

  it('exits 3 for a malformed URL and 2 for bad usage', async () => {
    expect((await runCli(['get', 'not-a-url'])).code).toBe(3);
    const usage = await runCli(['get', `${chaos.url}/`, '--timeout', 'soon']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/not a duration/);
    expect((await runCli(['get'])).code).toBe(2);
  });

  it('sends a method, headers and a JSON body, and writes the body to a file with -o', async () => {
    const { dir, cleanup } = tempDir();
    try {
      const out = join(dir, 'echo.json');
      const { code, stdout } = await runCli([
        'get',
        `${chaos.url}/echo`,
        '-X',
        'PUT',
        '-H',
        'X-Test: yes',
        '--json',
        '{"a":1}',
        '--idempotency-key',
        'key-1',
        '-o',
        out,
      ]);
      expect(code).toBe(0);
      expect(stdout).toBe('');
      const echo = JSON.parse(readFileSync(out, 'utf8'));
      expect(echo).toMatchObject({ method: 'PUT', json: { a: 1 } });
      expect(echo.headers).toMatchObject({ 'x-test': 'yes', 'idempotency-key': 'key-1' });
    } finally {
      cleanup();
    }
  });

  it('prints the status line and headers with -i', async () => {
    const { stdout } = await runCli(['get', `${chaos.url}/status/201`, '-i']);
    expect(stdout).toMatch(/^HTTP\/1\.1 201 Created\r\n/);
    expect(stdout).toMatch(/content-type: application\/json/);
  });
});
