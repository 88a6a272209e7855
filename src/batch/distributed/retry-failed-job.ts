import { Queue } from 'bullmq';
import type { FailedFilter } from '../retry-failed.js';
import { openConnections } from './backend-connections.js';
import { bullConnection } from './connections.js';
import { enqueuePending } from './enqueue.js';
import { UnknownJobError } from './errors.js';
import { assertJobName, type JobConfig, jobChunkSize } from './job-config.js';
import { JOBS_KEY, jobKeys, PREFIX } from './keys.js';
import type { DistributedTarget } from './options.js';
import type { ChunkData } from './processor.js';
import { JobCounters } from './stats.js';
import { uncountFailed } from './stats-reset.js';
import { resetFailedInStore } from './store-retry-failed.js';

/** Options of {@link resetFailedJob}. */
export interface ResetFailedJobOptions {
  /**
   * Also enqueue the lines for the workers at work (`dogged worker`), and put the job back on
   * the list of jobs workers without `--job` serve. Without it, the next `runBatch` (or
   * `dogged batch --queue --store --job`) of the job enqueues them.
   * @default false
   * @example { enqueue: true }
   */
  enqueue?: boolean;
}

/** What {@link resetFailedJob} did. */
export interface ResetFailedJobResult {
  /** Lines put back to pending. */
  readonly reset: number;
  /** The job's config, as the store keeps it (what its workers apply). */
  readonly config: JobConfig;
}

/**
 * `retry-failed` for a distributed job: puts the job's failed lines (those matching `filter`)
 * back to pending in PostgreSQL, in one transaction, with a fresh retry budget, as
 * `resetFailed(journal)` does to a journal; and takes them back from the job's counters in Redis
 * (finished, failed, per host) before that transaction commits, so `dogged status --queue` and
 * the progress count them as left (should the commit fail after that, the lines stay failed but
 * counted as left until the next reset takes them: taking back is idempotent). Fails at once,
 * naming which and where, when Redis or PostgreSQL cannot be reached, and with an
 * `UnknownJobError` for a job the store does not know.
 * @example await resetFailedJob({ queue, store, job: 'nightly' }, { statuses: ['5xx'] }); await runBatch({ queue, store, job: 'nightly' });
 */
export async function resetFailedJob(
  target: DistributedTarget,
  filter: FailedFilter = {},
  options: ResetFailedJobOptions = {},
): Promise<ResetFailedJobResult> {
  assertJobName(target.job);
  const job = target.job;
  const conn = await openConnections(target.queue, target.store);
  const { redis, store } = conn;
  try {
    const config = await store.jobConfig(job);
    if (!config) throw new UnknownJobError(job, conn.storeLocation.where);
    const keys = jobKeys(job);
    const lines = await resetFailedInStore(store, job, filter, (reset) =>
      uncountFailed(redis, keys, reset),
    );
    if (options.enqueue && lines.length) {
      const queue = new Queue<ChunkData>(job, {
        connection: bullConnection(conn.queue),
        prefix: PREFIX,
      });
      queue.on('error', () => {});
      try {
        // A Redis that lost the job's config: workers read it there.
        await redis.set(keys.config, JSON.stringify(config), 'NX');
        await enqueuePending({
          job,
          store,
          queue,
          redis,
          counters: new JobCounters(redis, keys),
          chunkSize: jobChunkSize(config),
        });
        await redis.sadd(JOBS_KEY, job);
      } finally {
        await queue.close().catch(() => {});
      }
    }
    return { reset: lines.length, config };
  } finally {
    await conn.close();
  }
}
