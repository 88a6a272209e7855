import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Queue } from 'bullmq';
import { clampTimerMs, pause } from '../../retry/timer.js';
import { releaseController, takeController } from '../controllers.js';
import { type HostsMessage, hostsChannel } from '../host-events.js';
import { describeInput } from '../input.js';
import { batchMaxBodySize, GIVE_UP_AFTER_MS } from '../options.js';
import type { BatchResult } from '../runner.js';
import { type BatchSummary, summaryOfCounts } from '../summary.js';
import { type DistributedConnections, openConnections } from './backend-connections.js';
import { bullConnection } from './connections.js';
import { type EnqueueTarget, enqueueInput, enqueuePending } from './enqueue.js';
import { CHUNK_SIZE, FLEET_BUDGET_DEFAULTS, type JobConfig, jobChunkSize } from './job-config.js';
import { jobProgress, queueCounts } from './job-progress.js';
import { recountJob, restoreJob } from './job-restore.js';
import { JobWorker } from './job-worker.js';
import { JOBS_KEY, jobKeys, PREFIX } from './keys.js';
import { checkDistributedOptions, type DistributedBatchOptions } from './options.js';
import type { ChunkData } from './processor.js';
import { JobCounters } from './stats.js';
import { summarizeStore } from './store-reports.js';

/** How often the run checks the store for completion. */
const CHECK_MS = 200;
/** How often it looks at the queue (lost lines, lines deferred beyond maxWait). */
const QUEUE_CHECK_MS = 1000;
/** A queue with nothing for this long while the store has pending lines is repaired. */
const REPAIR_AFTER_MS = 3000;

function jobConfig(options: DistributedBatchOptions, chunkSize: number): JobConfig {
  return {
    version: 1,
    job: options.job,
    chunkSize,
    seed: options.seed ?? null,
    ...(options.cookies && { cookies: true }),
    ...(options.http2 && { http2: true }),
    perHost: options.perHost ?? 4,
    rate: options.rate === 'none' ? null : (options.rate ?? 'adaptive'),
    giveUpAfter: options.giveUpAfter ?? GIVE_UP_AFTER_MS,
    retry: options.retry ?? {},
    maxRetryAfter: options.maxRetryAfter ?? 86_400_000,
    timeout: options.timeout ?? null,
    headers: options.headers ?? {},
    bodies: options.bodies ?? 'db',
    maxBodySize: batchMaxBodySize('runBatch', options.maxBodySize, options.bodies ?? 'db') ?? null,
    budget: options.budget === false ? false : { ...FLEET_BUDGET_DEFAULTS, ...options.budget },
    cooldown: options.cooldown ?? true,
    input: options.input === undefined ? null : describeInput(options.input),
    createdAt: new Date().toISOString(),
  };
}

/**
 * A batch on the distributed backend: records and enqueues the input (each line once), then,
 * unless `enqueueOnly`, works on the job in this process too and waits until every line of the
 * job is finished, by whichever worker. Resolves with the same result as the local runner.
 */
