/**
 * Clients against a REAL rate limiter: Debian's nginx (`limit_req`, test/limits/real-limiters.ts)
 * on loopback, one limit shared by every client (constant key), `rate=200r/s burst=20 nodelay`,
 * answering 429 to whatever is over it: (A) without Retry-After, (B) with `Retry-After: 1`.
 * Every client fetches the same N URLs (`/item/<i>`, default 3,000) with its DEFAULT settings
 * (peers: 16 concurrent, their default retries; dogged: whatever this build's defaults are, no
 * rate option passed). The ideal is the limiter's own pace: N / 200 s (15 s for 3,000).
 *
 * Each row runs against a FRESH nginx (a full bucket, an empty log), so no row inherits
 * another's debt. "requests sent" and "429 share" come from nginx's access log (what the server
 * saw, retries included); "done"/"failed" from the client (the batch's final counts, or 200s
 * with the whole body for the others); wall time from the first request to the last outcome.
 * A run that has not finished after max(90 s, 8 × ideal) is stopped and reported as capped
 * (its unfinished lines count as not done).
 *
 * Then "upstream restart": nginx as a reverse proxy (2000r/s burst 100: the limit never binds)
 * in front of an in-process origin that is stopped 0.3 s after the start and started again 3 s
 * later (nginx answers 502 meanwhile); dogged with `rate: 500` over the same N URLs. Ideal:
 * N / 500 + 3 s.
 *
 * Goals, ENFORCED (exit code 3, GOAL_MISSED, when one is missed, after everything is printed): every dogged
 * row, with and without Retry-After: 100% done, at most 5% of requests answered 429, wall at
 * most 1.25 × ideal; upstream restart: 100% done, wall at most 1.5 × ideal. Peers are reported,
 * not judged.
 *
 * `dogged distributed batch` needs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 with
 * trust auth and a database `test` (.ci/services.sh); DOGGED_BENCH_REDIS (default
 * redis://127.0.0.1:6379/9) and DOGGED_BENCH_POSTGRES override them. The two workers are
 * `dogged worker` processes started (and waiting) before the job is enqueued; its wall time runs
 * from the enqueueing `runBatch` call until the store has no pending line (polled every 100 ms),
 * so it includes the workers noticing the new job. Each run has its own job name; its Redis keys
 * and rows are deleted after it, the schema at the end.
 *
 * Then "whole-origin outage": a Session with its defaults (and got for comparison) under an
 * open-loop load of 200 logical requests/s through nginx to an origin down for 5 s; goal: at
 * most 1.2 times the logical requests of the outage reach nginx during it.
 *
 * Usage: npx tsx bench/real-limits.ts [--only batch,distributed,session,got,ky,axios,limits,restart,outage]
 * [--urls N]. `--only` takes client names (their rows in every table) and table names (`limits`,
 * `restart`, `outage`: every row of that table). With `BENCH_TIMELINE=1` each row also prints
 * the limiter's arrivals per half second (`200s/others`): where a run's time went.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once, setMaxListeners } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import axios, { type AxiosError } from 'axios';
import axiosRetry from 'axios-retry';
import got from 'got';
import { Redis } from 'ioredis';
import ky from 'ky';
import pg from 'pg';
import { runBatch, Session, summarizeJob } from '../src/index.js';
import {
  type NginxLimiter,
  type NginxLimiterOptions,
  nginxVersion,
  startNginxLimiter,
  startUpstream,
  type Upstream,
} from '../test/limits/real-limiters.js';
import { fmt, machine, table, verdict } from './lib.js';

// ---------------------------------------------------------------------------------------------
// Arguments

const CLIENTS = ['batch', 'distributed', 'session', 'got', 'ky', 'axios'] as const;
type ClientName = (typeof CLIENTS)[number];
const TABLES = ['limits', 'restart', 'outage'] as const;

function parseArgs(argv: string[]): { only: Set<string> | undefined; urls: number } {
  let only: Set<string> | undefined;
  let urls = 3000;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [flag, inline] = arg.includes('=') ? arg.split('=', 2) : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) usage(`${flag} needs a value`);
      return v as string;
    };
    if (flag === '--only') {
      only = new Set(
        value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      );
      const known: readonly string[] = [...CLIENTS, ...TABLES];
      const unknown = [...only].filter((name) => !known.includes(name));
      if (unknown.length) usage(`unknown --only name(s): ${unknown.join(', ')}`);
    } else if (flag === '--urls') {
      urls = Number(value());
      if (!Number.isInteger(urls) || urls < 1) usage('--urls must be a positive integer');
    } else {
      usage(`unknown argument ${arg}`);
    }
  }
  return { only, urls };
}

function usage(problem: string): never {
  console.error(
    `${problem}\nusage: npx tsx bench/real-limits.ts [--only ${[...CLIENTS, ...TABLES].join(',')}] [--urls N]`,
  );
  process.exit(2);
}

const { only, urls: URLS } = parseArgs(process.argv.slice(2));
const wanted = (client: ClientName, tableName: (typeof TABLES)[number]): boolean =>
  !only || only.has(client) || only.has(tableName);

const RATE = 200;
const BURST = 20;
const RESTART_RATE = 500;
const OUTAGE_AT_MS = 300;
const OUTAGE_MS = 3000;
const CONCURRENCY = 16;
const IDEAL_S = URLS / RATE;
const RESTART_IDEAL_S = URLS / RESTART_RATE + OUTAGE_MS / 1000;
const CAP_MS = Math.max(90_000, 8 * IDEAL_S * 1000);
const REDIS_URL = process.env.DOGGED_BENCH_REDIS ?? 'redis://127.0.0.1:6379/9';
const PG_URL = process.env.DOGGED_BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'dogged-bench-limits-'));

const urlsOf = (base: string): string[] =>
  Array.from({ length: URLS }, (_, i) => `${base}/item/${i}`);

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

// ---------------------------------------------------------------------------------------------
// Children (dogged worker processes): ended on any exit, Ctrl-C included.

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// One run of one client

interface Outcome {
  done: number;
  failed: number;
  wallMs: number;
  /** True when the run was stopped at CAP_MS. */
  capped: boolean;
}

