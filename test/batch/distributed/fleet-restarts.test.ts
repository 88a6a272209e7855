import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { MAX_UNWRITTEN } from '../../../src/batch/distributed/result-writer.js';
import { available, needs } from '../../support/needs.js';
import { type CliRun, runCli, startCli, tempDir, waitFor, writeLines } from '../batch-support.js';
import { type CountingServer, startCountingServer } from './counting-server.js';
import {
  freePort,
  jobTarget,
  type Sandbox,
  sandbox,
  shutdownRedisServer,
  startRedisServer,
  startWorker,
  stopWorker,
  waitForJob,
  workerWaiting,
} from './distributed-support.js';
import { type PrivatePostgres, startPrivatePostgres } from './private-postgres.js';

// The suites below need Redis and PostgreSQL, and redis-server to restart a private Redis (one
// needs initdb instead, said where it starts): skipped without them, failing at once on CI
// (support/needs.ts).
const describe = needs('redis', 'postgres', 'redis-server');

/**
 * The fleet through the failures it is built for, black-box through the CLI: a worker killed
 * with -9 in the middle of its work, Redis restarted empty (no persistence), PostgreSQL
 * restarted, and the per-host limits held fleet-wide by 3 workers. Every line must end recorded
 * exactly once; the HTTP server the test runs counts what the fleet really sent.
 */

/** Lines of each run: enough for several workers to share the work (chunks of 250 lines). */
const LINES = 2000;
/** Lines in flight in each worker process. */
const CONCURRENCY = 8;
/** Lines one BullMQ job carries (one chunk). */
/**
 * Requests a worker killed with -9 may leave to be sent again (the documented bound): its
 * requests in flight plus its outcomes not written yet (new attempts wait while that many are
 * unwritten).
 */
const MAX_RESENT_AFTER_KILL = CONCURRENCY + MAX_UNWRITTEN;

let server: CountingServer;
/** Redis database 7 and a schema of the shared servers (the restart tests have their own). */
let box: Sandbox;
let dir: string;
let removeDir: () => void;
/** Every dogged process a test started: the ones still running when it ends are killed. */
let runs: CliRun[] = [];

function track(run: CliRun): CliRun {
  runs.push(run);
  return run;
}

beforeAll(async () => {
  server = await startCountingServer();
  if (available('redis', 'postgres', 'redis-server')) box = await sandbox(7);
  ({ dir, cleanup: removeDir } = tempDir('dogged-restarts-'));
});
afterEach(async () => {
  // A test that failed half-way leaves workers behind: ended at once, not waited for.
  await Promise.all(
    runs.map(async (run) => {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      await run.exited;
    }),
  );
  runs = [];
  server.release();
  server.reset();
  server.delayMs = 0;
});
afterAll(async () => {
  await box?.cleanup();
  await server.close();
  removeDir();
});

/** `count` lines, each its own URL on the counting server. */
function input(job: string, count = LINES): string {
  const lines = Array.from({ length: count }, (_, i) => `${server.url}/${job}/${i + 1}`);
  return writeLines(dir, `${job}.txt`, lines);
}

interface Row {
  line: number;
  state: string;
  status: number | null;
  reason: string | null;
  attempts: number;
  history: unknown[] | null;
}

async function rowsOf(box: Sandbox, job: string): Promise<Row[]> {
  const { rows } = await box.pg.query<Row>(
    `SELECT line, state, status, reason, attempts, history FROM ${box.schema}.requests WHERE job = $1 ORDER BY line`,
    [job],
  );
  return rows;
}

/** One row per line, each done (200) by one recorded attempt; and every URL reached the server. */
async function expectEachLineDoneOnce(box: Sandbox, job: string, lines = LINES): Promise<void> {
  const rows = await rowsOf(box, job);
  expect(rows.map((r) => r.line)).toEqual(Array.from({ length: lines }, (_, i) => i + 1));
  const wrong = rows.filter(
    (r) =>
      r.state !== 'done' ||
      r.status !== 200 ||
      r.reason !== 'ok' ||
      r.attempts !== 1 ||
      (r.history?.length ?? 0) !== 0,
  );
  expect({ wrong: wrong.length, first: wrong.slice(0, 5) }).toEqual({ wrong: 0, first: [] });
  const reached = [...server.perTarget.keys()].filter((t) => t.startsWith(`/${job}/`));
  expect(reached).toHaveLength(lines);
}

/** Three workers waiting for `job`, then the job enqueued: all three start on it together. */
async function threeWorkersOn(
  box: Sandbox,
  job: string,
  path: string,
  flags: string[],
  workerFlags: string[] = [],
): Promise<CliRun[]> {
  const workers = [0, 1, 2].map(() =>
    track(startWorker(box, job, ['--concurrency', String(CONCURRENCY), ...workerFlags])),
  );
  await Promise.all(workers.map(workerWaiting));
  const enqueued = await runCli([
    'batch',
    path,
    ...jobTarget(box, job),
    ...flags,
    '--enqueue-only',
  ]);
  expect(enqueued.stderr).toBe('');
  expect(enqueued.code).toBe(0);
  return workers;
}

