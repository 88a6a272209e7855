import type { DistributedBatchOptions } from './distributed/options.js';
import { checkInputReadable } from './input.js';
import { Journal, type StateCounts } from './journal.js';
import { acquireLock } from './lock.js';
import { type BatchOptions, resolveBatchOptions } from './options.js';
import { type BatchEnd, BatchRun } from './run.js';
import { type BatchSummary, summarize } from './summary.js';

export type { BatchEnd } from './run.js';

/** What {@link runBatch} resolves with. */
export interface BatchResult {
  readonly end: BatchEnd;
  /** Lines per state at the end. */
  readonly counts: StateCounts;
  /** Attempts made by this run. */
  readonly attempts: number;
  readonly elapsedMs: number;
  /** Lines a dead runner had left in flight, put back to pending at the start. */
  readonly recovered: number;
  /** When the next pending line is due (epoch ms), if any is left. */
  readonly nextDueAt: number | undefined;
  /** Status codes, error kinds, retries and hosts of the whole journal. */
  readonly summary: BatchSummary;
}

/** True for the options of a distributed batch (`queue`, `store` and `job` instead of `db`). */
export function isDistributed(
  options: BatchOptions | DistributedBatchOptions,
): options is DistributedBatchOptions {
  return typeof options === 'object' && options !== null && 'queue' in options;
}

/**
 * Runs a batch: every input line is fetched with the retry policy and its outcome recorded
 * exactly once. Retries are durable (a line that must wait is rescheduled, never slept on),
 * per-host concurrency and rate are honoured, and a run that was killed resumes where it
 * stopped when run again.
 *
 * Two backends, one behaviour: with `db`, the embedded SQLite journal (one process); with
 * `queue`, `store` and `job`, the distributed backend (BullMQ on Redis for the work, PostgreSQL
 * for the records, any number of `dogged worker` processes on any machines, limits fleet-wide;
 * see docs/scaling-out.md). Both resolve with the same {@link BatchResult}.
 *
 * @example
 * const result = await runBatch({ input: 'urls.txt', db: 'run.sqlite', concurrency: 32 });
 * console.log(result.end, result.counts); // 'complete' { done: 1990, failed: 10, ... }
 * @example
 * await runBatch({ input: 'urls.txt', queue: 'redis://127.0.0.1:6379/0',
 *   store: 'postgres://postgres@127.0.0.1/crawl', job: 'nightly' });
 */
export async function runBatch(
  options: BatchOptions | DistributedBatchOptions,
): Promise<BatchResult> {
  if (isDistributed(options)) {
    // Loaded on first use: programs that never scale out never load BullMQ or pg.
    const { runDistributedBatch } = await import('./distributed/run-distributed.js');
    return runDistributedBatch(options);
  }
  const resolved = resolveBatchOptions(options);
  // A bad input path must not leave a new, empty journal behind.
  if (options.input !== undefined) checkInputReadable(options.input);
  const journal = Journal.open(options.db);
  let release: (() => void) | undefined;
  try {
    release = acquireLock(journal);
    // Lines the last runner read and never attempted (it died) are rows again.
    journal.writeDeferredRows();
    const suspects = journal.inFlightLines();
    const recovered = journal.releaseInFlight();
    const run = await new BatchRun(journal, options, resolved, suspects).run();
    const summary = summarize(journal);
    return { ...run, counts: summary.counts, recovered, nextDueAt: summary.nextDueAt, summary };
  } finally {
    release?.();
    journal.close();
  }
}
