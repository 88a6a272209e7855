import {
  type ExportOptions,
  type ExportRecord,
  type ExportRow,
  exportRedactor,
  recordOf,
  statesOf,
} from '../export.js';
import type { HistoryEntry } from '../journal-schema.js';
import {
  type BatchSummary,
  type FailureTally,
  type HostSummary,
  linesOf,
  type Tally,
} from '../summary.js';
import type { PgStore } from './store.js';

/**
 * The same summary as `summarize(journal)`, from the store: counts, statuses, failures, the
 * failures retries overcame, attempts, the busiest hosts.
 */
export async function summarizeStore(store: PgStore, job: string): Promise<BatchSummary> {
  const t = `${store.schema}.requests`;
  const counts = await store.counts(job);
  const statuses = await store.query<Tally<number>>(
    `SELECT status AS value, count(*)::int AS count FROM ${t}
     WHERE job = $1 AND state IN ('done', 'failed') AND status IS NOT NULL GROUP BY status ORDER BY status`,
    [job],
  );
  const failures = await store.query<FailureTally>(
    `SELECT coalesce(reason, 'unknown') AS reason, status, error_code AS "errorCode", count(*)::int AS count
     FROM ${t} WHERE job = $1 AND state = 'failed' GROUP BY 1, 2, 3 ORDER BY count DESC, reason`,
    [job],
  );
  // A history entry is a retry, or (with `throttled` or `down`) attempts the host held.
  const held = `coalesce(h.value->>'throttled', h.value->>'down')`;
  const retried = await store.query<Tally<string>>(
    `SELECT coalesce(h.value->>'status', h.value->>'code', 'unknown') AS value, count(*)::int AS count
     FROM ${t} AS r, jsonb_array_elements(r.history) AS h
     WHERE r.job = $1 AND r.history IS NOT NULL AND ${held} IS NULL GROUP BY 1 ORDER BY count DESC, value`,
    [job],
  );
  const heldTally = await store.query<Tally<string>>(
    `SELECT coalesce(h.value->>'status', h.value->>'code', 'unknown') AS value, sum((${held})::int)::int AS count
     FROM ${t} AS r, jsonb_array_elements(r.history) AS h
     WHERE r.job = $1 AND r.history IS NOT NULL AND ${held} IS NOT NULL GROUP BY 1 ORDER BY count DESC, value`,
    [job],
  );
  const retriesOf = `(SELECT count(*) FROM jsonb_array_elements(history) AS h WHERE ${held} IS NULL)`;
  const attempts = await store.query<Tally<number>>(
    `SELECT attempts AS value, count(*)::int AS count FROM ${t}
     WHERE job = $1 AND state IN ('done', 'failed') GROUP BY attempts ORDER BY attempts`,
    [job],
  );
  const hosts = await store.query<HostSummary>(
    `SELECT host, count(*)::int AS lines, count(*) FILTER (WHERE state = 'done')::int AS done,
            count(*) FILTER (WHERE state = 'failed')::int AS failed,
            count(*) FILTER (WHERE state = 'pending')::int AS left,
            coalesce(sum(${retriesOf}), 0)::int AS retries
     FROM ${t} WHERE job = $1 AND host IS NOT NULL GROUP BY host ORDER BY lines DESC, host LIMIT 10`,
    [job],
  );
  const [more] = await store.query<{ hosts: number; retries: number }>(
    `SELECT count(DISTINCT host)::int AS hosts, coalesce(sum(${retriesOf}), 0)::int AS retries
     FROM ${t} WHERE job = $1`,
    [job],
  );
  return {
    counts,
    total: linesOf(counts),
    statuses,
    failures,
    retried,
    held: heldTally,
    attempts,
    hosts,
    hostCount: more?.hosts ?? 0,
    retries: more?.retries ?? 0,
    nextDueAt: await store.nextDueAt(job),
  };
}

type Row = ExportRow<HistoryEntry[], Record<string, string | string[]>>;

/**
 * The job's records in line order, as `exportRecords(journal)` gives them, read in pages of
 * `pageSize` lines (memory stays flat).
 */
export async function* storeRecords(
  store: PgStore,
  job: string,
  options: ExportOptions = {},
  pageSize = 1000,
): AsyncGenerator<ExportRecord> {
  const { states, retrying } = statesOf(options);
  const redactor = exportRedactor(options);
  // The store has no in_flight state: a line in flight is pending there.
  const stored = states.map((s) => (s === 'in_flight' ? 'pending' : s));
  const alsoRetrying = retrying ? " OR (state = 'pending' AND attempts > 0)" : '';
  let after = 0;
  for (;;) {
    const rows = await store.query<Row>(
      `SELECT line, key, method, url, raw, state, status, reason, error_code, error_message, attempts, history,
         response_headers, body_size, body_path, first_attempt_at::float8 AS first_attempt_at,
         finished_at::float8 AS finished_at, ttfb_ms, duration_ms${options.bodies ? ', body' : ''}
       FROM ${store.schema}.requests WHERE job = $1 AND line > $2 AND (state = ANY($3::text[])${alsoRetrying})
       ORDER BY line LIMIT $4`,
      [job, after, stored, pageSize],
    );
    for (const row of rows) yield recordOf(row, options.bodies ?? false, redactor);
    const last = rows[rows.length - 1];
    if (!last || rows.length < pageSize) return;
    after = last.line;
  }
}
