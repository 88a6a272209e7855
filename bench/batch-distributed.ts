/**
 * The distributed backend against the local runner, in one run, on the same URLs: `runBatch`
 * with a SQLite journal, then `dogged batch --enqueue-only` followed by 1, 2 and 4
 * `dogged worker` processes sharing the job (BullMQ on a private redis-server, results in
 * PostgreSQL). Every URL answers 200 with 1 KiB (bench/server.ts, in its own process); bodies
 * are kept (the default of both runners); 16 requests in flight in the local runner and in each
 * worker; the job's fleet-wide per-host cap is 64, so that 4 workers never wait on it.
 *
 * Warm-up: the local runner does a whole run in this process before the measured ones; the
 * workers of each distributed run are started first, without `--job` (they take every job on the
 * queue, as a fleet's long-lived workers do), and finish a warm-up job of BENCH_DIST_WARMUP lines
 * per worker (default: as many as the measured job, at most 20,000, so that each worker has done
 * at least the work the local runner's warm-up did) before the measured job is enqueued; every
 * count and CPU figure of a worker below is taken from the end of its warm-up.
 * BENCH_DIST_WARMUP=0 measures cold workers, started after the measured enqueue.
 * BENCH_DIST_CHUNK sets the jobs' `--chunk-size`.
 *
 * Throughput: URLs/s in the steady state, between the moments 25% and 90% of the lines were
 * finished, from each line's own `finished_at` as the runner recorded it (the SQLite journal, the
 * PostgreSQL store: epoch ms), and the wall time (enqueue + work for the distributed runs). The
 * job's finished counters in Redis, which workers send once a second or every 2,000 lines, are
 * polled only to follow the run: steps that coarse put ±10% on a rate taken over 2 s.
 *
 * Per URL, each distributed run, over the whole job (from just before the enqueue starts):
 * - Redis round trips sent and Redis commands sent: counted in the dogged processes themselves.
 *   bench/redis-counts.mjs, loaded with `--import` into the enqueuing `dogged batch` and every
 *   `dogged worker` (the CLI from dist/, as users run it, rebuilt from src/ first), wraps ioredis:
 *   every command serialized onto a connection is one command sent (each command of a pipeline
 *   or MULTI counts, an EVALSHA counts once); one round trip is a lone command, or a whole
 *   pipeline or MULTI written at once. Each process writes its counts to a file when it exits
 *   (BENCH_DIST_SOURCES=1 prints the round trips by what they began with). No MONITOR: it costs
 *   Redis more than the work it watches.
 * - Redis commands executed: the sum of `calls` in `INFO commandstats`, after the last dogged
 *   process exited, less before the enqueue, less the commands this script sent meanwhile
 *   (counted exactly). Commands called inside Lua scripts count here (BullMQ's scripts too).
 * - PostgreSQL transactions: `xact_commit + xact_rollback` of `pg_stat_database`, after the last
 *   dogged process and its backends exited (a backend reports its counts as it exits), less
 *   before the enqueue. The job lives in a database created for this run (needs CREATEDB), so
 *   no other client counts; a fresh schema per run, dropped after; the database dropped at the
 *   end. This script's own queries go to the database of DOGGED_BENCH_POSTGRES.
 * - CPU µs, from /proc/PID/stat (utime + stime), until the last line is recorded:
 *   - workers: each worker process (children included: cutime + cstime, and live descendants),
 *     less what it had used at the end of its warm-up (cold workers: by its first Redis command,
 *     loading and compiling the code, as reported by the hook above from `process.cpuUsage()`),
 *     summed over the workers;
 *   - Redis: the redis-server process (all its threads), from before the enqueue;
 *   - PostgreSQL: the backends of the job's database (their pids from `pg_stat_activity` every
 *     200 ms, their CPU read every 20 ms, so that a backend that exits loses at most its last
 *     20 ms, and one that lives under 200 ms may be missed: its connection set-up; autovacuum
 *     on the job's tables included), plus the server's shared processes (the
 *     postmaster and its children that serve no database: WAL writer, checkpointer, background
 *     writer...), which the job's writes keep busy but which work for every client of the server
 *     (their share is printed apart). Other databases' backends do not count; their CPU
 *     meanwhile is printed as a warning. Measured only when the server runs on this machine.
 * - the local runner's CPU: the bench process's `process.cpuUsage()` over `runBatch`.
 *
 * Needs Linux (/proc), redis-server on the PATH (started here on a free port with
 * `--save '' --appendonly no`) and PostgreSQL on 127.0.0.1:5432 with trust auth and CREATEDB
 * (DOGGED_BENCH_POSTGRES overrides the URL). Scale with BENCH_DIST_URLS (default 40,000) and
 * BENCH_ROUNDS (default 1; medians reported, settings interleaved). 40,000, not 20,000: a
 * worker's first 1.5–2 s of a job, while the enqueue still runs beside it, cost it two to four
 * times the CPU a request of the rest does (the enqueue's inserts, the new connections); with
 * four workers a job of 20,000 lines is 25% done within that time, so its "steady" rate was
 * mostly the start's (0.77–0.92× one worker in three runs, 1.10× at 40,000; 2026-12-05).
 * Every process it starts, the private Redis and the database go at the end, on an error and on
 * Ctrl-C.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import pg from 'pg';
import { jobKeys } from '../src/batch/distributed/keys.js';
import { JobCounters } from '../src/batch/distributed/stats.js';
import { runBatch } from '../src/index.js';
import { buildCli } from '../test/support/build.js';
import { CLI_ENTRY } from '../test/support/cli.js';
import { fmt, machine, medianOf, startBenchServer, table, verdict } from './lib.js';

/** Set in the dogged processes this bench starts: where to write their Redis counts. */
const COUNTS_ENV = 'DOGGED_BENCH_REDIS_COUNTS';

