import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { clampTimerMs, pause } from '../../retry/timer.js';
import { type HostsMessage, hostsChannel } from '../host-events.js';
import type { BatchProgress } from '../progress-state.js';
import { openConnections } from './backend-connections.js';
import { assertJobName, parseJobConfig } from './job-config.js';
import { jobProgress, queueCounts } from './job-progress.js';
import { JobWorker } from './job-worker.js';
import { JOBS_KEY, jobKeys } from './keys.js';
import type { WorkerTuning } from './options.js';

/** Options of {@link runWorker} (`dogged worker`). */
export interface RunWorkerOptions extends WorkerTuning {
  /**
   * The Redis of the queue, as given to `dogged batch --queue`.
   * @example { queue: 'redis://10.0.0.5:6379/0' }
   */
  queue: string;
  /**
   * The PostgreSQL of the results, as given to `dogged batch --store`.
   * @example { store: 'postgres://dogged@10.0.0.6/crawl' }
   */
  store: string;
  /**
   * Work on this job only.
   * @default every job enqueued on the queue, including jobs enqueued later
   * @example { job: 'nightly-crawl' }
   */
  job?: string;
  /**
   * Called when a job is joined or left, and for errors that do not stop the worker.
   * @default undefined
   * @example { onEvent: (message) => console.error(message) }
   */
  onEvent?: (message: string) => void;
  /**
   * Called with each joined job's progress (fleet-wide, as `runBatch` reports it) every
   * `progressIntervalMs`.
   * @default undefined
   * @example { onProgress: (job, p) => console.error(job, `${p.finished}/${p.total}`) }
   */
  onProgress?: (job: string, progress: BatchProgress) => void;
  /**
   * How often `onProgress` is called.
   * @default 10000
   * @example { progressIntervalMs: 2000 }
   */
  progressIntervalMs?: number;
  /**
   * How often the list of jobs is read again (when no `job` is given).
   * @default 2000
   * @example { discoverEveryMs: 10_000 }
   */
  discoverEveryMs?: number;
}

/** What a worker did, when it stops. */
export interface WorkerResult {
  readonly attempts: number;
  readonly jobs: readonly string[];
}

/**
 * Works on distributed batches until `signal` aborts: joins the job (or every job on the queue,
 * as they appear), fetches lines with the job's policy under the fleet-wide limits, and records
 * each outcome once. Any number of workers on any number of machines may run at once. Fails at
 * once, naming which and where, when Redis or PostgreSQL cannot be reached at start; survives
 * their restarts afterwards.
 * @example await runWorker({ queue: 'redis://127.0.0.1:6379/0', store: 'postgres://127.0.0.1/dogged', signal });
 */