interface Measured extends Outcome {
  requests: number;
  byStatus: Record<number, number>;
}

/** Runs `work` against a fresh limiter; the limiter's log gives what it saw. */
async function measure(
  options: NginxLimiterOptions,
  run: (limiter: NginxLimiter) => Promise<Outcome>,
): Promise<Measured> {
  const limiter = await startNginxLimiter(options);
  try {
    const outcome = await run(limiter);
    const stats = await limiter.stats();
    if (process.env.BENCH_TIMELINE)
      console.log(`  timeline: ${timeline(await limiter.arrivals())}`);
    return { ...outcome, requests: stats.total, byStatus: stats.byStatus };
  } finally {
    await limiter.close();
  }
}

/** Arrivals per half second, as `200s/others` (BENCH_TIMELINE=1: where a run's time went). */
function timeline(arrivals: readonly { ms: number; status: number }[]): string {
  if (arrivals.length === 0) return 'no arrivals';
  const first = Math.min(...arrivals.map((a) => a.ms));
  const bins: [number, number][] = [];
  for (const a of arrivals) {
    const i = Math.floor((a.ms - first) / 500);
    for (let j = bins.length; j <= i; j++) bins.push([0, 0]);
    const bin = bins[i] as [number, number];
    if (a.status === 200) bin[0]++;
    else bin[1]++;
  }
  return bins.map(([ok, other]) => (other ? `${ok}/${other}` : `${ok}`)).join(' ');
}

/** `CONCURRENCY` async workers pulling URLs from a shared index; `fetchOne` true = done. */
async function pool(
  list: readonly string[],
  fetchOne: (url: string, signal: AbortSignal) => Promise<boolean>,
): Promise<Outcome> {
  const signal = AbortSignal.timeout(CAP_MS);
  setMaxListeners(0, signal); // one listener per request in flight
  let next = 0;
  let done = 0;
  let failed = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < list.length && !signal.aborted) {
        const url = list[next++] as string;
        try {
          if (await fetchOne(url, signal)) done++;
          else failed++;
        } catch {
          failed++;
        }
      }
    }),
  );
  return {
    done,
    failed,
    wallMs: performance.now() - start,
    capped: signal.aborted,
  };
}

let runCounter = 0;