/** What a dogged process reports when it exits. */
interface ClientCounts {
  commands: number;
  roundTrips: number;
  /** CPU the process had used when it sent its first Redis command, µs. */
  startCpuUs: number;
  /** Round trips by what they began with (command name, EVALSHA by its first key's last part). */
  bySource?: Record<string, number>;
}

const URLS = Number(process.env.BENCH_DIST_URLS ?? 40_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
const PG_URL = process.env.DOGGED_BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
/** In flight: in the local runner, and in each worker. */
const CONCURRENCY = Number(process.env.BENCH_DIST_CONCURRENCY ?? 16);
/** The job's fleet-wide cap per host: above 4 workers × 16. */
const PER_HOST = Number(process.env.BENCH_DIST_PER_HOST ?? 64);
const WORKERS = (process.env.BENCH_DIST_WORKERS ?? '1,2,4').split(',').map(Number);
/**
 * Lines per worker of a job each run's workers finish before the measured one (0: cold workers,
 * started after the measured enqueue): the local runner is warmed up by a whole run in this
 * process.
 */
const WARMUP = Number(process.env.BENCH_DIST_WARMUP ?? Math.min(URLS, 20_000));
/** `--chunk-size` of the jobs (BENCH_DIST_CHUNK; the default when unset). */
const CHUNK = process.env.BENCH_DIST_CHUNK;
const POLL_MS = 200;
const STALL_MS = 60_000;
const root = fileURLToPath(new URL('..', import.meta.url));

interface ProcStat {
  ppid: number;
  /** utime + stime, clock ticks. */
  ticks: number;
  /** cutime + cstime: children that exited and were waited for, clock ticks. */
  childTicks: number;
}

function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the command name, which is in parentheses: field N is at N - 3.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const field = (n: number): number => Number(fields[n - 3]);
  return { ppid: field(4), ticks: field(14) + field(15), childTicks: field(16) + field(17) };
}

/** Every process now. */
function allStats(): Map<number, ProcStat> {
  const stats = new Map<number, ProcStat>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (stat) stats.set(Number(name), stat);
  }
  return stats;
}

function descendants(stats: Map<number, ProcStat>, pid: number): number[] {
  const out: number[] = [];
  for (const [child, stat] of stats)
    if (stat.ppid === pid) out.push(child, ...descendants(stats, child));
  return out;
}

