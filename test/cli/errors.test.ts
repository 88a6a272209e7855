/**
 * Ordinary mistakes end with a precise message and a documented exit code: never "unexpected
 * error", a stack trace or exit 1 (issue 16, "Errors and exit codes").
 */
import { chmodSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { runCli, tempDir, writeLines } from '../batch/batch-support.js';
import { asOtherUser, otherUserCanRun } from './cli-support.js';

let chaos: ChaosServer;
let dir: string;
let taken: Server;
let takenPort: number;
beforeAll(async () => {
  chaos = await startChaosServer();
  ({ dir } = tempDir('dogged-errors-'));
  taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  takenPort = (taken.address() as { port: number }).port;
});
afterAll(async () => {
  await chaos.close();
  await new Promise((resolve) => taken.close(resolve));
});

/** No stack trace, no "unexpected error". */
function clean(stderr: string): void {
  expect(stderr).not.toMatch(/unexpected error|^\s+at /m);
}

describe('ordinary mistakes get a message and a documented exit code, not exit 1', () => {
  it('--proxies with a missing file or a bad line: exit 2 naming the file (batch and worker)', async () => {
    const urls = writeLines(dir, 'proxied.txt', ['not a url']);
    const bad = writeLines(dir, 'proxies.txt', ['http://127.0.0.1:3128', 'garbage line']);
    const missing = join(dir, 'no-proxies.txt');
    const runs = await Promise.all([
      runCli(['batch', urls, '--db', join(dir, 'p1.sqlite'), '--proxies', missing]),
      runCli(['batch', urls, '--db', join(dir, 'p2.sqlite'), '--proxies', bad]),
      runCli([
        'worker',
        '--queue',
        'redis://127.0.0.1:1/1',
        '--store',
        'postgres://127.0.0.1:1/x',
        '--proxies',
        missing,
      ]),
    ]);
    for (const run of runs) {
      expect(run.code).toBe(2);
      clean(run.stderr);
    }
    expect(runs[0]?.stderr).toContain(`--proxies ${missing}: cannot read it (no such file)`);
    expect(runs[1]?.stderr).toContain(`--proxies ${bad} line 2:`);
    expect(runs[2]?.stderr).toContain('no such file');
  });

  it('dogged chaos on a port in use: exit 2, the port named and what to do', async () => {
    const { code, stderr } = await runCli(['chaos', '--port', String(takenPort)]);
    expect(code).toBe(2);
    clean(stderr);
    expect(stderr).toContain(`cannot listen on 127.0.0.1:${takenPort}: the port is already in use`);
    expect(stderr).toContain('--port');
  });

  it('batch on a directory or an unreadable input: exit 2 naming the path, and no journal left', async () => {
    const { dir: sub } = tempDir('dogged-errors-input-');
    const db = join(sub, 'dir.sqlite');
    const onDir = await runCli(['batch', sub, '--db', db]);
    expect(onDir.code).toBe(2);
    clean(onDir.stderr);
    expect(onDir.stderr).toContain(`cannot read the input ${sub}: it is a directory`);
    expect(existsSync(db)).toBe(false);
    if (otherUserCanRun()) {
      // A file its reader may not read: as root, the CLI runs as another user.
      chmodSync(sub, 0o777);
      const secret = writeLines(sub, 'secret.txt', ['http://127.0.0.1:1/']);
      chmodSync(secret, process.getuid?.() === 0 ? 0o600 : 0o000);
      const unreadable = await runCli(
        ['batch', secret, '--db', join(sub, 'acc.sqlite')],
        {},
        asOtherUser(),
      );
      expect(unreadable.code).toBe(2);
      clean(unreadable.stderr);
      expect(unreadable.stderr).toContain(`cannot read the input ${secret}: permission denied`);
    }
    expect(readdirSync(sub).filter((f) => f.includes('.sqlite'))).toEqual([]);
  });

  it('get: Retry-After beyond --max-retry-after 75, too many redirects 47, -o into a missing directory 23', async () => {
    const out = join(dir, 'missing-dir', 'out.json');
    const [tooLong, redirects, missing] = await Promise.all([
      runCli(['get', `${chaos.url}/status/503?retry-after=100`, '--max-retry-after', '1s']),
      runCli(['get', `${chaos.url}/redirect/30`]),
      runCli(['get', `${chaos.url}/status/200`, '-o', out]),
    ]);
    expect(tooLong.code).toBe(75);
    expect(tooLong.stderr).toMatch(/Retry-After of 1 min 40 s exceeds/);
    expect(redirects.code).toBe(47);
    expect(redirects.stderr).toMatch(/redirected more than 20 times/);
    expect(missing.code).toBe(23);
    expect(missing.stderr).toContain(
      `cannot write ${out}: its directory ${join(dir, 'missing-dir')} does not exist`,
    );
    for (const run of [tooLong, redirects, missing]) clean(run.stderr);
  });
});

describe('usage errors: the one-line error and one hint, not the whole help', () => {
  it('prints two lines and exits 2', async () => {
    const urls = writeLines(dir, 'usage.txt', ['http://127.0.0.1:1/']);
    const [batch, get, top] = await Promise.all([
      runCli(['batch', urls, '--db', join(dir, 'u.sqlite'), '--concurrency', '0']),
      runCli(['get', `${chaos.url}/`, '--timeout', 'soon']),
      runCli(['--no-such-option']),
    ]);
    for (const run of [batch, get, top]) {
      expect(run.code).toBe(2);
      expect(run.stderr.trimEnd().split('\n')).toHaveLength(2);
      expect(run.stderr).not.toContain('Options:');
    }
    expect(batch.stderr).toMatch(/^error: option '--concurrency <n>' argument '0' is invalid/);
    expect(batch.stderr).toContain("Run 'dogged batch --help' for the options.");
    expect(get.stderr).toContain("Run 'dogged get --help' for the options.");
    expect(top.stderr).toContain("Run 'dogged --help' for the options.");
  });
});

describe('an empty input', () => {
  it('says the input had no URLs, and exits 0', async () => {
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '');
    const { code, stderr } = await runCli([
      'batch',
      empty,
      '--db',
      join(dir, 'empty.sqlite'),
      '-q',
    ]);
    expect(code).toBe(0);
    expect(stderr).toContain('dogged batch: the input had no URLs');
  });
});