/** `dogged batch`: runBatch with a fresh journal and the URLs in a file; defaults otherwise. */
async function doggedBatch(
  list: readonly string[],
  extra: { rate?: number } = {},
  during?: (startedAt: number) => void,
): Promise<Outcome> {
  const id = runCounter++;
  const input = join(work, `urls-${id}.txt`);
  writeFileSync(input, `${list.join('\n')}\n`);
  const db = join(work, `run-${id}.sqlite`);
  const signal = AbortSignal.timeout(CAP_MS);
  setMaxListeners(0, signal);
  const start = performance.now();
  during?.(start);
  const result = await runBatch({ db, input, signal, ...extra });
  const wallMs = performance.now() - start;
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${db}${suffix}`, { force: true });
  return {
    done: result.counts.done,
    failed: result.counts.failed + result.counts.invalid,
    wallMs,
    capped: result.end === 'interrupted' || signal.aborted,
  };
}

// ---------------------------------------------------------------------------------------------
// dogged distributed batch: 2 `dogged worker` processes, the job enqueued with enqueueOnly.

const schema = `dogged_bench_limits_${randomBytes(4).toString('hex')}`;
const store = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}schema=${schema}`;
let pgPool: pg.Pool | undefined;
let redis: Redis | undefined;

function backends(): { db: pg.Pool; redis: Redis } {
  pgPool ??= new pg.Pool({ connectionString: PG_URL, max: 2 });
  if (!redis) {
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    redis.on('error', () => {});
  }
  return { db: pgPool, redis };
}

function startWorker(job: string): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'worker',
      '--queue',
      REDIS_URL,
      '--store',
      store,
      '--job',
      job,
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
  );
  children.add(child);
  child.once('exit', () => children.delete(child));
  let out = '';
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      out = (out + chunk.toString()).slice(-20_000);
      if (/no configuration yet|working on job/.test(out)) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`dogged worker exited with ${code}: ${out}`)));
    setTimeout(
      () => reject(new Error(`dogged worker not ready after 60 s: ${out}`)),
      60_000,
    ).unref();
  });
  return { child, ready };
}

async function pendingLines(db: pg.Pool, job: string): Promise<{ total: number; open: number }> {
  const exists = await db.query(
    `SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = 'requests'`,
    [schema],
  );
  if (!exists.rowCount) return { total: 0, open: 0 };
  const { rows } = await db.query<{ total: number; open: number }>(
    `SELECT count(*)::int AS total, count(*) FILTER (WHERE state = 'pending')::int AS open FROM ${schema}.requests WHERE job = $1`,
    [job],
  );
  return { total: rows[0]?.total ?? 0, open: rows[0]?.open ?? 0 };
}

async function forgetJob(r: Redis, job: string): Promise<void> {
  let cursor = '0';
  do {
    const [nextCursor, keys] = await r.scan(cursor, 'MATCH', `dogged:${job}:*`, 'COUNT', 1000);
    cursor = nextCursor;
    if (keys.length) await r.del(...keys);
  } while (cursor !== '0');
  await r.srem('dogged:jobs', job);
}

