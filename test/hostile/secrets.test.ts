/**
 * Issue 14, rows 4 and 6: credentials stay out of everything dogged prints or exports, and the
 * files it creates for a journal are its owner's only (0600).
 */
import { chmodSync, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli, tempDir, waitFor, writeLines } from '../batch/batch-support.js';
import {
  REDIS_URL_BASE,
  type Sandbox,
  sandbox,
  waitForJob,
} from '../batch/distributed/distributed-support.js';
import { needs } from '../support/needs.js';
import { type AuthProxy, startAuthProxy, startTarget, type Target } from './secrets-support.js';

const URL_PW = 'S3cretUrlPw';
const HEADER_TOKEN = 'S3cretHeaderTok';
const API_KEY = 'S3cretApiKey';
const PROXY_PW = 'S3cretProxyPw';
const DEAD_PROXY_PW = 'S3cretDeadPw';
const COOKIE = 'S3cretCookieVal';
const SESSION_TOKEN = 'S3cretSessionTok';
const LINE_TOKEN = 'S3cretLineTok';
const INVALID_PW = 'Pa55/w0rd';
const REDIS_PW = 'S3cretRedisPw';
const PG_PW = 'S3cretPgPw';

let target: Target;
let later: Target;
let proxy: AuthProxy;
let dir: string;
let cleanup: () => void;
let umask: number;
beforeAll(async () => {
  // What a shared machine usually has: files 0644 unless the program says otherwise.
  umask = process.umask(0o022);
  target = await startTarget({ cookie: COOKIE, token: SESSION_TOKEN });
  later = await startTarget(); // another host: its Retry-After holds only its own lines
  proxy = await startAuthProxy('puser', PROXY_PW);
  ({ dir, cleanup } = tempDir('dogged-secrets-'));
});
afterAll(async () => {
  process.umask(umask);
  await target.close();
  await later.close();
  await proxy.close();
  cleanup();
});

/** Fails naming the secret and where it showed. */
function expectNoSecret(text: string, secrets: readonly string[], where: string): void {
  for (const secret of secrets)
    expect(text.includes(secret), `${where} shows ${secret}:\n${text}`).toBe(false);
}

const mode = (path: string): string => (statSync(path).mode & 0o777).toString(8);

describe('a local batch with credentials everywhere', () => {
  it('prints none of them (-v, progress, hints, summary, status) and exports none unless --include-secrets', async () => {
    const withCreds = target.url.replace('http://', `http://user:${URL_PW}@`);
    const input = writeLines(dir, 'in.jsonl', [
      `${withCreds}/flaky/a`,
      `${target.url}/cookie`,
      JSON.stringify({
        url: `${target.url}/flaky/b`,
        headers: { authorization: `Bearer ${LINE_TOKEN}` },
      }),
      `http://user:${INVALID_PW}@127.0.0.1:1/`,
      JSON.stringify({ url: `${target.url}/x`, headers: { cookie: `c=${LINE_TOKEN}` }, bogus: 1 }),
      `${later.url}/later`,
    ]);
    // Two proxies: one that works (with its password), one dead (connection refused).
    const proxies = writeLines(dir, 'proxies.txt', [
      `http://puser:${PROXY_PW}@${proxy.url.slice('http://'.length)}`,
      `http://dead:${DEAD_PROXY_PW}@127.0.0.1:1`,
    ]);
    const db = join(dir, 'run.sqlite');
    const args = [
      'batch',
      input,
      '--db',
      db,
      '--proxies',
      proxies,
      '-H',
      `Authorization: Bearer ${HEADER_TOKEN}`,
      '-H',
      `X-Api-Key: ${API_KEY}`,
      '--secret-header',
      'X-Api-Key',
      '--backoff',
      '5ms',
      '--seed',
      '1',
      '--max-wait',
      '1m',
      '-v',
      '--progress-interval',
      '10ms',
    ];
    const run = await runCli(args);
    // Deferred (exit 11): the hint prints the command line, secrets shown as ***.
    expect(run.code, run.stderr).toBe(11);
    expect(run.stderr).toMatch(/attempt 1\/6 failed: HTTP 503/); // -v printed retries
    expect(run.stderr).toContain(`GET http://***@127.0.0.1:`);
    expect(run.stderr).toContain('Authorization: ***');
    expect(run.stderr).toContain('(secrets are shown as ***: give them again)');
    expect(proxy.tunnels()).toBeGreaterThan(0); // the proxy and its password were used...
    expect(target.seen.some((h) => h['x-api-key'] === API_KEY)).toBe(true); // ...and -H
    const all = [URL_PW, HEADER_TOKEN, API_KEY, PROXY_PW, DEAD_PROXY_PW, LINE_TOKEN, INVALID_PW];
    expectNoSecret(run.stdout + run.stderr, all, 'dogged batch');

    const status = await runCli(['status', db]);
    expect(status.code).toBe(0);
    expectNoSecret(status.stdout + status.stderr, all, 'dogged status');
    const statusJson = await runCli(['status', db, '--json']);
    expectNoSecret(statusJson.stdout, all, 'dogged status --json');

    const secretsOut = [...all, COOKIE, SESSION_TOKEN];
    for (const format of ['jsonl', 'csv']) {
      const exported = await runCli([
        'export',
        db,
        '--format',
        format,
        '--bodies',
        '--secret-header',
        'x-session-token',
      ]);
      expect(exported.code, exported.stderr).toBe(0);
      expect(exported.stdout).toContain('http://***@127.0.0.1:');
      expectNoSecret(exported.stdout + exported.stderr, secretsOut, `export --format ${format}`);
    }
    const jsonl = (await runCli(['export', db])).stdout;
    expect(jsonl).toMatch(/"set-cookie":(\["\*\*\*"\]|"\*\*\*")/i);
    expect(jsonl).toContain(SESSION_TOKEN); // not marked secret for this export

    // The opt-in: the journal's content as it is (the journal keeps it to resume).
    const raw = await runCli(['export', db, '--include-secrets', '-o', join(dir, 'raw.jsonl')]);
    expect(raw.code).toBe(0);
    const rawText = readFileSync(join(dir, 'raw.jsonl'), 'utf8');
    expect(rawText).toContain(`user:${URL_PW}@`);
    expect(rawText).toContain(COOKIE);
    expect(rawText).toContain(INVALID_PW);
    expect(mode(join(dir, 'raw.jsonl'))).toBe('600');
  }, 60_000);

  it('creates the journal, its -wal and -shm 0600 under umask 022, and leaves an existing mode alone', async () => {
    const input = writeLines(dir, 'slow.txt', [`${target.url}/slow`]);
    const db = join(dir, 'perm.sqlite');
    const run = startCli(['batch', input, '--db', db, '-q']);
    await waitFor(() => existsSync(`${db}-wal`) && existsSync(`${db}-shm`), 'the WAL files');
    expect([mode(db), mode(`${db}-wal`), mode(`${db}-shm`)]).toEqual(['600', '600', '600']);
    expect(await run.exited).toBe(0);

    chmodSync(db, 0o640);
    const again = await runCli(['batch', input, '--db', db, '-q']);
    expect(again.code).toBe(0);
    expect(mode(db)).toBe('640');

    const nowhere = await runCli([
      'batch',
      input,
      '--db',
      join(dir, 'no', 'such', 'dir', 'r.sqlite'),
    ]);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toMatch(/does not exist \(dogged creates no directory for a journal\)/);
    expect(existsSync(join(dir, 'no'))).toBe(false);
  }, 30_000);
});

