import type { HistoryEntry } from '../journal-schema.js';
import type { AttemptOutcome } from '../outcome.js';
import type { LineRecordState, PgStore, QueuedLine } from './store.js';

/** A pending line of a chunk, as a worker loads it: what to send and where it stands. */
export interface ChunkLine extends QueuedLine, LineRecordState {
  readonly host: string;
  /** Attempts started and never recorded: workers that died with the line in flight. */
  readonly unfinished: number;
}

/**
 * What PostgreSQL text cannot hold: NUL, and a lone surrogate (JSON.stringify escapes it as
 * `\\ud800`, which json_to_recordset refuses).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what it replaces
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** `text` as PostgreSQL stores it: what it cannot hold becomes U+FFFD. */
function wellFormed(text: string): string {
  return text.replace(UNSTORABLE, '\uFFFD');
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
 * An attempt's outcome ready to write: its row of {@link recordEncoded}'s JSON, as text (the
 * object left open: the body's place in the batch closes it), and its body. Made as the outcome
 * is known, so that while it waits for its batch it holds its text and its body, not the
 * outcome's objects (which then die young instead of being copied by every scavenge meanwhile).
 */
export interface EncodedWrite {
  readonly line: number;
  readonly state: AttemptOutcome['state'];
  /** `{"l":…,…,"w":"…"`: every column but the body's offset and length. */
  readonly row: string;
  readonly body: Buffer | null;
}

/** A JSON number, or null (JSON has no NaN nor infinities). */
function num(value: number | null): string {
  return value === null || !Number.isFinite(value) ? 'null' : String(value);
}

/** A JSON string of PostgreSQL-storable text, or null. */
function text(value: string | null): string {
  return value === null ? 'null' : JSON.stringify(wellFormed(value));
}

/** The last worker id {@link encodeWrite} encoded, and its JSON: a worker writes only its own. */
let lastWorker: string | undefined;
let lastWorkerJson = 'null';

/**
 * Encodes one attempt's outcome for {@link recordEncoded}: written only where the line is still
 * pending after exactly `previousAttempts` attempts.
 */
export function encodeWrite(
  line: number,
  previousAttempts: number,
  outcome: AttemptOutcome,
  startedAt: number,
  worker: string,
): EncodedWrite {
  if (worker !== lastWorker) {
    lastWorker = worker;
    lastWorkerJson = text(worker);
  }
  // The response headers go in as a JSON object (read as jsonb), not as a string escaped twice.
  const row =
    `{"l":${line},"p":${previousAttempts},"s":"${outcome.state}","a":${outcome.attempts}` +
    `,"n":${num(outcome.nextAttemptAt)}` +
    `,"h":${outcome.history.length ? JSON.stringify(outcome.history) : 'null'}` +
    `,"st":${num(outcome.status)},"c":${text(outcome.errorCode)}` +
    `,"m":${text(outcome.errorMessage)},"r":${text(outcome.reason)}` +
    `,"hd":${outcome.responseHeaders === null ? 'null' : JSON.stringify(outcome.responseHeaders)},"sz":${num(outcome.bodySize)}` +
    `,"pa":${text(outcome.bodyPath)},"t0":${num(startedAt)},"t1":${num(outcome.finishedAt)}` +
    `,"tt":${num(outcome.ttfbMs)},"du":${num(outcome.durationMs)},"w":${lastWorkerJson}`;
  return { line, state: outcome.state, row, body: outcome.body };
}

/**
 * The lines a statement of {@link recordEncoded} spans, at most: four a write, plus this many. The
 * statement reads the job's pending lines from its first line to its last (whatever the plan),
 * so this bounds what a batch reads beyond its own lines.
 */
export const SPAN_SLACK = 1024;

/**
 * The writes in groups of nearby lines, in line order: a group spans at most four lines a write
 * plus {@link SPAN_SLACK}. A worker's outcomes are mostly of the chunks it runs now: one group.
 */
export function nearbyGroups(writes: readonly EncodedWrite[]): EncodedWrite[][] {
  const sorted = [...writes].sort((a, b) => a.line - b.line);
  const groups: EncodedWrite[][] = [];
  let group: EncodedWrite[] = [];
  for (const w of sorted) {
    const first = group[0];
    if (first && w.line - first.line + 1 > 4 * (group.length + 1) + SPAN_SLACK) {
      groups.push(group);
      group = [];
    }
    group.push(w);
  }
  if (group.length) groups.push(group);
  return groups;
}

/** What runs a statement: the store (its pool), or a client in a transaction. */
type Runner = (
  sql: { readonly name: string; readonly text: string },
  params: unknown[],
) => Promise<readonly { line: number }[]>;

/**
 * Writes many attempts' outcomes ({@link encodeWrite}), each once: only where the line is still
 * pending after exactly the attempts its outcome follows (another execution of the line may have
 * got there first). One statement per group of nearby lines ({@link nearbyGroups}; usually one),
 * in one transaction. Resolves with the lines written.
 */
export async function recordEncoded(
  store: PgStore,
  job: string,
  writes: readonly EncodedWrite[],
): Promise<Set<number>> {
  if (!writes.length) return new Set();
  const groups = nearbyGroups(writes);
  if (groups.length === 1) {
    const rows = await recordGroup(store, job, writes, (sql, params) => store.query(sql, params));
    return new Set(rows.map((r) => r.line));
  }
  return store.transaction(async (client) => {
    const written = new Set<number>();
    const run: Runner = async (sql, params) =>
      (await client.query<{ line: number }>({ name: sql.name, text: sql.text, values: params }))
        .rows;
    for (const group of groups)
      for (const r of await recordGroup(store, job, group, run)) written.add(r.line);
    return written;
  });
}

/** One statement of {@link recordEncoded}: the writes of one group of nearby lines. */
function recordGroup(
  store: PgStore,
  job: string,
  writes: readonly EncodedWrite[],
  run: Runner,
): Promise<readonly { line: number }[]> {
  // The rows go as one JSON array (read by json_to_recordset: no array literal per column to
  // build and escape), the bodies as one binary parameter of which each row names its slice
  // (no hex text per body).
  let json = '[';
  const bodies: Buffer[] = [];
  let first = Number.POSITIVE_INFINITY;
  let last = 0;
  let bodyBytes = 0;
  for (const w of writes) {
    if (w.line < first) first = w.line;
    if (w.line > last) last = w.line;
    if (json.length > 1) json += ',';
    if (w.body === null) json += `${w.row},"ba":null,"bl":null}`;
    else {
      json += `${w.row},"ba":${bodyBytes},"bl":${w.body.length}}`;
      bodies.push(w.body);
      bodyBytes += w.body.length;
    }
  }
  json += ']';
  const t = `${store.schema}.requests`;
  // The group's first and last lines bound the rows read, whatever the plan: the index is read
  // from one to the other only. Joined on `u.l` alone, with statistics that saw the job small (the
  // enqueue analyzes after its first lines; autovacuum comes a minute later at best), PostgreSQL
  // hashed every pending line of the job for each batch: per line, a job of 120,000 lines cost
  // twice the database CPU of one of 20,000. (`line = ANY(…)` does not bound it: the planner may
  // filter with it instead of probing; nor do several ranges in one statement.)
  return run(
    {
      name: `dogged-record-attempts-${store.schema}`,
      text: `UPDATE ${t} AS r SET state = u.s, attempts = u.a, next_attempt_at = u.n,
          history = u.h, status = u.st, error_code = u.c, error_message = u.m, reason = u.r,
          response_headers = u.hd,
          body = CASE WHEN u.ba IS NULL THEN NULL ELSE substring($3::bytea FROM u.ba + 1 FOR u.bl) END,
          body_size = u.sz, body_path = u.pa,
          first_attempt_at = coalesce(r.first_attempt_at, u.t0), last_attempt_at = u.t0,
          finished_at = u.t1, ttfb_ms = u.tt, duration_ms = u.du,
          worker = CASE WHEN u.s = 'pending' THEN r.worker ELSE u.w END, unfinished = 0
        FROM json_to_recordset($2::json) AS u(l int, p int, s text, a int, n bigint, h jsonb,
          st int, c text, m text, r text, hd jsonb, ba int, bl int, sz int, pa text, t0 bigint,
          t1 bigint, tt real, du real, w text)
        WHERE r.job = $1 AND r.line BETWEEN $4 AND $5 AND r.line = u.l AND r.state = 'pending'
          AND r.attempts = u.p
        RETURNING r.line`,
    },
    [job, json, bodies.length === 1 ? bodies[0] : Buffer.concat(bodies, bodyBytes), first, last],
  );
}
