import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import pg from 'pg';
import { type CliRun, startCli, waitFor } from '../batch-support.js';

/** The Redis and PostgreSQL the tests use (started by .ci/services.sh on CI). */
export const REDIS_URL_BASE = process.env.DOGGED_TEST_REDIS ?? 'redis://127.0.0.1:6379';
export const PG_URL = process.env.DOGGED_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';

/** One test file's private corner of both: a Redis database number and a PostgreSQL schema. */
export interface Sandbox {
  readonly queue: string;
  readonly store: string;
  readonly schema: string;
  readonly redis: Redis;
  readonly pg: pg.Pool;
  /** Flushes the database, drops the schema, closes the clients. */
  cleanup(): Promise<void>;
}

/**
 * A fresh sandbox: Redis database `db` (each test file uses its own number, flushed before and
 * after) and a new schema with a random name (dropped after). `pgUrl` points it at another
 * PostgreSQL (a private cluster of a test) instead of the shared one.
 */
export async function sandbox(
  db: number,
  redisBase = REDIS_URL_BASE,
  pgUrl = PG_URL,
): Promise<Sandbox> {
  const queue = `${redisBase}/${db}`;
  const redis = new Redis(queue, { maxRetriesPerRequest: 1 });
  // A private Redis restarted by a test: this client reconnects; its errors meanwhile are noise.
  redis.on('error', () => {});
  await redis.flushdb();
  const schema = `dogged_test_${randomBytes(4).toString('hex')}`;
  const pool = new pg.Pool({ connectionString: pgUrl, max: 2 });
  pool.on('error', () => {});
  return {
    queue,
    store: `${pgUrl}?schema=${schema}`,
    schema,
    redis,
    pg: pool,
    cleanup: async () => {
      await redis.flushdb().catch(() => {});
      redis.disconnect();
      await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
      await pool.end();
    },
  };
}

/**
 * A figure of the `requests` table of `schema` from `pg_stat_user_tables` (`expression` of its
 * columns), once it has not moved for half a second: a backend reports its counts as it exits,
 * just after its client.
 */
export async function settledTableStat(
  pool: pg.Pool,
  schema: string,
  expression: string,
): Promise<number> {
  const read = async (): Promise<number> => {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT (${expression})::int AS n FROM pg_stat_user_tables
       WHERE schemaname = $1 AND relname = 'requests'`,
      [schema],
    );
    return rows[0]?.n ?? 0;
  };
  let last = await read();
  for (let same = 0; same < 5; ) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = await read();
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}

/** Lines per state of a job, straight from the store. */
export async function storeCounts(box: Sandbox, job: string): Promise<Record<string, number>> {
  const exists = await box.pg.query(
    `SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'requests'`,
    [box.schema],
  );
  if (!exists.rowCount) return {};
  const { rows } = await box.pg.query<{ state: string; n: number }>(
    `SELECT state, count(*)::int AS n FROM ${box.schema}.requests WHERE job = $1 GROUP BY state`,
    [job],
  );
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

/** Waits until the job has no pending line left in the store. */
export async function waitForJob(
  box: Sandbox,
  job: string,
  lines: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await storeCounts(box, job);
    const total = Object.values(c).reduce((a, b) => a + b, 0);
    if (total === lines && !c.pending) return;
    if (Date.now() > deadline) throw new Error(`job ${job} unfinished: ${JSON.stringify(c)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The flags that point a dogged command at `job` in the sandbox. */
export function jobTarget(box: Sandbox, job: string): string[] {
  return ['--queue', box.queue, '--store', box.store, '--job', job];
}

/** `dogged worker` processes. */
export function startWorker(box: Sandbox, job: string, extra: string[] = []): CliRun {
  return startCli(['worker', '--queue', box.queue, '--store', box.store, '--job', job, ...extra]);
}

/** Waits for a worker started before its job to say it waits for the job's configuration. */
export async function workerWaiting(run: CliRun): Promise<void> {
  await waitFor(() => /no configuration yet/.test(run.stderr()), 'a waiting worker', 30_000, 20);
}

/** Waits for a worker to say it joined its job. */
export async function workerReady(run: CliRun): Promise<void> {
  await waitFor(() => /working on job/.test(run.stderr()), 'a worker to join its job', 30_000, 20);
}

/** Stops a worker with SIGTERM; resolves with its exit code. */
export async function stopWorker(run: CliRun): Promise<number> {
  if (run.child.exitCode !== null || run.child.signalCode !== null) return run.exited;
  run.child.kill('SIGTERM');
  return run.exited;
}

export { freePort } from '../../http/proxy-support.js';

/**
 * A private redis-server in `dir`, on `port`: AOF on (fsync always), unless `persistence` is
 * false: then nothing is kept (no AOF, no RDB) and a restart starts it empty.
 */
export async function startRedisServer(
  port: number,
  dir: string,
  options: { persistence?: boolean } = {},
): Promise<ChildProcessWithoutNullStreams> {
  const aof = options.persistence === false ? 'no' : 'yes';
  const child = spawn('redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--appendonly',
    aof,
    '--appendfsync',
    'always',
    '--dir',
    dir,
    '--save',
    '',
    '--daemonize',
    'no',
    '--logfile',
    '',
  ]);
  child.stdout.resume();
  child.stderr.resume();
  const probe = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => {});
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return child;
    } catch {
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/**
 * Stops a private redis-server with SHUTDOWN (its AOF is flushed), waiting for it to exit; with
 * `nosave`, SHUTDOWN NOSAVE (as `redis-cli shutdown nosave`: nothing is written on the way out).
 */
export async function shutdownRedisServer(
  port: number,
  child: ChildProcessWithoutNullStreams,
  mode?: 'nosave',
): Promise<void> {
  const client = new Redis({
    port,
    host: '127.0.0.1',
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  await (mode === 'nosave' ? client.call('SHUTDOWN', 'NOSAVE') : client.call('SHUTDOWN')).catch(
    () => {},
  );
  client.disconnect();
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
}