async function doggedDistributed(
  list: readonly string[],
  extra: { rate?: number } = {},
  during?: (startedAt: number) => void,
): Promise<Outcome> {
  const { db, redis: r } = backends();
  const job = `limits-${process.pid}-${runCounter++}-${randomBytes(3).toString('hex')}`;
  const workers = [startWorker(job), startWorker(job)];
  try {
    await Promise.all(workers.map((w) => w.ready));
    const start = performance.now();
    during?.(start);
    await runBatch({ queue: REDIS_URL, store, job, input: list, enqueueOnly: true, ...extra });
    let capped = false;
    for (;;) {
      const { total, open } = await pendingLines(db, job);
      if (total >= list.length && open === 0) break;
      if (performance.now() - start > CAP_MS) {
        capped = true;
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const wallMs = performance.now() - start;
    await Promise.all(workers.map((w) => stopChild(w.child)));
    const { counts } = await summarizeJob(store, job);
    return {
      done: counts.done,
      failed: counts.failed + counts.invalid,
      wallMs,
      capped,
    };
  } finally {
    await Promise.all(workers.map((w) => stopChild(w.child)));
    await forgetJob(r, job).catch(() => {});
    await db.query(`DELETE FROM ${schema}.requests WHERE job = $1`, [job]).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Peers and Session: 16 concurrent, default retries (axios-retry as a typical user sets it up).

const axiosClient = axios.create();
axiosRetry(axiosClient, {
  retryDelay: axiosRetry.exponentialDelay,
  retryCondition: (error: AxiosError) =>
    axiosRetry.isNetworkOrIdempotentRequestError(error) || error.response?.status === 429,
});

interface Row {
  name: string;
  client: ClientName;
  dogged: boolean;
  note: string;
  run: (limiter: NginxLimiter) => Promise<Outcome>;
}

const rows: Row[] = [
  {
    name: 'dogged batch',
    client: 'batch',
    dogged: true,
    note: 'runBatch({ db, input }): this build’s defaults (no rate option)',
    run: (limiter) => doggedBatch(urlsOf(limiter.url)),
  },
  {
    name: 'dogged distributed batch, 2 workers',
    client: 'distributed',
    dogged: true,
    note: 'two `dogged worker` processes, job enqueued with runBatch({ queue, store, job, input, enqueueOnly }): defaults',
    run: (limiter) => doggedDistributed(urlsOf(limiter.url)),
  },
  {
    name: 'Session defaults, 16 concurrent',
    client: 'session',
    dogged: true,
    note: '`new Session()`, 16 workers, `await session.get(url)` then the body; a thrown error fails the URL',
    run: async (limiter) => {
      const session = new Session();
      try {
        return await pool(urlsOf(limiter.url), async (url, signal) => {
          const res = await session.get(url, { signal });
          const text = await res.text();
          return res.status === 200 && text === 'ok\n';
        });
      } finally {
        await session.close();
      }
    },
  },
  {
    name: 'got 14, 16 concurrent',
    client: 'got',
    dogged: false,
    note: 'default retry: 2 retries of 429 (and 408, 413, 5xx) for GET; sleeps Retry-After when sent, else 1 s, 2 s (+ up to 100 ms noise)',
    run: (limiter) =>
      pool(urlsOf(limiter.url), async (url, signal) => {
        const res = await got(url, { signal });
        return res.statusCode === 200 && res.body === 'ok\n';
      }),
  },
  {
    name: 'ky 1, 16 concurrent',
    client: 'ky',
    dogged: false,
    note: 'default retry: 2 retries of 429 (and 408, 413, 5xx); sleeps Retry-After when sent, else 0.3 s, 0.6 s, no jitter',
    run: (limiter) =>
      pool(urlsOf(limiter.url), async (url, signal) => {
        const text = await ky.get(url, { signal }).text();
        return text === 'ok\n';
      }),
  },
  {
    name: 'axios + axios-retry, 16 concurrent',
    client: 'axios',
    dogged: false,
    note: 'axiosRetry(client, { retryDelay: exponentialDelay, retryCondition: network/idempotent 5xx OR 429 }): 3 retries after 2^n · 100 ms + 0–20% (200, 400, 800 ms), or the Retry-After when longer',
    run: (limiter) =>
      pool(urlsOf(limiter.url), async (url, signal) => {
        const res = await axiosClient.get<string>(url, { responseType: 'text', signal });
        return res.status === 200 && res.data === 'ok\n';
      }),
  },
];

// ---------------------------------------------------------------------------------------------
// Main

const misses: string[] = [];
const pct = (part: number, whole: number): string =>
  whole ? `${((100 * part) / whole).toFixed(1)}%` : '–';
/** Failed lines, and those a capped run never finished. */
const failedCell = (o: Outcome): string => {
  const unfinished = URLS - o.done - o.failed;
  return unfinished > 0 ? `${o.failed} (+${unfinished} unfinished)` : String(o.failed);
};
const wall = (o: Outcome): string => `${o.capped ? '≥ ' : ''}${fmt(o.wallMs / 1000, 1)}`;

/** Runs one row; an error is printed, counts as a missed goal for dogged rows, and the bench goes on. */
async function guarded(
  what: string,
  dogged: boolean,
  run: () => Promise<Measured>,
): Promise<Measured | undefined> {
  try {
    return await run();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    console.log(`\n${what}: ERROR ${message}`);
    if (dogged) misses.push(`${what}: error ${message.split('\n')[0]}`);
    return undefined;
  }
}

async function limitsTable(retryAfter: number | undefined): Promise<void> {
  const selected = rows.filter((r) => wanted(r.client, 'limits'));
  if (!selected.length) return;
  const variant =
    retryAfter === undefined ? '429 without Retry-After' : `429 with Retry-After: ${retryAfter}`;
  const out: (string | number)[][] = [];
  for (const row of selected) {
    log(`limits (${variant}): ${row.name}...`);
    const m = await guarded(`${row.name} (${variant})`, row.dogged, () =>
      measure(
        {
          rate: RATE,
          burst: BURST,
          nodelay: true,
          ...(retryAfter !== undefined && { retryAfter }),
        },
        row.run,
      ),
    );
    if (!m) {
      out.push([row.name, 'error (see above)', '', '', '', '', '']);
      continue;
    }
    const limited = m.byStatus[429] ?? 0;
    const share = m.requests ? limited / m.requests : 0;
    const ratio = m.wallMs / 1000 / IDEAL_S;
    log(
      `  done ${m.done}, failed ${m.failed}, requests ${m.requests} (${JSON.stringify(m.byStatus)}), ${fmt(m.wallMs / 1000, 1)} s${m.capped ? ' (capped)' : ''}`,
    );
    out.push([
      row.name,
      `${m.done}/${URLS}`,
      failedCell(m),
      m.requests,
      pct(limited, m.requests),
      wall(m),
      `${m.capped ? '≥ ' : ''}${fmt(ratio)}×`,
    ]);
    if (row.dogged) {
      const why: string[] = [];
      if (m.done !== URLS) why.push(`${m.done}/${URLS} done`);
      if (share > 0.05) why.push(`${pct(limited, m.requests)} of requests answered 429`);
      if (m.capped || ratio > 1.25) why.push(`wall ${fmt(ratio)}× ideal`);
      if (why.length) misses.push(`${row.name} (${variant}): ${why.join(', ')}`);
    }
  }
  console.log(
    `\n## ${variant}: ${URLS.toLocaleString('en-US')} URLs, nginx limit_req rate=${RATE}r/s burst=${BURST} nodelay, one key for all clients; ideal ${fmt(IDEAL_S, 1)} s\n`,
  );
  console.log(
    table(
      [
        'client',
        `done/${URLS}`,
        'failed',
        'requests sent (nginx log)',
        '429 share',
        'wall s',
        'wall / ideal',
      ],
      out,
    ),
  );
}

async function restartTable(): Promise<void> {
  const selected = (
    [
      ['dogged batch, rate 500', 'batch', doggedBatch],
      ['dogged distributed batch, 2 workers, rate 500', 'distributed', doggedDistributed],
    ] as const
  ).filter(([, client]) => wanted(client, 'restart'));
  if (!selected.length) return;
  const out: (string | number)[][] = [];
  for (const [name, , runner] of selected) {
    log(`upstream restart: ${name}...`);
    const upstream: Upstream = await startUpstream();
    const timers: NodeJS.Timeout[] = [];
    try {
      const m = await guarded(`${name} (upstream restart)`, true, () =>
        measure({ rate: 2000, burst: 100, nodelay: true, upstream: upstream.url }, (limiter) =>
          runner(urlsOf(limiter.url), { rate: RESTART_RATE }, () => {
            timers.push(
              setTimeout(() => void upstream.stop(), OUTAGE_AT_MS),
              setTimeout(() => void upstream.start(), OUTAGE_AT_MS + OUTAGE_MS),
            );
          }),
        ),
      );
      if (!m) {
        out.push([name, 'error (see above)', '', '', '', '', '']);
        continue;
      }
      const ratio = m.wallMs / 1000 / RESTART_IDEAL_S;
      log(
        `  done ${m.done}, failed ${m.failed}, requests ${m.requests} (${JSON.stringify(m.byStatus)}), ${fmt(m.wallMs / 1000, 1)} s${m.capped ? ' (capped)' : ''}`,
      );
      out.push([
        name,
        `${m.done}/${URLS}`,
        failedCell(m),
        m.requests,
        m.byStatus[502] ?? 0,
        wall(m),
        `${m.capped ? '≥ ' : ''}${fmt(ratio)}×`,
      ]);
      const why: string[] = [];
      if (m.done !== URLS) why.push(`${m.done}/${URLS} done`);
      if (m.capped || ratio > 1.5) why.push(`wall ${fmt(ratio)}× ideal`);
      if (why.length) misses.push(`${name} (upstream restart): ${why.join(', ')}`);
    } finally {
      for (const timer of timers) clearTimeout(timer);
      await upstream.close();
    }
  }
  console.log(
    `\n## Upstream restart: ${URLS.toLocaleString('en-US')} URLs through nginx (proxy, 2000r/s burst 100) to an origin stopped ${OUTAGE_AT_MS / 1000} s after the start for ${OUTAGE_MS / 1000} s (502 meanwhile); ideal ${URLS.toLocaleString('en-US')} / ${RESTART_RATE} + ${OUTAGE_MS / 1000} = ${fmt(RESTART_IDEAL_S, 1)} s\n`,
  );
  console.log(
    table(
      [
        'client',
        `done/${URLS}`,
        'failed',
        'requests sent (nginx log)',
        '502',
        'wall s',
        'wall / ideal',
      ],
      out,
    ),
  );
}

/** An open-loop load: `perSecond` logical requests started every 5 ms tick, whatever happens. */
async function openLoop(
  url: string,
  perSecond: number,
  ms: number,
  send: (url: string) => Promise<unknown>,
): Promise<number[]> {
  const starts: number[] = [];
  const pending: Promise<unknown>[] = [];
  const t0 = Date.now();
  let i = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = Date.now() - t0;
      if (now >= ms) {
        clearInterval(timer);
        resolve();
        return;
      }
      for (const due = Math.floor((now / 1000) * perSecond); i < due; i++) {
        starts.push(Date.now());
        pending.push(send(`${url}/o/${i}`).catch(() => {}));
      }
    }, 5);
  });
  await Promise.all(pending);
  return starts;
}

