import type { HistoryEntry } from '../journal-schema.js';
import type { AttemptRecord, LineRecordState, PgStore, QueuedLine } from './store.js';

/** A pending line of a chunk, as a worker loads it: what to send and where it stands. */
export interface ChunkLine extends QueuedLine, LineRecordState {
  readonly host: string;
  /** Attempts started and never recorded: workers that died with the line in flight. */
  readonly unfinished: number;
}

/** One attempt's outcome to write, guarded by the attempt count it follows. */
export interface PendingWrite {
  readonly line: number;
  readonly previousAttempts: number;
  readonly record: AttemptRecord;
}

/**
 * The pending lines of lines `from`..`to` of a job, in line order: one query (the partial index
 * of pending lines answers it).
 */
export async function loadChunk(
  store: PgStore,
  job: string,
  from: number,
  to: number,
): Promise<ChunkLine[]> {
  const rows = await store.query<{
    line: number;
    method: string;
    url: string;
    host: string;
    request_headers: Record<string, string> | null;
    request_body: string | null;
    key: string | null;
    attempts: number;
    history: HistoryEntry[] | null;
    next: number;
    first: number | null;
    unfinished: number;
  }>(
    {
      name: `dogged-load-chunk-${store.schema}`,
      text: `SELECT line, method, url, host, request_headers, request_body, key, attempts, history,
          next_attempt_at::float8 AS next, first_attempt_at::float8 AS first, unfinished
        FROM ${store.schema}.requests
        WHERE job = $1 AND state = 'pending' AND line BETWEEN $2 AND $3 ORDER BY line`,
    },
    [job, from, to],
  );
  return rows.map((r) => ({
    line: r.line,
    method: r.method,
    url: r.url,
    host: r.host,
    ...(r.request_headers && { headers: r.request_headers }),
    ...(r.request_body !== null && { body: r.request_body }),
    ...(r.key !== null && { key: r.key }),
    state: 'pending',
    attempts: r.attempts,
    history: r.history ?? [],
    nextAttemptAt: r.next,
    firstAttemptAt: r.first,
    unfinished: r.unfinished,
  }));
}

/**
 * Writes many attempts' outcomes in one statement, each once: only where the line is still
 * pending after exactly `previousAttempts` attempts (another execution of the line may have got
 * there first). Resolves with the lines written.
 */
export async function recordAttempts(
  store: PgStore,
  job: string,
  writes: readonly PendingWrite[],
): Promise<Set<number>> {
  if (!writes.length) return new Set();
  const c = {
    line: [] as number[],
    prev: [] as number[],
    state: [] as string[],
    attempts: [] as number[],
    next: [] as number[],
    history: [] as (string | null)[],
    status: [] as (number | null)[],
    code: [] as (string | null)[],
    message: [] as (string | null)[],
    reason: [] as (string | null)[],
    headers: [] as (string | null)[],
    body: [] as (Buffer | null)[],
    size: [] as (number | null)[],
    path: [] as (string | null)[],
    started: [] as number[],
    finished: [] as (number | null)[],
    ttfb: [] as (number | null)[],
    duration: [] as (number | null)[],
    worker: [] as string[],
  };
  for (const { line, previousAttempts, record: r } of writes) {
    c.line.push(line);
    c.prev.push(previousAttempts);
    c.state.push(r.state);
    c.attempts.push(r.attempts);
    c.next.push(r.nextAttemptAt);
    c.history.push(r.history.length ? JSON.stringify(r.history) : null);
    c.status.push(r.status);
    c.code.push(r.errorCode);
    c.message.push(r.errorMessage);
    c.reason.push(r.reason);
    c.headers.push(r.responseHeaders);
    c.body.push(r.body);
    c.size.push(r.bodySize);
    c.path.push(r.bodyPath);
    c.started.push(r.startedAt);
    c.finished.push(r.finishedAt);
    c.ttfb.push(r.ttfbMs);
    c.duration.push(r.durationMs);
    c.worker.push(r.worker);
  }
  const t = `${store.schema}.requests`;
  const rows = await store.query<{ line: number }>(
    {
      name: `dogged-record-attempts-${store.schema}`,
      text: `UPDATE ${t} AS r SET state = u.state, attempts = u.attempts, next_attempt_at = u.next,
          history = u.history::jsonb, status = u.status, error_code = u.code, error_message = u.message,
          reason = u.reason, response_headers = u.headers::jsonb, body = u.body, body_size = u.size,
          body_path = u.path, first_attempt_at = coalesce(r.first_attempt_at, u.started),
          last_attempt_at = u.started, finished_at = u.finished, ttfb_ms = u.ttfb,
          duration_ms = u.duration,
          worker = CASE WHEN u.state = 'pending' THEN r.worker ELSE u.worker END, unfinished = 0
        FROM unnest($2::int[], $3::int[], $4::text[], $5::int[], $6::bigint[], $7::text[], $8::int[],
          $9::text[], $10::text[], $11::text[], $12::text[], $13::bytea[], $14::int[], $15::text[],
          $16::bigint[], $17::bigint[], $18::real[], $19::real[], $20::text[])
          AS u(line, prev, state, attempts, next, history, status, code, message, reason, headers,
            body, size, path, started, finished, ttfb, duration, worker)
        WHERE r.job = $1 AND r.line = u.line AND r.state = 'pending' AND r.attempts = u.prev
        RETURNING r.line`,
    },
    [
      job,
      c.line,
      c.prev,
      c.state,
      c.attempts,
      c.next,
      c.history,
      c.status,
      c.code,
      c.message,
      c.reason,
      c.headers,
      c.body,
      c.size,
      c.path,
      c.started,
      c.finished,
      c.ttfb,
      c.duration,
      c.worker,
    ],
  );
  return new Set(rows.map((r) => r.line));
}