describe('error messages that echo URLs, proxies, headers', () => {
  it('never show a password, even one that makes the URL unparseable', async () => {
    const input = writeLines(dir, 'one.txt', [`${target.url}/flaky/e`]);
    const store = `postgres://postgres@127.0.0.1:5432/test`;
    const runs = await Promise.all([
      runCli(['get', `http://user:${INVALID_PW}@127.0.0.1:1/`]),
      runCli(['get', '--proxy', 'http://u:Pa55#w0rd@127.0.0.1:1', `${target.url}/x`]),
      runCli(['get', '-H', `Authorization Bearer ${HEADER_TOKEN}`, `${target.url}/x`]),
      runCli([
        'batch',
        input,
        '--queue',
        'redis://:Pa55#w0rd@127.0.0.1:6379',
        '--store',
        store,
        '--job',
        'j',
      ]),
      runCli([
        'batch',
        input,
        '--queue',
        'redis://127.0.0.1:1/0',
        '--store',
        `postgres://u:${INVALID_PW}@127.0.0.1/test`,
        '--job',
        'j',
      ]),
      runCli(['status', '--queue', 'redis://u:12#w0rd@127.0.0.1:6379', '--job', 'j']),
      runCli(['export', '--store', 'postgres://u:Pa55?w0rd@127.0.0.1/test', '--job', 'j']),
      runCli(['worker', '--queue', 'redis://:Pa55@w0rd#x@127.0.0.1:6379', '--store', store]),
    ]);
    const [get, getProxy, getHeader, badQueue, badStore, status, exported, worker] = runs;
    expect(get?.code).toBe(3);
    expect(get?.stderr).toContain('http://***@127.0.0.1:1/');
    expect(getProxy?.code).toBe(2);
    expect(getHeader?.code).toBe(2);
    expect(getHeader?.stderr).toContain('"Authorization…" is not a header');
    for (const run of [badQueue, badStore, exported]) expect(run?.code).toBe(2);
    // These two parse (as hosts "u" and "w0rd", with a #fragment): refused as ambiguous.
    expect(status?.code).toBe(2);
    expect(worker?.code).toBe(2);
    for (const [i, run] of runs.entries()) {
      expect(run.stderr).not.toMatch(/unexpected error/);
      expectNoSecret(
        run.stdout + run.stderr,
        [INVALID_PW, 'Pa55', 'w0rd', HEADER_TOKEN],
        `run ${i}`,
      );
    }
  }, 60_000);

  it('a bad --proxies file is a usage error naming the file and line, for batch and worker', async () => {
    const input = writeLines(dir, 'p.txt', [`${target.url}/flaky/p`]);
    const bad = writeLines(dir, 'bad-proxies.txt', [
      '# the office proxies',
      `http://ok:${PROXY_PW}@127.0.0.1:3128`,
      `http://u:${DEAD_PROXY_PW}#x@127.0.0.1:3129`,
    ]);
    const missing = join(dir, 'missing-proxies.txt');
    const store = 'postgres://postgres@127.0.0.1:5432/test';
    const runs = await Promise.all([
      runCli(['batch', input, '--db', join(dir, 'p.sqlite'), '--proxies', bad]),
      runCli(['batch', input, '--db', join(dir, 'p.sqlite'), '--proxies', missing]),
      runCli(['worker', '--queue', 'redis://127.0.0.1:1/0', '--store', store, '--proxies', bad]),
      runCli(['worker', '--queue', 'redis://127.0.0.1:1/0', '--store', store, '--proxies', dir]),
    ]);
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(2);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).not.toMatch(/unexpected error| {4}at /);
      expectNoSecret(run.stderr, [PROXY_PW, DEAD_PROXY_PW], 'a bad --proxies');
    }
    expect(runs[0]?.stderr).toContain(
      `--proxies ${bad} line 3: "http://***@127.0.0.1:3129" is not a proxy URL`,
    );
    expect(runs[1]?.stderr).toContain(`--proxies ${missing}: cannot read it (no such file)`);
    expect(runs[2]?.stderr).toContain(`--proxies ${bad} line 3`);
    expect(runs[3]?.stderr).toContain('(it is a directory)');
  }, 30_000);
});

