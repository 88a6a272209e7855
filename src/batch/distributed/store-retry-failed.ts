import { type FailedFilter, failedFilterSql } from '../retry-failed.js';
import type { PgStore } from './store.js';

/** A line put back to pending: its number and its host (for the per-host counters). */
export interface ResetLine {
  readonly line: number;
  readonly host: string | null;
}

/**
 * The store's half of the distributed `retry-failed`, as `resetFailed` does it to a
 * journal: in one transaction, the job's failed lines (those matching `filter`: the same
 * statuses and codes) go back to pending, due now, with a fresh retry budget: attempts, history,
 * the previous outcome (status, error, reason, response headers and body, timings, the worker
 * that recorded it) cleared, and the crash count (`unfinished`) back to 0, so a
 * `crashed-runner` line gets its three tries again. `first_attempt_at` and `last_attempt_at`
 * stay, as in the journal. `beforeCommit` runs inside the transaction with the lines reset (in
 * line order), when there are any: a failure there rolls the reset back. Resolves with the
 * lines reset.
 * @example const lines = await resetFailedInStore(store, 'nightly', { statuses: ['5xx'] });
 */
export async function resetFailedInStore(
  store: PgStore,
  job: string,
  filter: FailedFilter = {},
  beforeCommit?: (lines: readonly ResetLine[]) => Promise<unknown>,
): Promise<ResetLine[]> {
  const params: unknown[] = [job, Date.now()];
  const filtered = failedFilterSql(filter, (value) => {
    params.push(value);
    return `$${params.length}`;
  });
  const sql = `UPDATE ${store.schema}.requests SET state = 'pending', attempts = 0, history = NULL,
      next_attempt_at = $2, status = NULL, error_code = NULL, error_message = NULL, reason = NULL,
      response_headers = NULL, body = NULL, body_size = NULL, body_path = NULL, finished_at = NULL,
      ttfb_ms = NULL, duration_ms = NULL, worker = NULL, unfinished = 0
    WHERE job = $1 AND state = 'failed'${filtered ? ` AND ${filtered}` : ''}
    RETURNING line, host`;
  return store.transaction(async (client) => {
    const { rows } = await client.query<ResetLine>(sql, params);
    rows.sort((a, b) => a.line - b.line);
    if (rows.length && beforeCommit) await beforeCommit(rows);
    return rows;
  });
}
