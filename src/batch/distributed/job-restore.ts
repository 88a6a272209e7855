import { type EnqueueTarget, enqueuePending } from './enqueue.js';
import type { JobConfig } from './job-config.js';
import { JOBS_KEY, jobKeys } from './keys.js';
import type { FinishedLine, JobCounters } from './stats.js';
import type { PgStore } from './store.js';

/** Lines read from the store per page (two rounds of counts each). */
const PAGE = 5000;

/**
 * Counts every line of the job the store holds (added, and finished when it is), each once: what
 * rebuilds the counters after a Redis that lost them (restarted without persistence) or fixes a
 * count lost between a write and its count (a worker that died in between). Idempotent: the
 * counters count each line once, so lines counted already are not counted again.
 */
export async function recountJob(
  counters: JobCounters,
  store: PgStore,
  job: string,
): Promise<void> {
  let after = 0;
  for (;;) {
    const rows = await store.query<{ line: number; state: string; host: string | null }>(
      `SELECT line, state, host FROM ${store.schema}.requests WHERE job = $1 AND line > $2 ORDER BY line LIMIT ${PAGE}`,
      [job, after],
    );
    if (!rows.length) return;
    const finished: FinishedLine[] = [];
    for (const r of rows)
      if (r.state === 'done' || r.state === 'failed')
        finished.push({ line: r.line, host: r.host, state: r.state });
    await counters.addedMany(
      rows.map((r) => ({
        line: r.line,
        host: r.host,
        state: r.state === 'invalid' ? 'invalid' : 'pending',
      })),
    );
    await counters.finishedMany(finished, { rate: false });
    after = (rows[rows.length - 1] as { line: number }).line;
    if (rows.length < PAGE) return;
  }
}

/** What {@link restoreJob} needs: the job's config and where its queue, counters and lines are. */
export interface RestoreTarget extends EnqueueTarget {
  readonly config: JobConfig;
}

/**
 * Puts back what a Redis that restarted without persistence lost of a job (its config, its name
 * in the list of jobs, its counters, its queued chunks), from PostgreSQL, which holds every line:
 * when the job's config is missing from Redis. Returns whether it had to.
 */
export async function restoreJob(
  target: RestoreTarget,
  inputComplete: boolean | undefined,
): Promise<boolean> {
  const keys = jobKeys(target.job);
  if ((await target.redis.exists(keys.config)) === 1) return false;
  await target.redis.set(keys.config, JSON.stringify(target.config));
  if (inputComplete !== undefined) await target.counters.setInputComplete(inputComplete);
  await target.redis.sadd(JOBS_KEY, target.job);
  await recountJob(target.counters, target.store, target.job);
  await enqueuePending(target);
  return true;
}
