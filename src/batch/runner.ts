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

/**
 * Runs a batch: every input line is fetched with the retry policy and its outcome recorded
 * exactly once in the SQLite journal at `options.db`. Retries are durable (a line that must
 * wait is rescheduled in the journal, never slept on), per-host concurrency and rate are
 * honoured, and a run that was killed resumes where it stopped when run again.
 *
 * @example
 * const result = await runBatch({ input: 'urls.txt', db: 'run.sqlite', concurrency: 32 });
 * console.log(result.end, result.counts); // 'complete' { done: 1990, failed: 10, ... }
 */
export async function runBatch(options: BatchOptions): Promise<BatchResult> {
  const resolved = resolveBatchOptions(options);
  const journal = Journal.open(options.db);
  let release: (() => void) | undefined;
  try {
    release = acquireLock(journal);
    const recovered = journal.releaseInFlight();
    const run = await new BatchRun(journal, options, resolved).run();
    return {
      ...run,
      counts: journal.counts(),
      recovered,
      nextDueAt: journal.nextDueAt(),
      summary: summarize(journal),
    };
  } finally {
    release?.();
    journal.close();
  }
}