export async function runDistributedBatch(options: DistributedBatchOptions): Promise<BatchResult> {
  checkDistributedOptions(options);
  const startedAt = performance.now();
  const conn: DistributedConnections = await openConnections(options.queue, options.store);
  const { redis, store } = conn;
  const job = options.job;
  const keys = jobKeys(job);
  const queue = new Queue<ChunkData>(job, {
    connection: bullConnection(conn.queue),
    prefix: PREFIX,
  });
  queue.on('error', () => {});
  const counters = new JobCounters(redis, keys);
  let worker: JobWorker | undefined;
  // Reused from an earlier run of this process, when one gave it back (see `takeController`).
  const stopController = takeController();
  const onAbort = (): void => stopController.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let stopping = false;
  try {
    // A job keeps the chunk size it was enqueued with (its queued chunks are ranges of it).
    const stored = await store.jobConfig(job);
    const config = jobConfig(
      options,
      stored ? jobChunkSize(stored) : (options.chunkSize ?? CHUNK_SIZE),
    );
    await store.upsertJob(config);
    await redis.set(keys.config, JSON.stringify(config));
    // Input incomplete first: a worker must not take the job for finished in between.
    if (options.input !== undefined) await counters.setInputComplete(false);
    await redis.sadd(JOBS_KEY, job);
    const target: EnqueueTarget = {
      job,
      store,
      queue,
      redis,
      counters,
      chunkSize: jobChunkSize(config),
    };
    let ingestError: unknown;
    let ingesting = false;
    let ingestion: Promise<unknown> = Promise.resolve();
    if (options.input !== undefined) {
      ingesting = true;
      ingestion = enqueueInput(target, options.input, stopController.signal)
        .then(async () => {
          if (!stopController.signal.aborted) await counters.setInputComplete(true);
        })
        .catch((error: unknown) => {
          ingestError = error;
          stopController.abort();
        })
        .finally(() => {
          ingesting = false;
        });
    } else {
      await counters.setInputComplete(true);
      await enqueuePending(target);
    }
    if (options.enqueueOnly) {
      await ingestion;
      if (ingestError !== undefined) throw ingestError;
      // The job's lines by state, from one query: the whole summary would read every row of
      // the job several times (seconds of the database's time for millions of lines) to tell
      // nothing new of a job that has not run here.
      return await result('complete', 0, summaryOfCounts(await store.counts(job)));
    }
    worker = new JobWorker({
      queue: conn.queue,
      redis,
      store,
      config,
      concurrency: options.concurrency ?? 16,
      workerId: `${hostname()}:${process.pid}`,
      lockDurationMs: options.lockDurationMs ?? 10_000,
      dispatcher: options.dispatcher,
      proxies: options.proxies,
      onRetry: options.onRetry,
    });
    const report = async (): Promise<void> => {
      if (!options.onProgress) return;
      const { progress } = await jobProgress(counters, queue, {
        attempts: worker?.attempts ?? 0,
        startedAt,
        stopping,
        ...(worker && { load: worker.load }),
      });
      options.onProgress(progress);
      if (worker && hostsChannel.hasSubscribers)
        hostsChannel.publish({
          job,
          hosts: worker.hostsSnapshot(Date.now()),
        } satisfies HostsMessage);
    };
    const progressTimer = options.onProgress
      ? setInterval(
          () => void report().catch(() => {}),
          clampTimerMs(options.progressIntervalMs ?? 250),
        )
      : undefined;
    let end: BatchResult['end'] | undefined;
    let idleSince: number | undefined;
    let queueCheckedAt = 0;
    try {
      for (let first = true; end === undefined; first = false) {
        if (!first) await pause(CHECK_MS, stopController.signal);
        if (stopController.signal.aborted) {
          end = 'interrupted';
          break;
        }
        if (ingesting) continue;
        if (!(await store.anyPending(job))) {
          end = 'complete';
          break;
        }
        if (Date.now() - queueCheckedAt < QUEUE_CHECK_MS) continue;
        queueCheckedAt = Date.now();
        // Redis restarted without persistence: the job's config, counters and queue are gone;
        // PostgreSQL has every line.
        if (await restoreJob({ ...target, config }, true)) continue;
        const q = await queueCounts(queue);
        const now = Date.now();
        if (q.waiting + q.active + q.delayed === 0) {
          // The store has pending lines the queue does not hold (lost by a Redis without
          // persistence, or given up on after infrastructure failures): enqueue them again.
          idleSince ??= now;
          if (now - idleSince >= REPAIR_AFTER_MS) {
            await enqueuePending(target);
            idleSince = undefined;
          }
        } else {
          idleSince = undefined;
        }
        const maxWait = options.maxWait ?? Number.POSITIVE_INFINITY;
        if (Number.isFinite(maxWait) && q.waiting + q.active === 0) {
          const due = await store.nextDueAt(job);
          if (due !== undefined && due - now > maxWait) end = 'deferred';
        }
      }
    } finally {
      stopping = true;
      clearInterval(progressTimer);
      // The input still being read (a stop, a failure) stops being read.
      if (ingesting) stopController.abort();
      await ingestion;
      await worker.stop(options.graceMs ?? 2000);
      await report().catch(() => {});
    }
    if (ingestError !== undefined) throw ingestError;
    if (end === 'complete') {
      await redis.srem(JOBS_KEY, job);
      // A worker that died between writing outcomes and counting them left them uncounted.
      const stats = await counters.read();
      if (stats.done + stats.failed + stats.invalid < stats.lines || stats.lines === 0)
        await recountJob(counters, store, job);
    }
    return await result(end, worker.attempts);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await queue.close().catch(() => {});
    await conn.close();
    releaseController(stopController);
  }

  async function result(
    end: BatchResult['end'],
    attempts: number,
    known?: BatchSummary,
  ): Promise<BatchResult> {
    const summary = known ?? (await summarizeStore(store, job));
    return {
      end,
      counts: summary.counts,
      attempts,
      elapsedMs: performance.now() - startedAt,
      recovered: 0,
      nextDueAt: summary.nextDueAt,
      summary,
    };
  }
}
