import { truncate } from '../../retry/describe.js';
import type { PgStore, QueuedLine, StoreLine } from './store.js';

/** What {@link insertLines} did. */
export interface InsertResult {
  /** The pending requests among the given lines, new or not: to (re-)enqueue. */
  readonly pending: QueuedLine[];
  /** The first line whose text differs from the one recorded. */
  readonly changedLine: number | undefined;
}

/**
 * Records new lines (a recorded line is left as it is, after checking its fingerprint).
 * Returns the pending requests among the given lines (new or not: they
 * are (re-)enqueued, BullMQ ignores the ones it holds) and the first changed line.
 */
export async function insertLines(
  store: PgStore,
  job: string,
  lines: readonly StoreLine[],
): Promise<InsertResult> {
  if (!lines.length) return { pending: [], changedLine: undefined };
  const now = Date.now();
  const cols = {
    line: [] as number[],
    hash: [] as string[],
    key: [] as (string | null)[],
    method: [] as (string | null)[],
    url: [] as (string | null)[],
    host: [] as (string | null)[],
    headers: [] as (string | null)[],
    body: [] as (string | null)[],
    raw: [] as (string | null)[],
    state: [] as string[],
    reason: [] as (string | null)[],
    message: [] as (string | null)[],
    finished: [] as (number | null)[],
  };
  for (const l of lines) {
    cols.line.push(l.line);
    cols.hash.push(l.hash);
    cols.key.push(l.key ?? null);
    if (l.kind === 'request') {
      cols.method.push(l.method);
      cols.url.push(l.url);
      cols.host.push(l.host);
      cols.headers.push(
        l.headers && Object.keys(l.headers).length ? JSON.stringify(l.headers) : null,
      );
      cols.body.push(l.body ?? null);
      cols.raw.push(null);
      cols.state.push('pending');
      cols.reason.push(null);
      cols.message.push(null);
      cols.finished.push(null);
    } else {
      cols.method.push(null);
      cols.url.push(null);
      cols.host.push(null);
      cols.headers.push(null);
      cols.body.push(null);
      cols.raw.push(truncate(l.raw, 2000));
      cols.state.push('invalid');
      cols.reason.push('invalid');
      cols.message.push(l.reason);
      cols.finished.push(now);
    }
  }
  const insertedRows = await store.query<{ line: number }>(
    `INSERT INTO ${store.schema}.requests (job, line, line_hash, key, method, url, host, request_headers, request_body, raw, state,
       reason, error_code, error_message, finished_at)
     SELECT $1, u.line, u.hash, u.key, u.method, u.url, u.host, u.headers::jsonb, u.body, u.raw, u.state,
       u.reason, CASE WHEN u.state = 'invalid' THEN 'ERR_DOGGED_INVALID_LINE' END, u.message, u.finished
     FROM unnest($2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
       $10::text[], $11::text[], $12::text[], $13::text[], $14::bigint[])
       AS u(line, hash, key, method, url, host, headers, body, raw, state, reason, message, finished)
     ON CONFLICT (job, line) DO NOTHING RETURNING line`,
    [
      job,
      cols.line,
      cols.hash,
      cols.key,
      cols.method,
      cols.url,
      cols.host,
      cols.headers,
      cols.body,
      cols.raw,
      cols.state,
      cols.reason,
      cols.message,
      cols.finished,
    ],
  );
  const insertedSet = new Set(insertedRows.map((r) => r.line));
  const others = lines.filter((l) => !insertedSet.has(l.line));
  let changedLine: number | undefined;
  const stillPending = new Set<number>();
  if (others.length) {
    const rows = await store.query<{ line: number; line_hash: string; state: string }>(
      `SELECT line, line_hash, state FROM ${store.schema}.requests WHERE job = $1 AND line = ANY($2::int[])`,
      [job, others.map((l) => l.line)],
    );
    const byLine = new Map(rows.map((r) => [r.line, r]));
    for (const l of others) {
      const row = byLine.get(l.line);
      if (!row) continue;
      if (row.line_hash !== l.hash) changedLine ??= l.line;
      else if (row.state === 'pending') stillPending.add(l.line);
    }
  }
  const pending: QueuedLine[] = [];
  for (const l of lines)
    if (l.kind === 'request' && (insertedSet.has(l.line) || stillPending.has(l.line)))
      pending.push(toQueued(l));
  return { pending, changedLine };
}

function toQueued(l: Extract<StoreLine, { kind: 'request' }>): QueuedLine {
  return {
    line: l.line,
    method: l.method,
    url: l.url,
    host: l.host,
    ...(l.headers && Object.keys(l.headers).length && { headers: l.headers }),
    ...(l.body !== undefined && { body: l.body }),
    ...(l.key !== undefined && { key: l.key }),
  };
}