function ticksPerSecond(): number {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout;
  const n = Number(out?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  return typeof address === 'object' && address ? address.port : 0;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * URLs/s between the moments 25% and 90% of the lines were finished, from the lines' finish
 * times (epoch ms, any order).
 */
function steadyRate(finishedAt: number[]): number {
  const times = [...finishedAt].sort((a, b) => a - b);
  const from = Math.ceil(0.25 * times.length) - 1;
  const to = Math.ceil(0.9 * times.length) - 1;
  const span = (times[to] ?? Number.NaN) - (times[from] ?? Number.NaN);
  return span > 0 ? ((to - from) * 1000) / span : Number.NaN;
}

/**
 * CPU of a local PostgreSQL server over a window, spent for the job's database (see the
 * header): its backends, tracked by pid, and the server's shared processes. `undefined` from
 * {@link PgCpu.find} when the server is not on this machine.
 */
class PgCpu {
  /** Our backends' CPU is read this often: one that exits loses at most this much. */
  static readonly FAST_MS = 20;
  /** New backends are looked for (and other databases' read) this often. */
  static readonly SLOW_MS = 200;
  readonly #db: pg.Client;
  readonly #postmaster: number;
  readonly #ours: string;
  /** This script's own connection: not a client of the server's to count. */
  readonly #self: number;
  /** Backends of a database, by pid: ticks when first and last seen. */
  #backends = new Map<number, { ours: boolean; first: number; last: number }>();
  /** The postmaster and its children that serve no database, ticks at the start. */
  #shared = new Map<number, number>();
  #timers: NodeJS.Timeout[] = [];
  #looking: Promise<void> | undefined;

  private constructor(db: pg.Client, postmaster: number, ours: string, self: number) {
    this.#db = db;
    this.#postmaster = postmaster;
    this.#ours = ours;
    this.#self = self;
  }

  static async find(db: pg.Client, ours: string): Promise<PgCpu | undefined> {
    const { rows } = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const pid = rows[0]?.pid ?? -1;
    const backend = readStat(pid);
    if (!backend) return undefined;
    const comm = readFileSync(`/proc/${backend.ppid}/comm`, 'utf8');
    return /postgres|postmaster/.test(comm) ? new PgCpu(db, backend.ppid, ours, pid) : undefined;
  }

  /** The database of every backend that has one, by pid. */
  async #activity(): Promise<Map<number, string>> {
    const { rows } = await this.#db.query<{ pid: number; datname: string }>(
      'SELECT pid, datname FROM pg_stat_activity WHERE datname IS NOT NULL',
    );
    return new Map(rows.filter((r) => r.pid !== this.#self).map((r) => [r.pid, r.datname]));
  }

  /** The postmaster and its children that are not backends of a database: ticks by pid. */
  #sharedNow(stats: Map<number, ProcStat>, backends: Map<number, string>): Map<number, number> {
    const shared = new Map<number, number>();
    for (const [pid, stat] of stats)
      if (
        pid === this.#postmaster ||
        (stat.ppid === this.#postmaster && pid !== this.#self && !backends.has(pid))
      )
        shared.set(pid, stat.ticks);
    return shared;
  }

  #read(all: boolean): void {
    for (const [pid, seen] of this.#backends) {
      if (!all && !seen.ours) continue;
      const ticks = readStat(pid)?.ticks;
      if (ticks !== undefined) seen.last = ticks;
    }
  }

  async #lookForNew(): Promise<void> {
    for (const [pid, db] of await this.#activity()) {
      if (this.#backends.has(pid)) continue;
      // Born since the start: all its CPU is in the window.
      this.#backends.set(pid, { ours: db === this.#ours, first: 0, last: 0 });
    }
    this.#read(true);
  }

  async start(): Promise<void> {
    const backends = await this.#activity();
    const stats = allStats();
    this.#shared = this.#sharedNow(stats, backends);
    this.#backends = new Map();
    for (const [pid, db] of backends) {
      const ticks = stats.get(pid)?.ticks;
      if (ticks !== undefined)
        this.#backends.set(pid, { ours: db === this.#ours, first: ticks, last: ticks });
    }
    this.#timers = [
      setInterval(() => this.#read(false), PgCpu.FAST_MS),
      setInterval(() => {
        this.#looking ??= this.#lookForNew()
          .catch(() => {})
          .finally(() => {
            this.#looking = undefined;
          });
      }, PgCpu.SLOW_MS),
    ];
  }

  /**
   * Ticks since start(): of the job's database's backends, of the shared processes (alive
   * throughout), and of other databases' backends (as far as seen).
   */
  async stop(): Promise<{ ours: number; shared: number; others: number }> {
    for (const timer of this.#timers) clearInterval(timer);
    await this.#looking;
    await this.#lookForNew();
    const stats = allStats();
    const backends = await this.#activity();
    let shared = 0;
    for (const [pid, ticks] of this.#sharedNow(stats, backends)) {
      const before = this.#shared.get(pid);
      if (before !== undefined && !this.#backends.has(pid)) shared += ticks - before;
    }
    let ours = 0;
    let others = 0;
    for (const { ours: mine, first, last } of this.#backends.values()) {
      if (mine) ours += last - first;
      else others += last - first;
    }
    return { ours, shared, others };
  }
}

interface LocalRun {
  rate: number;
  wallMs: number;
  cpuUs: number;
}

interface DistRun {
  rate: number;
  enqueueMs: number;
  workMs: number;
  roundTrips: number;
  commandsSent: number;
  commandsExecuted: number;
  transactions: number;
  workerCpuUs: number;
  redisCpuUs: number;
  /** NaN when the server is not on this machine. */
  pgCpuUs: number;
  /** Of pgCpuUs: the postmaster and its processes that serve no database. */
  pgSharedCpuUs: number;
  /** Other databases' backends meanwhile (not in pgCpuUs). */
  pgOtherCpuUs: number;
}

/**
 * The dogged CLI as users run it: dist/ (brought up to date with src/ before the runs), with the
 * Redis counting hook (plain JavaScript: no TypeScript loader in the workers, whose CPU is
 * measured).
 */
const dogged = (args: string[]): string[] => [
  // BENCH_DIST_NODE_ARGS: more node flags for the dogged processes, e.g. `--cpu-prof`.
  ...(process.env.BENCH_DIST_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
  '--import',
  fileURLToPath(new URL('redis-counts.mjs', import.meta.url)),
  join(root, CLI_ENTRY),
  ...args,
];

async function exited(child: ChildProcess, what: string): Promise<void> {
  const [code, signal] =
    child.exitCode !== null || child.signalCode !== null
      ? [child.exitCode, child.signalCode]
      : ((await once(child, 'exit')) as [number | null, NodeJS.Signals | null]);
  if (code !== 0) throw new Error(`${what} exited with ${code ?? signal}`);
}

function readCounts(file: string): ClientCounts {
  const counts = JSON.parse(readFileSync(file, 'utf8')) as ClientCounts;
  if (counts.commands === 0)
    throw new Error(`${file}: no Redis command counted: the ioredis hook did not take`);
  return counts;
}

/** The server, the private Redis, the database, the processes: set up once, torn down once. */
class Rig {
  readonly work = mkdtempSync(join(tmpdir(), 'dogged-bench-dist-'));
  readonly input = join(this.work, 'urls.txt');
  readonly warmInput = join(this.work, 'warm-up.txt');
  readonly tickUs = 1e6 / ticksPerSecond();
  readonly children = new Set<ChildProcess>();
  readonly dbName = `dogged_bench_${randomBytes(4).toString('hex')}`;
  readonly dbUrl = new URL(PG_URL);
  readonly admin = new pg.Client({ connectionString: PG_URL });
  server: { url: string; stop: () => void } | undefined;
  redis: Redis | undefined;
  redisPid = -1;
  queue = '';
  pgCpu: PgCpu | undefined;
  dbCreated = false;
  /** Commands this script sent to Redis, to take out of INFO commandstats. */
  ownCommands = 0;
  #cleaning: Promise<void> | undefined;

  constructor() {
    this.dbUrl.pathname = `/${this.dbName}`;
    this.admin.on('error', () => {});
  }

  track(child: ChildProcess): ChildProcess {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  get client(): Redis {
    if (!this.redis) throw new Error('Redis is not started');
    return this.redis;
  }

  own<T>(reply: Promise<T>): Promise<T> {
    this.ownCommands++;
    return reply;
  }

  async setUp(): Promise<void> {
    await buildCli(root);
    this.server = await startBenchServer();
    const base = this.server.url;
    writeFileSync(
      this.input,
      Array.from({ length: URLS }, (_, i) => `${base}/item/${i}\n`).join(''),
    );
    writeFileSync(
      this.warmInput,
      Array.from({ length: WARMUP * Math.max(...WORKERS) }, (_, i) => `${base}/warm/${i}\n`).join(
        '',
      ),
    );
    const port = await freePort();
    const redisServer = this.track(
      spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { cwd: this.work, stdio: 'ignore' },
      ),
    );
    this.redisPid = redisServer.pid ?? -1;
    this.queue = `redis://127.0.0.1:${port}/0`;
    this.redis = new Redis({ port, host: '127.0.0.1', retryStrategy: (n) => (n > 50 ? null : 50) });
    this.redis.on('error', () => {});
    await this.redis.ping();
    await this.admin.connect();
    await this.admin.query(`CREATE DATABASE ${this.dbName}`).catch((error: Error) => {
      throw new Error(
        `cannot create a database for the benchmark (${error.message}): it needs CREATEDB on ${this.dbUrl.host}, so that the transactions it counts are the job's`,
      );
    });
    this.dbCreated = true;
    this.pgCpu = await PgCpu.find(this.admin, this.dbName);
  }

  /** Every process stopped, the database dropped, the files removed; once. */
  cleanup(): Promise<void> {
    this.#cleaning ??= (async () => {
      // The dogged processes first, so that they do not see Redis go; then the rest.
      const redisServer = [...this.children].filter((c) => c.pid === this.redisPid);
      for (const group of [
        [...this.children].filter((c) => c.pid !== this.redisPid),
        redisServer,
      ]) {
        for (const child of group) child.kill('SIGTERM');
        await Promise.race([
          Promise.all(
            group.map((c) =>
              c.exitCode === null && c.signalCode === null ? once(c, 'exit') : null,
            ),
          ),
          sleep(5000),
        ]);
      }
      this.killAll();
      this.server?.stop();
      this.redis?.disconnect();
      await this.admin.end().catch(() => {});
      if (this.dbCreated) {
        const dropper = new pg.Client({ connectionString: PG_URL });
        dropper.on('error', () => {});
        try {
          await dropper.connect();
          await dropper.query(`DROP DATABASE IF EXISTS ${this.dbName} WITH (FORCE)`);
        } catch (error) {
          console.error(`could not drop database ${this.dbName}: ${(error as Error).message}`);
        } finally {
          await dropper.end().catch(() => {});
        }
      }
      rmSync(this.work, { recursive: true, force: true });
    })();
    return this.#cleaning;
  }

  /** The last resort, synchronous: on exit. */
  killAll(): void {
    for (const child of this.children) child.kill('SIGKILL');
    rmSync(this.work, { recursive: true, force: true });
  }

  async commandsExecuted(): Promise<number> {
    const info = await this.own(this.client.info('commandstats'));
    return [...info.matchAll(/calls=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  }

  async transactions(): Promise<number> {
    const { rows } = await this.admin.query<{ n: number }>(
      'SELECT (xact_commit + xact_rollback)::float8 AS n FROM pg_stat_database WHERE datname = $1',
      [this.dbName],
    );
    return rows[0]?.n ?? 0;
  }

  /** Until no backend is connected to the job's database: its counts are all reported. */
  async quietDatabase(): Promise<void> {
    for (const start = Date.now(); ; await sleep(50)) {
      const { rows } = await this.admin.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1',
        [this.dbName],
      );
      if ((rows[0]?.n ?? 0) === 0) return;
      if (Date.now() - start > 30_000)
        throw new Error(`backends still connected to ${this.dbName} after 30 s`);
    }
  }

  /** A dogged CLI process, counting its Redis traffic into `countsFile`. */
  dogged(args: string[], countsFile: string): ChildProcess {
    return this.track(
      spawn(process.execPath, dogged(args), {
        cwd: root,
        env: { ...process.env, [COUNTS_ENV]: countsFile },
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
    );
  }

  async local(round: number): Promise<LocalRun> {
    const db = join(this.work, `local-${round}.sqlite`);
    const cpu = process.cpuUsage();
    const start = performance.now();
    const result = await runBatch({
      db,
      input: this.input,
      concurrency: CONCURRENCY,
      perHost: CONCURRENCY,
    });
    const wallMs = performance.now() - start;
    const used = process.cpuUsage(cpu);
    if (result.counts.done !== URLS)
      throw new Error(`local runner ended with ${JSON.stringify(result.counts)}`);
    const journal = new Database(db, { readonly: true });
    let finishedAt: number[];
    try {
      finishedAt = journal
        .prepare('SELECT finished_at AS t FROM requests')
        .all()
        .map((row) => (row as { t: number }).t);
    } finally {
      journal.close();
    }
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${db}${suffix}`, { force: true });
    return { rate: steadyRate(finishedAt), wallMs, cpuUs: used.user + used.system };
  }

  /**
   * Polls the job's finished counters until all `total` lines are finished. Throws when a worker
   * exits or nothing moves for STALL_MS.
   */
  async finish(job: string, total: number, procs: ChildProcess[]): Promise<void> {
    const counters = new JobCounters(this.client, jobKeys(job));
    let progressAt = performance.now();
    let finished = 0;
    for (;;) {
      const stats = await this.own(counters.read());
      const now = performance.now();
      const n = stats.done + stats.failed + stats.invalid;
      if (n > finished) progressAt = now;
      finished = n;
      if (finished >= total) return;
      const dead = procs.find((p) => p.exitCode !== null || p.signalCode !== null);
      if (dead) throw new Error(`a worker exited with ${dead.exitCode ?? dead.signalCode}`);
      if (now - progressAt > STALL_MS)
        throw new Error(`${job}: no progress for ${STALL_MS / 1000} s at ${finished}/${total}`);
      await sleep(POLL_MS);
    }
  }

  /** CPU ticks of each process, its waited-for children and its live descendants. */
  ticksOf(procs: ChildProcess[]): number[] {
    const stats = allStats();
    return procs.map((proc) => {
      const pid = proc.pid ?? -1;
      const stat = stats.get(pid);
      let ticks = (stat?.ticks ?? 0) + (stat?.childTicks ?? 0);
      for (const child of descendants(stats, pid)) ticks += stats.get(child)?.ticks ?? 0;
      return ticks;
    });
  }

  /** Each worker's Redis counts so far (SIGUSR2 to the hook, which writes FILE.mark). */
  async mark(procs: ChildProcess[], files: string[]): Promise<ClientCounts[]> {
    for (const proc of procs) proc.kill('SIGUSR2');
    const until = Date.now() + 10_000;
    return Promise.all(
      files.map(async (file) => {
        for (;;) {
          try {
            return readCounts(`${file}.mark`);
          } catch (error) {
            if (Date.now() > until) throw error;
            await sleep(10);
          }
        }
      }),
    );
  }

  async distributed(workers: number, round: number): Promise<DistRun> {
    const tag = `r${round}w${workers}`;
    const job = `bench-${tag}`;
    const schema = `run_${tag}`;
    const store = `${this.dbUrl.href}${this.dbUrl.search ? '&' : '?'}schema=${schema}`;
    const where = ['--queue', this.queue, '--store', store];
    const countsFile = (who: string): string => join(this.work, `${tag}-${who}.json`);
    const workerFiles = Array.from({ length: workers }, (_, i) => countsFile(`worker-${i}`));
    // The same empty Redis for every run; no backend left from the last one.
    await this.own(this.client.flushall());
    await this.own(this.client.script('FLUSH'));
    await this.quietDatabase();
    // Workers take every job on the queue (no --job): a warm-up job first, then the measured one.
    const startWorkers = (): ChildProcess[] =>
      workerFiles.map((file) =>
        this.dogged(['worker', ...where, '--concurrency', String(CONCURRENCY), '-q'], file),
      );
    const enqueue = async (name: string, input: string, counts: string): Promise<void> => {
      const child = this.dogged(
        [
          ...['batch', input, ...where, '--job', name, '--enqueue-only'],
          ...['--per-host', String(PER_HOST), '-q'],
          ...(CHUNK ? ['--chunk-size', CHUNK] : []),
        ],
        counts,
      );
      await exited(child, `dogged batch --enqueue-only --job ${name}`);
    };

    let procs: ChildProcess[] = [];
    let startTicks: number[] | undefined;
    let startCounts: ClientCounts[] | undefined;
    if (WARMUP > 0) {
      procs = startWorkers();
      // WARMUP lines per worker: the first lines of the warm-up input.
      const warmInput = join(this.work, `warm-up-${workers}.txt`);
      const lines = readFileSync(this.warmInput, 'utf8')
        .split('\n')
        .slice(0, WARMUP * workers);
      writeFileSync(warmInput, `${lines.join('\n')}\n`);
      await enqueue(`warm-${tag}`, warmInput, countsFile('warm-enqueue'));
      await this.finish(`warm-${tag}`, WARMUP * workers, procs);
      startTicks = this.ticksOf(procs);
      startCounts = await this.mark(procs, workerFiles);
    }

    const ownBefore = this.ownCommands;
    const executedBefore = await this.commandsExecuted();
    const transactionsBefore = await this.transactions();
    const redisBefore = readStat(this.redisPid)?.ticks ?? 0;
    await this.pgCpu?.start();

    const enqueueStart = performance.now();
    await enqueue(job, this.input, countsFile('enqueue'));
    const enqueueMs = performance.now() - enqueueStart;

    const workStart = performance.now();
    if (WARMUP === 0) procs = startWorkers();
    await this.finish(job, URLS, procs);
    const workMs = performance.now() - workStart;
    const redisTicks = (readStat(this.redisPid)?.ticks ?? 0) - redisBefore;
    const pgTicks = await this.pgCpu?.stop();
    const endTicks = this.ticksOf(procs);
    const workerTicks = endTicks.reduce((sum, t, i) => sum + t - (startTicks?.[i] ?? 0), 0);

    for (const proc of procs) proc.kill('SIGTERM');
    await Promise.all(procs.map((p, i) => exited(p, `worker ${i + 1}`)));
    const enqueueCounts = readCounts(countsFile('enqueue'));
    // Warm workers: what they sent for the measured job (and since its enqueue began) only.
    const workerCounts = workerFiles.map((file, i) => {
      const end = readCounts(file);
      const before = startCounts?.[i];
      return before
        ? {
            commands: end.commands - before.commands,
            roundTrips: end.roundTrips - before.roundTrips,
            startCpuUs: 0,
            bySource: Object.fromEntries(
              Object.entries(end.bySource ?? {})
                .map(([k, v]) => [k, v - (before.bySource?.[k] ?? 0)])
                .filter(([, v]) => (v as number) > 0),
            ),
          }
        : end;
    });
    const sum = (pick: (c: ClientCounts) => number, list: ClientCounts[]): number =>
      list.reduce((total, c) => total + pick(c), 0);
    const clients = [enqueueCounts, ...workerCounts];
    if (process.env.BENCH_DIST_SOURCES) {
      // Where the round trips went (BENCH_DIST_SOURCES=1): the enqueue, then the workers summed.
      const show = (label: string, list: ClientCounts[]): void => {
        const total: Record<string, number> = {};
        for (const c of list)
          for (const [k, v] of Object.entries(c.bySource ?? {})) total[k] = (total[k] ?? 0) + v;
        const top = Object.entries(total).sort((a, b) => b[1] - a[1]);
        process.stderr.write(
          `${workers} worker(s), ${label} round trips: ${top.map(([k, v]) => `${k} ${v}`).join(', ')}\n`,
        );
      };
      show('enqueue', [enqueueCounts]);
      show('workers', workerCounts);
    }
    await this.quietDatabase();
    const ownDuring = this.ownCommands - ownBefore;
    const executed = (await this.commandsExecuted()) - executedBefore - ownDuring;
    const transactions = (await this.transactions()) - transactionsBefore;

    // Outside the measurement: every line recorded done, then the schema goes.
    let finishedAt: number[] = [];
    const check = new pg.Client({ connectionString: this.dbUrl.href });
    await check.connect();
    try {
      const { rows } = await check.query<{ done: number; t: number[] }>(
        `SELECT count(*) FILTER (WHERE state = 'done')::int AS done,
            array_agg(finished_at::float8) AS t
          FROM ${schema}.requests WHERE job = $1`,
        [job],
      );
      if (rows[0]?.done !== URLS)
        throw new Error(`job ${job}: ${rows[0]?.done ?? 0} of ${URLS} lines recorded done`);
      finishedAt = rows[0].t;
      await check.query(`DROP SCHEMA ${schema} CASCADE`);
    } finally {
      await check.end();
    }

    const perUrl = (n: number): number => n / URLS;
    return {
      rate: steadyRate(finishedAt),
      enqueueMs,
      workMs,
      roundTrips: perUrl(sum((c) => c.roundTrips, clients)),
      commandsSent: perUrl(sum((c) => c.commands, clients)),
      commandsExecuted: perUrl(executed),
      transactions: perUrl(transactions),
      workerCpuUs: perUrl(workerTicks * this.tickUs - sum((c) => c.startCpuUs, workerCounts)),
      redisCpuUs: perUrl(redisTicks * this.tickUs),
      pgCpuUs: pgTicks ? perUrl((pgTicks.ours + pgTicks.shared) * this.tickUs) : Number.NaN,
      pgSharedCpuUs: pgTicks ? perUrl(pgTicks.shared * this.tickUs) : Number.NaN,
      pgOtherCpuUs: pgTicks ? perUrl(pgTicks.others * this.tickUs) : 0,
    };
  }
}

/** Prints the tables and the goals. */
function report(locals: LocalRun[], runs: Map<number, DistRun[]>, pgMeasured: boolean): void {
  const med = <T>(list: T[], pick: (r: T) => number): number => medianOf(list.map(pick));
  const localRate = med(locals, (r) => r.rate);
  const dist = WORKERS.map((workers) => {
    const list = runs.get(workers) ?? [];
    const m = (pick: (r: DistRun) => number): number => med(list, pick);
    return {
      workers,
      rate: m((r) => r.rate),
      enqueueMs: m((r) => r.enqueueMs),
      workMs: m((r) => r.workMs),
      roundTrips: m((r) => r.roundTrips),
      commandsSent: m((r) => r.commandsSent),
      commandsExecuted: m((r) => r.commandsExecuted),
      transactions: m((r) => r.transactions),
      workerCpuUs: m((r) => r.workerCpuUs),
      redisCpuUs: m((r) => r.redisCpuUs),
      pgCpuUs: m((r) => r.pgCpuUs),
      pgSharedCpuUs: m((r) => r.pgSharedCpuUs),
      pgOtherCpuUs: m((r) => r.pgOtherCpuUs),
    };
  });
  type Row = (typeof dist)[number];
  const one = dist[0] as Row;
  const four = dist[dist.length - 1] as Row;
  const num = (n: number, digits: number): string => (Number.isNaN(n) ? 'n/a' : fmt(n, digits));
  const seconds = (ms: number): string => `${fmt(ms / 1000, 1)} s`;
  const name = (w: number): string => `distributed, ${w} worker${w > 1 ? 's' : ''}`;

  console.log(
    `\n## Distributed batch against the local runner: ${URLS.toLocaleString('en-US')} URLs per run, ${ROUNDS} round${ROUNDS > 1 ? 's (medians)' : ''}, 1 KiB 200s from a local server, bodies kept, ${CONCURRENCY} in flight in the runner and in each worker; workers, Redis, PostgreSQL and the server share this machine (${machine()}; load average ${loadavg()[0]?.toFixed(1)} at the start)\n`,
  );
  console.log(
    table(
      ['runner', 'URLs/s (25–90% done)', '× local runner', '× 1 worker', 'wall time'],
      [
        [
          'local runner (runBatch, SQLite journal)',
          num(localRate, 2),
          '1.00',
          '',
          seconds(med(locals, (r) => r.wallMs)),
        ],
        ...dist.map((d) => [
          name(d.workers),
          num(d.rate, 2),
          num(d.rate / localRate, 2),
          num(d.rate / one.rate, 2),
          `${seconds(d.enqueueMs)} enqueue + ${seconds(d.workMs)} work`,
        ]),
      ],
    ),
  );
  console.log(
    '\nPer URL, whole job (enqueue and work; counts until every dogged process exited, CPU until the last line was recorded):\n',
  );
  console.log(
    table(
      [
        'runner',
        'Redis round trips sent',
        'Redis commands sent',
        'Redis commands executed (Lua inside)',
        'PostgreSQL transactions',
        'CPU µs: runner or workers',
        'CPU µs: Redis',
        'CPU µs: PostgreSQL',
      ],
      [
        ['local runner', '', '', '', '', num(med(locals, (r) => r.cpuUs) / URLS, 1), '', ''],
        ...dist.map((d) => [
          name(d.workers),
          num(d.roundTrips, 3),
          num(d.commandsSent, 3),
          num(d.commandsExecuted, 2),
          num(d.transactions, 4),
          num(d.workerCpuUs, 1),
          num(d.redisCpuUs, 1),
          num(d.pgCpuUs, 1),
        ]),
      ],
    ),
  );
  if (!pgMeasured)
    console.log('\nPostgreSQL CPU not measured: the server does not run on this machine.');
  else {
    console.log(
      `\nPostgreSQL CPU: the job's database's backends, plus the server's shared processes (postmaster, WAL writer, checkpointer...): ${dist.map((d) => `${d.workers}: ${num(d.pgSharedCpuUs, 1)}`).join(', ')} µs per URL of it.`,
    );
    const otherPg = Math.max(...dist.map((d) => d.pgOtherCpuUs));
    if (otherPg >= 1)
      console.log(
        `Other clients of the PostgreSQL server were busy meanwhile (up to ${fmt(otherPg, 1)} µs per URL in their backends, not counted): the shared processes did some of their work too, and every figure here is slower for it. Run on a quiet machine.`,
      );
  }

  const each = (pick: (d: Row) => number, max: number, digits: number): string =>
    `${verdict(dist.every((d) => pick(d) <= max))} (${dist.map((d) => `${d.workers}: ${num(pick(d), digits)}`).join(', ')})`;
  console.log(
    `\nGoal (one worker at least 0.7× the local runner): ${verdict(one.rate >= 0.7 * localRate)} (${num(one.rate / localRate, 3)}×)`,
  );
  console.log(
    `Goal (at most 0.05 Redis round trips per URL, with 1, 2 and 4 workers): ${each((d) => d.roundTrips, 0.05, 3)}`,
  );
  console.log(
    `Goal (at most 0.02 PostgreSQL transactions per URL, with 1, 2 and 4 workers): ${each((d) => d.transactions, 0.02, 4)}`,
  );
  console.log(
    `Goal (Redis at most 20 µs of CPU per URL, with 1, 2 and 4 workers): ${each((d) => d.redisCpuUs, 20, 1)}`,
  );
  console.log(
    pgMeasured
      ? `Goal (PostgreSQL at most 100 µs of CPU per URL, with 1, 2 and 4 workers): ${each((d) => d.pgCpuUs, 100, 1)}`
      : 'Goal (PostgreSQL at most 100 µs of CPU per URL): not measured',
  );
  console.log(
    `Goal (4 workers at least 0.8× one worker, on this machine): ${verdict(four.rate >= 0.8 * one.rate)} (${num(four.rate / one.rate, 3)}×)`,
  );
}

async function main(): Promise<void> {
  if (process.platform !== 'linux') throw new Error('this benchmark reads /proc: Linux only');
  const rig = new Rig();
  const onSignal = (signal: NodeJS.Signals): void => {
    console.error(`\n${signal}: stopping the workers, Redis and the database`);
    void rig.cleanup().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // A crash past every finally: no process of ours outlives the benchmark.
  process.on('exit', () => rig.killAll());
  try {
    await rig.setUp();
    // Rounds interleaved (local, 1, 2, 4, then 4, 2, 1, local...): no setting always first.
    const locals: LocalRun[] = [];
    const runs = new Map<number, DistRun[]>(WORKERS.map((w) => [w, []]));
    await rig.local(-1); // warms up the server's connections and this process's JIT
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? [0, ...WORKERS] : [...WORKERS].reverse().concat(0);
      for (const workers of order) {
        if (workers === 0) locals.push(await rig.local(round));
        else runs.get(workers)?.push(await rig.distributed(workers, round));
      }
    }
    report(locals, runs, rig.pgCpu !== undefined);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await rig.cleanup();
  }
}

await main();
// Nothing should be left, but a straggling client must not keep the benchmark alive. The exit
// code is GOAL_MISSED when a goal was missed (verdict).
process.exit();
