/**
 * The distributed backend end to end on loopback: URLs/s with 1, 2 and 4 `dogged worker`
 * processes sharing one job (BullMQ on a private Redis, results in PostgreSQL), and the Redis
 * traffic per URL: the commands Redis executed (INFO commandstats, script internals included)
 * and, in a separate run watched with MONITOR, the commands clients sent (the round trips,
 * a pipeline counting each command).
 *
 * Needs redis-server on the PATH and PostgreSQL on 127.0.0.1:5432 with trust auth (see
 * .ci/services.sh); DOGGED_BENCH_POSTGRES overrides the database URL. The chaos server runs in its
 * own process. Scale with BENCH_DIST_URLS (default 4,000 per run) and
 * BENCH_ROUNDS (default 3; medians reported).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { runBatch } from '../src/index.js';
import { fmt, machine, medianOf, startChaos, table } from './lib.js';

const URLS = Number(process.env.BENCH_DIST_URLS ?? 4000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MONITORED_URLS = Math.min(URLS, 1000);
const PG_URL = process.env.DOGGED_BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'dogged-bench-dist-'));
const children: ChildProcess[] = [];

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  return typeof address === 'object' && address ? address.port : 0;
}

/** A process whose first stdout line is wanted (the chaos server prints its URL). */
async function spawnReady(args: string[], ready: (out: string) => boolean): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer): void => {
      out += chunk.toString();
      if (ready(out)) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) =>
      reject(new Error(`${args.join(' ')} exited with ${code}: ${out}`)),
    );
  });
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

async function main(): Promise<void> {
  const chaos = await startChaos();
  const chaosUrl = chaos.url;
  const port = await freePort();
  const redisServer = spawn('redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    work,
  ]);
  children.push(redisServer);
  const admin = new Redis({ port, host: '127.0.0.1', retryStrategy: (n) => (n > 50 ? null : 50) });
  admin.on('error', () => {});
  await admin.ping();
  const schema = `dogged_bench_${randomBytes(4).toString('hex')}`;
  const queue = `redis://127.0.0.1:${port}/0`;
  const store = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  const db = new pg.Pool({ connectionString: PG_URL, max: 1 });

  const urls = (job: string, n: number): string[] =>
    Array.from({ length: n }, (_, i) => `${chaosUrl}/bytes/1024?key=${job}-${i}`);

  /** Workers started first (waiting for the job), then the job enqueued; ends when all lines are. */
  async function run(
    job: string,
    workers: number,
    lines: number,
  ): Promise<{ rate: number; commands: number }> {
    const procs = await Promise.all(
      Array.from({ length: workers }, () =>
        spawnReady(
          [
            'src/cli/main.ts',
            'worker',
            '--queue',
            queue,
            '--store',
            store,
            '--job',
            job,
            '--concurrency',
            '16',
          ],
          (out) => out.includes('no configuration yet'),
        ),
      ),
    );
    await admin.config('RESETSTAT');
    await runBatch({ queue, store, job, input: urls(job, lines), enqueueOnly: true, perHost: 64 });
    for (;;) {
      const { rows } = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${schema}.requests WHERE job = $1 AND state <> 'pending'`,
        [job],
      );
      if ((rows[0]?.n ?? 0) >= lines) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const stats = await admin.info('commandstats');
    const commands = [...stats.matchAll(/calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
    const { rows } = await db.query<{ first: number; last: number }>(
      `SELECT min(first_attempt_at)::float8 AS first, max(finished_at)::float8 AS last FROM ${schema}.requests WHERE job = $1`,
      [job],
    );
    await Promise.all(procs.map(stop));
    const span = ((rows[0]?.last ?? 0) - (rows[0]?.first ?? 0)) / 1000;
    return { rate: lines / span, commands: commands / lines };
  }

  try {
    // Rounds interleaved (1, 2, 4 then 4, 2, 1...) so that no setting always runs first; medians.
    const samples = new Map<number, { rate: number; commands: number }[]>([
      [1, []],
      [2, []],
      [4, []],
    ]);
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? [1, 2, 4] : [4, 2, 1];
      for (const workers of order)
        samples.get(workers)?.push(await run(`w${workers}-r${round}`, workers, URLS));
    }
    const results = [...samples.entries()].map(([workers, runs]) => [
      workers,
      fmt(medianOf(runs.map((r) => r.rate))),
      runs.map((r) => fmt(r.rate)).join(', '),
      fmt(medianOf(runs.map((r) => r.commands)), 1),
    ]);

    // The round trips: every command a client sends, seen by MONITOR (script internals apart).
    const watcher = new Redis({ port, host: '127.0.0.1', retryStrategy: () => null });
    watcher.on('error', () => {});
    const monitor = await watcher.monitor();
    monitor.on('error', () => {});
    const sent = new Map<string, number>();
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      if (source === 'lua') return;
      const name = (args[0] ?? '?').toLowerCase();
      sent.set(name, (sent.get(name) ?? 0) + 1);
    });
    await run('monitored', 1, MONITORED_URLS);
    monitor.disconnect();
    watcher.disconnect();
    const total = [...sent.values()].reduce((a, b) => a + b, 0);
    const top = [...sent.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8);

    console.log(
      `\n## Distributed batch: ${URLS.toLocaleString('en-US')} URLs per run, ${ROUNDS} rounds (/bytes/1024, no failures), 16 in flight per worker, chaos server, Redis and PostgreSQL on the same machine (${machine()})\n`,
    );
    console.log(
      table(
        ['worker processes', 'URLs/s (median)', 'rounds', 'Redis commands executed per URL'],
        results,
      ),
    );
    console.log(
      `\nRedis round trips (commands sent by clients, MONITOR, ${MONITORED_URLS.toLocaleString('en-US')} URLs, 1 worker): ${fmt(total / MONITORED_URLS, 1)} per URL`,
    );
    console.log(
      table(
        ['command', 'per URL'],
        top.map(([name, n]) => [name, fmt(n / MONITORED_URLS, 2)]),
      ),
    );
    console.log(
      '\nEvery process here (workers, chaos server, Redis, PostgreSQL) shares the same cores: more workers than cores add contention, not throughput. On separate machines, workers scale until Redis or the target hosts are the limit.',
    );
  } finally {
    admin.disconnect();
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await db.end();
    for (const child of children.reverse()) await stop(child).catch(() => {});
    await chaos.stop().catch(() => {});
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
// Nothing should be left, but a straggling client must not keep the benchmark alive.
process.exit(0);