needs('redis', 'postgres')('a distributed batch with a Redis and a PostgreSQL password', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await sandbox(4);
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('--enqueue-only, worker -v, status and export print neither password', async () => {
    // Redis and PostgreSQL here need no password: they accept (and ignore) one.
    const queue = box.queue.replace('redis://', `redis://:${REDIS_PW}@`);
    const store = box.store.replace('postgres://postgres@', `postgres://postgres:${PG_PW}@`);
    expect(queue).toContain(REDIS_PW);
    expect(REDIS_URL_BASE).not.toContain('@'); // the test's Redis has no password of its own
    const withCreds = target.url.replace('http://', `http://user:${URL_PW}@`);
    const input = writeLines(dir, 'd.txt', [`${withCreds}/flaky/d1`, `${target.url}/flaky/d2`]);
    const job = ['--queue', queue, '--store', store, '--job', 'secrets'];
    const headers = ['-H', `Authorization: Bearer ${HEADER_TOKEN}`, '-H', `X-Api-Key: ${API_KEY}`];
    const enqueued = await runCli([
      'batch',
      input,
      ...job,
      ...headers,
      '--secret-header',
      'x-api-key',
      '--enqueue-only',
      '--backoff',
      '5ms',
    ]);
    expect(enqueued.code, enqueued.stderr).toBe(0);
    expect(enqueued.stdout).toContain(
      `dogged worker --queue ${box.queue.replace('redis://', 'redis://***@')}`,
    );
    const secrets = [REDIS_PW, PG_PW, URL_PW, HEADER_TOKEN, API_KEY];
    expectNoSecret(enqueued.stdout + enqueued.stderr, secrets, '--enqueue-only');

    const worker = startCli([
      'worker',
      '--queue',
      queue,
      '--store',
      store,
      '-v',
      '--progress-interval',
      '50ms',
    ]);
    try {
      await waitForJob(box, 'secrets', 2, 30_000);
      await waitFor(() => /attempt 1 failed: HTTP 503/.test(worker.stderr()), 'the -v lines');
    } finally {
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
    }
    expect(worker.stderr()).toContain('GET http://***@127.0.0.1:');
    expectNoSecret(worker.stdout() + worker.stderr(), secrets, 'dogged worker');

    /** Runs a command that must succeed and print no secret. */
    const clean = async (args: string[]): Promise<string> => {
      const run = await runCli(args);
      expect(run.code, run.stderr).toBe(0);
      expectNoSecret(run.stdout + run.stderr, secrets, `dogged ${args[0]}`);
      return run.stdout;
    };
    const where = ['--queue', queue, '--job', 'secrets'];
    await clean(['status', ...where, '--store', store]);
    // --json prints the job's config: its -H values are shown as ***.
    const statusJson = await clean(['status', ...where, '--json', '--secret-header', 'X-Api-Key']);
    expect(JSON.parse(statusJson).config.headers).toEqual({
      authorization: '***',
      'x-api-key': '***',
    });
    await clean(['export', '--store', store, '--job', 'secrets', '--format', 'csv']);
    const unreachable = await runCli([
      'batch',
      input,
      '--queue',
      `redis://:${REDIS_PW}@127.0.0.1:1/0`,
      '--store',
      store,
      '--job',
      'nowhere',
    ]);
    expect(unreachable.code).toBe(13);
    expectNoSecret(unreachable.stdout + unreachable.stderr, secrets, 'an unreachable Redis');
  }, 90_000);
});
