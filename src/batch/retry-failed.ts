import type { Journal } from './journal.js';
import { acquireLock } from './lock.js';

/** Which failed lines {@link resetFailed} gives another chance. Empty: all of them. */
export interface FailedFilter {
  /**
   * Only lines whose final status is one of these; `'5xx'`-style classes are allowed.
   * @default every status
   * @example { statuses: ['5xx', 429] }
   */
  statuses?: readonly (number | string)[];
  /**
   * Only lines whose final error has one of these codes.
   * @default every code
   * @example { codes: ['ERR_DOGGED_READ_TIMEOUT'] }
   */
  codes?: readonly string[];
}

/**
 * The SQL condition a {@link FailedFilter} adds to `state = 'failed'` (statuses OR codes), or
 * undefined for no filter. `param` records a value and returns its placeholder: `?` for SQLite,
 * `$n` for PostgreSQL. Shared by {@link resetFailed} and the distributed `retry-failed`.
 * @example failedFilterSql({ statuses: ['5xx'] }, (v) => (params.push(v), '?')) // '((status BETWEEN ? AND ?))'
 */
export function failedFilterSql(
  filter: FailedFilter,
  param: (value: unknown) => string,
): string | undefined {
  const either: string[] = [];
  if (filter.statuses?.length) {
    const parts: string[] = [];
    for (const s of filter.statuses) {
      const text = String(s).trim().toLowerCase();
      if (/^[1-5]xx$/.test(text)) {
        const base = Number(text[0]) * 100;
        parts.push(`(status BETWEEN ${param(base)} AND ${param(base + 99)})`);
      } else if (/^\d{3}$/.test(text)) {
        parts.push(`status = ${param(Number(text))}`);
      } else {
        throw new TypeError(`a status must be like 503 or 5xx, got ${JSON.stringify(s)}`);
      }
    }
    either.push(parts.join(' OR '));
  }
  if (filter.codes?.length)
    either.push(`error_code IN (${filter.codes.map((c) => param(c)).join(', ')})`);
  return either.length ? `(${either.join(' OR ')})` : undefined;
}

/**
 * Puts failed lines back to pending, due now, with a fresh retry budget (attempts and history
 * cleared; the previous outcome is dropped). Takes the runner lock while it writes, so it is
 * refused while a batch runs on the journal. Returns the number of lines reset.
 * @example resetFailed(journal, { statuses: ['5xx'] }) // then runBatch({ db }) fetches them again
 */
export function resetFailed(journal: Journal, filter: FailedFilter = {}): number {
  const params: unknown[] = [];
  const filtered = failedFilterSql(filter, (value) => {
    params.push(value);
    return '?';
  });
  const where = filtered ? `state = 'failed' AND ${filtered}` : "state = 'failed'";
  const release = acquireLock(journal);
  try {
    return journal.transaction(() => {
      journal.db
        .prepare(`DELETE FROM responses WHERE line IN (SELECT line FROM requests WHERE ${where})`)
        .run(...params);
      return journal.db
        .prepare(
          `UPDATE requests SET state = 'pending', attempts = 0, history = NULL, next_attempt_at = ?,
             status = NULL, error_code = NULL, error_message = NULL, reason = NULL,
             body_size = NULL, body_path = NULL, finished_at = NULL, ttfb_ms = NULL, duration_ms = NULL,
             header_fields = NULL, unfinished = 0
           WHERE ${where}`,
        )
        .run(Date.now(), ...params).changes;
    });
  } finally {
    release();
  }
}