export async function runWorker(options: RunWorkerOptions): Promise<WorkerResult> {
  if (options.job !== undefined) assertJobName(options.job);
  const connections = await openConnections(options.queue, options.store);
  const { queue, redis, store } = connections;
  const workers = new Map<string, JobWorker>();
  const workerId = `${hostname()}:${process.pid}`;
  let attempts = 0;
  const event = (message: string): void => options.onEvent?.(message);
  const errorsSeen = new Set<string>();
  const onError = (error: unknown): void => {
    const message = error instanceof Error ? error.message : String(error);
    // One line per kind of error, not one per line: a Redis restart fails many at once.
    if (errorsSeen.has(message)) return;
    errorsSeen.add(message);
    setTimeout(() => errorsSeen.delete(message), 10_000).unref();
    event(`error: ${message}`);
  };

  let announced = false;
  const join = async (job: string): Promise<void> => {
    const text = await redis.get(jobKeys(job).config);
    if (text === null) {
      if (options.job !== undefined && !announced)
        event(`job ${job} has no configuration yet: waiting for dogged batch --job ${job}`);
      announced = true;
      return;
    }
    const worker = new JobWorker({
      queue,
      redis,
      store,
      config: parseJobConfig(text, job),
      concurrency: options.concurrency ?? 16,
      workerId,
      lockDurationMs: options.lockDurationMs ?? 10_000,
      dispatcher: options.dispatcher,
      proxies: options.proxies,
      onRetry: options.onRetry,
      onError,
    });
    workers.set(job, worker);
    await worker.ready();
    event(`working on job ${job}`);
  };

  const leave = async (job: string, why: string): Promise<void> => {
    const worker = workers.get(job);
    if (!worker) return;
    workers.delete(job);
    await worker.stop(options.graceMs ?? 2000);
    attempts += worker.attempts;
    event(`left job ${job}: ${why}`);
  };

  /**
   * A job whose every line is finished and whose queue is empty leaves the list of jobs. Counts
   * lost by a worker that died between writing outcomes and counting them are made good first.
   */
  const lastFinished = new Map<string, number>();
  const retireFinished = async (): Promise<void> => {
    for (const [job, worker] of workers) {
      const stats = await worker.counters.read();
      if (!stats.inputComplete) continue;
      const finished = stats.done + stats.failed + stats.invalid;
      const short = finished < stats.lines;
      // Short of the lines and still counting: not finished, nothing to look at yet.
      const progressing = lastFinished.get(job) !== finished;
      lastFinished.set(job, finished);
      if (short && progressing) continue;
      const q = await queueCounts(worker.queue);
      if (q.waiting + q.active + q.delayed !== 0) continue;
      if (short) {
        if (!(await worker.recountIfFinished())) continue;
        if (options.job !== undefined) continue;
      }
      if (options.job === undefined) await redis.srem(JOBS_KEY, job);
    }
  };

  const discover = async (): Promise<void> => {
    await retireFinished();
    const jobs = options.job !== undefined ? [options.job] : await redis.smembers(JOBS_KEY);
    for (const job of jobs) if (!workers.has(job)) await join(job);
    if (options.job === undefined)
      for (const job of [...workers.keys()])
        if (!jobs.includes(job)) await leave(job, 'it is finished');
  };

  const heartbeat = async (): Promise<void> => {
    const pipeline = redis.pipeline();
    for (const [job, worker] of workers) {
      const beat = JSON.stringify({
        pid: process.pid,
        host: hostname(),
        at: Date.now(),
        concurrency: options.concurrency ?? 16,
        inFlight: worker.load.inFlight,
        retrying: worker.load.retrying,
      });
      pipeline.hset(jobKeys(job).workers, workerId, beat);
      pipeline.pexpire(jobKeys(job).workers, 60_000);
    }
    await pipeline.exec();
    // A Redis that restarted without persistence lost the jobs' configs, counters and queues:
    // put them back from PostgreSQL.
    for (const worker of workers.values()) {
      if (await worker.restore())
        event(`job ${worker.job}: restored from PostgreSQL (Redis lost it)`);
    }
  };

  const startedAt = performance.now();
  const report = async (): Promise<void> => {
    const onProgress = options.onProgress;
    if (!onProgress) return;
    for (const [job, worker] of workers) {
      const { progress } = await jobProgress(worker.counters, worker.queue, {
        attempts: worker.attempts,
        startedAt,
        stopping: false,
      });
      onProgress(job, progress);
      if (hostsChannel.hasSubscribers)
        hostsChannel.publish({
          job,
          hosts: worker.hostsSnapshot(Date.now()),
        } satisfies HostsMessage);
    }
  };
  const progressTimer = options.onProgress
    ? setInterval(
        () => void report().catch(onError),
        clampTimerMs(options.progressIntervalMs ?? 10_000),
      )
    : undefined;

  const joined: string[] = [];
  try {
    while (!options.signal?.aborted) {
      await discover().catch(onError);
      for (const job of workers.keys()) if (!joined.includes(job)) joined.push(job);
      await heartbeat().catch(onError);
      // Waiting for the one job asked for: look again soon (one GET), so the work starts within
      // a quarter of a second of the job being enqueued.
      const every = options.discoverEveryMs ?? 2000;
      const waitMs =
        options.job !== undefined && !workers.has(options.job) ? Math.min(every, 250) : every;
      await pause(waitMs, options.signal);
    }
  } finally {
    clearInterval(progressTimer);
    for (const job of [...workers.keys()]) {
      await redis.hdel(jobKeys(job).workers, workerId).catch(() => {});
      await leave(job, 'stopping');
    }
    await connections.close();
  }
  return { attempts, jobs: joined };
}
