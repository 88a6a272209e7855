import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createSecureServer, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runBatch } from '../../../src/index.js';
import {
  type ChaosArrival,
  type ChaosServer,
  startChaosServer,
} from '../../../src/testing/index.js';
import { selfSignedCertificate } from '../../http/proxy-support.js';
import { available, needs } from '../../support/needs.js';
import { runCli, tempDir, writeLines } from '../batch-support.js';
import { type Sandbox, sandbox } from './distributed-support.js';

// The options a distributed job carries to every worker: --seed, --cookies, --http2.

let box: Sandbox;
let chaos: ChaosServer;
/** What reached the chaos server, in order (the test that reads it empties it first). */
let arrivals: ChaosArrival[] = [];
/** A site with a login: `/login` sets `sid`, `/members` answers 403 without it. */
let site: Server;
let siteUrl = '';
const siteSeen: string[] = [];
beforeAll(async () => {
  if (available('redis', 'postgres')) box = await sandbox(5);
  chaos = await startChaosServer({ onArrival: (a) => void arrivals.push(a) });
  site = createServer((req, res) => {
    const cookie = req.headers.cookie ?? '';
    siteSeen.push(`${req.url} ${cookie}`);
    if (req.url === '/login') res.writeHead(200, { 'set-cookie': 'sid=s3cret; Path=/' }).end('in');
    else if (cookie.includes('sid=s3cret')) res.end('members page');
    else res.writeHead(403).end('log in first');
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await chaos.close();
  site.closeAllConnections();
  await new Promise<void>((resolve) => site.close(() => resolve()));
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

needs('redis', 'postgres')('--cookies in a distributed job', () => {
  it('keeps a jar per host in the store: a later run of the job is still logged in', async () => {
    const common = { queue: box.queue, store: box.store, job: 'cookies', cookies: true } as const;
    const first = await runBatch({ ...common, input: [`${siteUrl}/login`] });
    expect(first.counts.done).toBe(1);
    const { rows } = await box.pg.query<{ host: string; jar: string }>(
      `SELECT host, jar FROM ${box.schema}.cookies WHERE job = 'cookies'`,
    );
    expect(rows.map((r) => r.host)).toEqual([new URL(siteUrl).host]);
    expect(rows[0]?.jar).toContain('"key":"sid"');
    // A new worker (this run's) starts from the saved jar.
    const second = await runBatch({
      ...common,
      input: [`${siteUrl}/login`, `${siteUrl}/members`],
    });
    expect(second.counts.done).toBe(2);
    expect(siteSeen).toEqual(['/login ', '/members sid=s3cret']);
    // Without --cookies, another job sends none.
    const without = await runBatch({
      queue: box.queue,
      store: box.store,
      job: 'no-cookies',
      input: [`${siteUrl}/members`],
      retry: { total: 0 },
    });
    expect(without.counts.failed).toBe(1);
    expect(siteSeen.at(-1)).toBe('/members ');
  }, 60_000);

  it('checks the options', async () => {
    await expect(
      runBatch({
        queue: box.queue,
        store: box.store,
        job: 'bad',
        input: [],
        cookies: 'on' as unknown as boolean,
      }),
    ).rejects.toThrow('runBatch: cookies must be true or false, got "on"');
  });
});

needs(
  'redis',
  'postgres',
  'openssl',
)('--http2 in a distributed job', () => {
  it('every worker of the job speaks h2 to an https host', async () => {
    const pair = selfSignedCertificate();
    const protocols: string[] = [];
    const sessions = new Set<ServerHttp2Session>();
    const server: Http2SecureServer = createSecureServer(
      { ...pair, allowHTTP1: true },
      (req, res) => {
        protocols.push(req.httpVersion);
        res.end(`${req.httpVersion} ${req.url}`);
      },
    );
    server.on('session', (session) => sessions.add(session));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const { dir } = tempDir();
      const ca = join(dir, 'ca.pem');
      writeFileSync(ca, pair.cert);
      const input = writeLines(dir, 'urls.txt', [`${base}/a`, `${base}/b`, `${base}/c`]);
      const run = await runCli(
        [
          'batch',
          input,
          '--queue',
          box.queue,
          '--store',
          box.store,
          '--job',
          'h2',
          '--http2',
          '-q',
        ],
        { NODE_EXTRA_CA_CERTS: ca },
      );
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(protocols).toEqual(['2.0', '2.0', '2.0']);
    } finally {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, 60_000);

  it("starts a chunk's next lines while earlier ones wait for their retries", async () => {
    // One chunk of 40 lines, 2 in flight (so 4 of the host's lines started at once): lines 1–4
    // fail once and wait for their retry in-process (seeded jitter: 0.8 to 1 s); lines 5–40
    // answer at once. A line leaves its place to the next as soon as its request is answered,
    // so every fresh line is sent before the first retry; else the four failing lines would
    // hold the chunk's other 36 until their retries.
    arrivals = [];
    const result = await runBatch({
      queue: box.queue,
      store: box.store,
      job: 'starts',
      input: Array.from({ length: 40 }, (_, i) =>
        i < 4
          ? `${chaos.url}/flaky/starts-slow-${i}?fail=1`
          : `${chaos.url}/flaky/starts-${i}?fail=0`,
      ),
      seed: 979,
      concurrency: 2,
      perHost: 2,
      chunkSize: 40,
      retry: { total: 1, backoff: 1000, maxBackoff: 1000 },
      budget: false,
    });
    expect(result.counts.done).toBe(40);
    const { rows } = await box.pg.query<{ delay: number }>(
      `SELECT (history->0->>'delayMs')::float8 AS delay FROM ${box.schema}.requests
        WHERE job = 'starts' AND line <= 4 ORDER BY line`,
    );
    // The waits this test relies on: long enough for 36 requests to a local server.
    expect(Math.min(...rows.map((r) => r.delay))).toBeGreaterThanOrEqual(800);
    const slow = arrivals.filter((a) => a.path.includes('starts-slow-'));
    const fresh = arrivals.filter((a) => /\/starts-\d/.test(a.path));
    expect(slow).toHaveLength(8);
    expect(fresh).toHaveLength(36);
    // The first four arrivals of the failing lines are their first attempts; the fifth, a retry.
    const firstRetry = slow[4] as ChaosArrival;
    expect(Math.max(...fresh.map((a) => a.seq))).toBeLessThan(firstRetry.seq);
  });
});