/** Resolves once `value()` has not changed for `ms` (checked every 5 ms). */
async function steady(value: () => number, ms: number): Promise<void> {
  let last = value();
  let since = Date.now();
  while (Date.now() - since < ms) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    const now = value();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
}

/** How many workers recorded outcomes of `job`. */
async function workersThatRecorded(box: Sandbox, job: string): Promise<number> {
  const { rows } = await box.pg.query<{ n: number }>(
    `SELECT count(DISTINCT worker)::int AS n FROM ${box.schema}.requests WHERE job = $1`,
    [job],
  );
  return rows[0]?.n ?? 0;
}

describe('a worker killed with -9 in the middle of its chunk', () => {
  it('loses no line, records each once, and resends at most its in-flight, unwritten and unfinished lines', async () => {
    const job = 'kill9';
    server.delayMs = 10;
    // Chunks of 100 lines: each of the three workers still has some when the kill comes.
    const flags = ['--per-host', '32', '--rate', 'none', '--lock-duration', '2s'];
    flags.push('--chunk-size', '100', '-q');
    const workers = await threeWorkersOn(box, job, input(job), flags, ['--lock-duration', '2s']);
    await waitFor(() => server.total >= LINES / 3, 'a third of the lines', 60_000, 5);
    // The kill lands in the middle of the victim's work, for sure: the server stops answering
    // until the fleet's requests in flight there stop growing (at least one of the victim's among
    // them: more than two workers' worth), the victim is killed, and its requests are seen cut
    // off (their count steady) before the others are answered. A worker between two chunks may
    // hold fewer than its 8, so the counts are waited for, not assumed.
    server.hold();
    await waitFor(
      () => server.inFlight > 2 * CONCURRENCY,
      'the victim among the requests in flight',
      30_000,
      5,
    );
    await steady(() => server.inFlight, 300);
    const victim = workers[0] as CliRun;
    victim.child.kill('SIGKILL');
    expect(await victim.exited).toBe(-1);
    await waitFor(() => server.cut > 0, "the victim's requests cut off", 10_000, 5);
    await steady(() => server.cut, 300);
    const cut = server.cut;
    server.release();
    const sentBeforeKill = server.total;

    await waitForJob(box, job, LINES, 60_000);
    expect(await Promise.all(workers.slice(1).map(stopWorker))).toEqual([0, 0]);
    await expectEachLineDoneOnce(box, job);
    const resent = server.total - LINES;
    expect(resent).toBe(server.repeats());
    console.log(
      `fleet-restarts: kill -9 after ${sentBeforeKill} of ${LINES} requests: ${resent} sent twice (bound ${MAX_RESENT_AFTER_KILL})`,
    );
    // The lines cut off were sent again (they are done), and little else was.
    expect(resent).toBeGreaterThanOrEqual(cut);
    expect(resent).toBeLessThanOrEqual(MAX_RESENT_AFTER_KILL);

    const status = await runCli(['status', '--queue', box.queue, '--job', job, '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ lines: LINES, left: 0 });
  }, 90_000);
});

/**
 * `dogged batch --queue` working on its job with one more worker; `outage` is done to the
 * infrastructure once a third of the lines reached the server. The run must finish (exit 0) with
 * every line done once.
 */
async function runThrough(box: Sandbox, job: string, outage: () => Promise<void>): Promise<void> {
  server.delayMs = 10;
  const path = input(job);
  const helper = track(
    startWorker(box, job, ['--concurrency', String(CONCURRENCY), '--lock-duration', '2s']),
  );
  const started = performance.now();
  const run = track(
    startCli([
      'batch',
      path,
      ...jobTarget(box, job),
      '--concurrency',
      String(CONCURRENCY),
      '--per-host',
      '16',
      '--rate',
      'none',
      '--lock-duration',
      '2s',
      '-q',
    ]),
  );
  await waitFor(() => server.total >= LINES / 3, 'a third of the lines', 60_000, 5);
  const sentBefore = server.total;
  expect(sentBefore, 'the outage comes mid-run').toBeLessThan(LINES);
  await outage();
  const code = await run.exited;
  expect(code, `dogged batch said:\n${run.stderr()}`).toBe(0);
  const n = LINES.toLocaleString('en-US');
  expect(run.stdout()).toMatch(
    new RegExp(`job ${job}: ${n} lines in .*: ${n} done, 0 failed, 0 invalid, 0 left`),
  );
  expect(await stopWorker(helper), `the worker said:\n${helper.stderr()}`).toBe(0);
  await expectEachLineDoneOnce(box, job);
  console.log(
    `fleet-restarts: ${job}: outage after ${sentBefore} of ${LINES} requests; ${server.repeats()} sent twice; ${Math.round(performance.now() - started)} ms`,
  );
}

describe('Redis restarted without persistence (the queue and its counters lost)', () => {
  let port: number;
  let redisServer: ChildProcessWithoutNullStreams | undefined;
  let redisBox: Sandbox | undefined;
  beforeAll(async () => {
    port = await freePort();
    redisServer = await startRedisServer(port, dir, { persistence: false });
    redisBox = await sandbox(0, `redis://127.0.0.1:${port}`);
  });
  afterAll(async () => {
    await redisBox?.cleanup();
    if (redisServer) await shutdownRedisServer(port, redisServer, 'nosave');
  });

  it('the run resumes the job from PostgreSQL: exit 0, every line done once', async () => {
    const job = 'redis-empty';
    await runThrough(redisBox as Sandbox, job, async () => {
      await shutdownRedisServer(port, redisServer as ChildProcessWithoutNullStreams, 'nosave');
      redisServer = undefined;
      // Back empty (no AOF, no RDB): the job's queue, configuration and counters are gone.
      redisServer = await startRedisServer(port, dir, { persistence: false });
    });
  }, 90_000);
});

needs('initdb', 'redis')('PostgreSQL restarted (pg_ctl stop -m fast, start)', () => {
  let postgres: PrivatePostgres | undefined;
  let pgBox: Sandbox | undefined;
  beforeAll(async () => {
    postgres = await startPrivatePostgres();
    pgBox = await sandbox(6, undefined, postgres.url);
  }, 60_000);
  afterAll(async () => {
    await pgBox?.cleanup();
    await postgres?.destroy();
  }, 60_000);

  it('the run rides it out: exit 0, every line done once', async () => {
    await runThrough(pgBox as Sandbox, 'pg-restart', async () => {
      await (postgres as PrivatePostgres).restart();
    });
  }, 90_000);
});

describe('host limits held fleet-wide by 3 workers', () => {
  it('--per-host N: the server never has more than N requests in flight from the fleet', async () => {
    const job = 'per-host';
    const perHost = 6;
    const lines = 1500;
    server.delayMs = 20;
    // 3 workers x 8 lines would put 24 in flight: only the fleet-wide limit holds them to 6.
    const workers = await threeWorkersOn(box, job, input(job, lines), [
      '--per-host',
      String(perHost),
      '--rate',
      'none',
      // 15 chunks: the three workers share them.
      '--chunk-size',
      '100',
      '-q',
    ]);
    await waitForJob(box, job, lines, 60_000);
    expect(await Promise.all(workers.map(stopWorker))).toEqual([0, 0, 0]);
    await expectEachLineDoneOnce(box, job, lines);
    console.log(
      `fleet-restarts: --per-host ${perHost}: at most ${server.maxInFlight} in flight at the server`,
    );
    expect(server.maxInFlight).toBeLessThanOrEqual(perHost);
    // The limit was what held them (the fleet filled it), and all three workers shared the work.
    expect(server.maxInFlight).toBe(perHost);
    expect(await workersThatRecorded(box, job)).toBe(3);
  }, 90_000);

  it('--rate R: once started, arrivals per second at the server stay within 10% of R', async () => {
    const job = 'rate';
    // Well under what 3 workers manage on a 2-core machine (about 100 lines/s), so the rate is
    // what paces them; 1,000 lines (10 chunks, shared by the three) in about 20 s.
    const rate = 50;
    const lines = 1000;
    const workers = await threeWorkersOn(box, job, input(job, lines), [
      '--per-host',
      '16',
      '--rate',
      String(rate),
      '--chunk-size',
      '100',
      '-q',
    ]);
    await waitForJob(box, job, lines, 60_000);
    expect(await Promise.all(workers.map(stopWorker))).toEqual([0, 0, 0]);
    await expectEachLineDoneOnce(box, job, lines);
    const times = [...server.times].sort((a, b) => a - b);
    const first = times[0] as number;
    const last = times[times.length - 1] as number;
    // Arrivals in each second from the first one. (Seconds, not a window sliding from each
    // arrival: one request late by 100 ms on a loaded machine would count 5 extra at R = 50.)
    const perSecond = new Array<number>(Math.floor((last - first) / 1000) + 1).fill(0);
    for (const t of times) {
      const second = Math.floor((t - first) / 1000);
      perSecond[second] = (perSecond[second] as number) + 1;
    }
    const most = Math.max(...perSecond);
    // Started: from the first second that reached 90% of the rate (processes warming up before
    // it are not the limiter's doing). From then on, the mean rate.
    const startedIn = perSecond.findIndex((n) => n >= rate * 0.9);
    expect(startedIn, `no second reached 90% of ${rate}: ${perSecond}`).toBeGreaterThanOrEqual(0);
    const counted = times.filter((t) => t >= first + startedIn * 1000);
    const mean = ((counted.length - 1) * 1000) / (last - (counted[0] as number));
    console.log(
      `fleet-restarts: --rate ${rate}: ${mean.toFixed(1)}/s on average from second ${startedIn + 1}, at most ${most} in one second: ${perSecond.join(' ')}`,
    );
    expect(most).toBeLessThanOrEqual(rate * 1.1);
    expect(mean).toBeGreaterThanOrEqual(rate * 0.9);
    expect(mean).toBeLessThanOrEqual(rate * 1.1);
    expect(await workersThatRecorded(box, job)).toBe(3);
  }, 90_000);
});