/**
 * A whole-origin outage under a steady open-loop load (issue "a whole-origin outage costs
 * little"): 200 logical requests/s through nginx to an origin that is down for 5 s after 2 s;
 * the amplification is what nginx saw during the outage over the logical requests started in it.
 */
async function outageTable(): Promise<void> {
  if (!wanted('session', 'outage')) return;
  const PER_SECOND = 200;
  const WARM_MS = 2000;
  const DOWN_MS = 5000;
  const clients: [string, boolean, () => (url: string) => Promise<unknown>, () => Promise<void>][] =
    [];
  const session = new Session();
  clients.push([
    'Session defaults',
    true,
    () => async (url) => (await session.get(url)).text(),
    () => session.close(),
  ]);
  clients.push(['got 14 (default retry)', false, () => (url) => got(url).text(), async () => {}]);
  const out: (string | number)[][] = [];
  for (const [name, dogged, make] of clients) {
    log(`outage: ${name}...`);
    const upstream = await startUpstream();
    const limiter = await startNginxLimiter({ rate: 5000, burst: 1000, upstream: upstream.url });
    try {
      const t0 = Date.now();
      const down = setTimeout(() => void upstream.stop(), WARM_MS);
      const up = setTimeout(() => void upstream.start(), WARM_MS + DOWN_MS);
      const starts = await openLoop(limiter.url, PER_SECOND, WARM_MS + DOWN_MS + 2000, make());
      clearTimeout(down);
      clearTimeout(up);
      const arrivals = await limiter.arrivals();
      const from = t0 + WARM_MS;
      const to = from + DOWN_MS;
      const logical = starts.filter((t) => t >= from && t < to).length;
      const upstreamCount = arrivals.filter((a) => a.ms >= from && a.ms < to).length;
      const amplification = upstreamCount / logical;
      out.push([name, logical, upstreamCount, fmt(amplification, 3)]);
      if (dogged && amplification > 1.2)
        misses.push(
          `${name} (5 s outage): ${fmt(amplification, 3)}× the logical requests upstream`,
        );
    } finally {
      await limiter.close();
      await upstream.close();
    }
  }
  for (const [, , , close] of clients) await close();
  console.log(
    `\n## Whole-origin outage: ${PER_SECOND} logical requests/s (open loop) through nginx to an origin down for ${DOWN_MS / 1000} s (502); goal for dogged ≤ 1.2×\n`,
  );
  console.log(
    table(
      ['client', 'logical requests in the outage', 'upstream requests in it', 'amplification'],
      out,
    ),
  );
}

try {
  console.log(`\n# Real rate limits: nginx ${nginxVersion()} on loopback (${machine()})`);
  await limitsTable(undefined);
  await limitsTable(1);
  await restartTable();
  await outageTable();
  const notes = rows.filter((r) => wanted(r.client, 'limits'));
  if (notes.length) {
    console.log('\nClients and their retry settings:');
    for (const r of notes) console.log(`- ${r.name}: ${r.note}`);
  }
  console.log(
    `\nGoals (dogged rows, both variants: 100% done, ≤ 5% of requests answered 429, wall ≤ 1.25× ideal; upstream restart: 100% done, wall ≤ 1.5× ideal; 5 s outage: ≤ 1.2× the logical requests upstream): ${verdict(misses.length === 0)}`,
  );
  for (const miss of misses) console.log(`- missed: ${miss}`);
} finally {
  if (pgPool) {
    await pgPool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await pgPool.end().catch(() => {});
  }
  redis?.disconnect();
}
// A straggling client (a keep-alive socket, a timer) must not keep the benchmark alive.
process.exit();
