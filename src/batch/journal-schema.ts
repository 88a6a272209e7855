import { responseHeadersSql } from './header-fields.js';
import type { StateCounts } from './journal.js';

/**
 * The journal's tables. One row per input line, keyed by its line number (the stable id a resume
 * finds again), plus the line's fingerprint so a changed input is noticed. Retries are durable:
 * a line that must wait is `pending` with a future `next_attempt_at`, never a sleep in memory.
 */
export const SCHEMA_VERSION = 3;
/**
 * Earlier schema versions this dogged reads, and brings to {@link SCHEMA_VERSION} when it opens
 * them to write: version 1 kept each final response's headers as a JSON object in
 * `responses.headers`, version 2 as fields in `responses.header_fields` (it still reads both
 * there; the lines it writes have them in `requests.header_fields`).
 */
export const EARLIER_SCHEMA_VERSIONS: readonly number[] = [1, 2];

export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS meta (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- The runner that holds the journal (at most one row).
CREATE TABLE IF NOT EXISTS runner (
  id            INTEGER PRIMARY KEY CHECK (id = 1),
  pid           INTEGER NOT NULL,
  hostname      TEXT    NOT NULL,
  started_at    INTEGER NOT NULL,
  process_start TEXT
);

CREATE TABLE IF NOT EXISTS requests (
  line             INTEGER PRIMARY KEY,  -- 1-based line number in the input: the stable id
  line_hash        TEXT    NOT NULL,     -- fingerprint of the raw line
  key              TEXT,                 -- the JSONL line's own "key"
  method           TEXT,
  url              TEXT,
  host             TEXT,                 -- host:port, for per-host limits and the summary
  request_headers  TEXT,                 -- JSON object
  request_body     TEXT,
  raw              TEXT,                 -- the line itself, for invalid lines only
  state            TEXT    NOT NULL CHECK (state IN ('pending', 'in_flight', 'done', 'failed', 'invalid')),
  attempts         INTEGER NOT NULL DEFAULT 0,   -- attempts that got an outcome
  next_attempt_at  INTEGER NOT NULL DEFAULT 0,   -- epoch ms; when a pending line is due
  history          TEXT,                 -- JSON array: one entry per retried attempt
  status           INTEGER,              -- HTTP status of the last attempt, if it got one
  error_code       TEXT,                 -- error code of the last attempt, if it failed without a status
  error_message    TEXT,
  reason           TEXT,                 -- why a line ended: ok, http-status, retries-exhausted, not-retriable, retry-after-too-long, rate-limited, body-too-large, crashed-runner, invalid
  body_size        INTEGER,
  body_path        TEXT,                 -- with --bodies dir:PATH
  first_attempt_at INTEGER,
  last_attempt_at  INTEGER,
  finished_at      INTEGER,
  ttfb_ms          REAL,                 -- of the last attempt: until the response head
  duration_ms      REAL,                 -- of the last attempt: until the body was read
  unfinished       INTEGER NOT NULL DEFAULT 0, -- attempts started since the last outcome: runs that died with the line in flight (see MAX_CRASHES)
  header_fields    TEXT                  -- the final response's headers: a JSON array, in header order, of ids of header_values and [name, value] pairs
);

-- The scheduler's queue: only pending lines, in due order. Due retries are read first, from
-- their own index, so a line whose retry is due never waits behind the fresh lines of the input.
CREATE INDEX IF NOT EXISTS requests_due ON requests (next_attempt_at, line) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS requests_retry_due ON requests (next_attempt_at, line)
  WHERE state = 'pending' AND attempts > 0;

-- Final responses: headers, and the body with --bodies db. Kept apart, written once per line,
-- so the requests table stays small to scan and its rows keep their size when they finish.
-- Read the headers from the response_headers view (a JSON object per line).
CREATE TABLE IF NOT EXISTS responses (
  line          INTEGER PRIMARY KEY,
  headers       TEXT,                    -- JSON object (journals of schema version 1)
  body          BLOB,
  header_fields TEXT                     -- JSON array, in header order: ids of header_values, and [name, value] pairs
);

-- Header fields that repeat from one response to the next, each written once and named by id
-- in responses.header_fields. Never deleted.
CREATE TABLE IF NOT EXISTS header_values (
  id    INTEGER PRIMARY KEY,
  name  TEXT NOT NULL,
  value TEXT NOT NULL
);

-- While a run reads its input: the lines it has read and not yet attempted, a chunk of lines to
-- a row (one INSERT a chunk, not a line). A line gets its row in requests with its first start
-- or outcome; the lines still here when the run ends (or when the journal is next opened, after
-- a crash) become pending rows of requests then. Empty between runs; readers (status, export,
-- the report) see these lines as pending rows of requests.
CREATE TABLE IF NOT EXISTS input_chunks (
  first_line INTEGER PRIMARY KEY,
  lines      TEXT NOT NULL               -- JSON object of columns, an array each, one value a line: l (line), h (line_hash), u (url), o (host), m (method), d (next_attempt_at), k (key), q (request_headers), b (request_body); m and d one value when every line shares it, k, q, b left out when no line has one. (an earlier dogged wrote a JSON array of [line, line_hash, key, method, url, host, request_headers, request_body, next_attempt_at]; both are read)
);

-- With --cookies: each host's cookie jar (tough-cookie's JSON), written with the outcomes
-- whose responses set them, so a resumed run keeps the sessions.
CREATE TABLE IF NOT EXISTS cookies (
  host TEXT PRIMARY KEY,                 -- host:port, as in requests.host
  jar  TEXT NOT NULL
) WITHOUT ROWID;
`;

/**
 * Columns added since the first journals, with their definitions: a journal made by an earlier
 * dogged gets them when it is opened to write (`ALTER TABLE ... ADD COLUMN`). `unfinished` left
 * the schema version as it was (an earlier dogged ignores the column); `responses.header_fields`
 * came with version 2, `requests.header_fields` with version 3 (an earlier dogged would read no
 * headers from the rows that use them, so it refuses the journal).
 */
const ADDED_COLUMNS: readonly (readonly [table: string, column: string, definition: string])[] = [
  ['requests', 'unfinished', 'INTEGER NOT NULL DEFAULT 0'],
  ['responses', 'header_fields', 'TEXT'],
  ['requests', 'header_fields', 'TEXT'],
];

/** Each final response's headers as a JSON object, whichever way its row holds them. */
const RESPONSE_HEADERS_VIEW = `CREATE VIEW response_headers (line, headers) AS
  SELECT q.line, ${responseHeadersSql('q', 'r')}
  FROM requests AS q LEFT JOIN responses AS r ON r.line = q.line
  WHERE q.header_fields IS NOT NULL OR r.line IS NOT NULL`;

/** True when the journal's `table` has `column` (a journal of an earlier dogged may lack it). */
export function hasColumn(
  db: { prepare(sql: string): { all(): unknown[] } },
  table: string,
  column: string,
): boolean {
  const columns = db.prepare(`PRAGMA main.table_info(${table})`).all() as { name: string }[];
  return columns.some((c) => c.name === column);
}

/** Adds the columns an older journal lacks (see {@link ADDED_COLUMNS}) and the views; idempotent. */
export function migrateSchema(db: {
  prepare(sql: string): { all(): unknown[] };
  exec(sql: string): unknown;
}): void {
  for (const [table, column, definition] of ADDED_COLUMNS)
    if (!hasColumn(db, table, column))
      db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${definition}`);
  // The view of an earlier version read `responses` alone: replaced.
  const view = db
    .prepare("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = 'response_headers'")
    .all() as { sql: string }[];
  if (view[0]?.sql === RESPONSE_HEADERS_VIEW) return;
  if (view.length > 0) db.exec('DROP VIEW response_headers');
  db.exec(RESPONSE_HEADERS_VIEW);
}

/**
 * A line whose attempt was in flight when its runner died this many times in a row (killed,
 * crashed, out of memory: attempts started and never recorded) is failed with reason
 * `crashed-runner` instead of being fetched again: a line that kills its runner (a huge body, a
 * bug) cannot stop the batch from finishing. An attempt that gets an outcome, or is cut off by
 * a stop, does not count; `dogged retry-failed` gives the line another chance (its count starts
 * again). Lines only claimed (waiting in the runner's queue) when it died do not count either.
 * An attempt counts once its start is committed: with the runner's next writes (within 50 ms);
 * for the first attempt of a line read by this run, once it has run 50 ms, with the next writes
 * after that (within 100 ms); and at once, before its request goes out, for a line the previous
 * runner left in flight. So a line that kills its runner within 100 ms of its very first
 * attempt needs one more run.
 */
export const MAX_CRASHES = 3;

/** Counts of no line at all: every state at 0 (a fresh object, for a caller to add to). */
export function noLines(): StateCounts {
  return { pending: 0, in_flight: 0, done: 0, failed: 0, invalid: 0, retrying: 0 };
}

/** The states a line goes through. */
export type LineState = 'pending' | 'in_flight' | 'done' | 'failed' | 'invalid';

/** Why a line ended (the `reason` column). */
export type EndReason =
  | 'ok'
  | 'http-status'
  | 'retries-exhausted'
  | 'not-retriable'
  | 'retry-after-too-long'
  /** The host kept turning the line away (429, 503 + Retry-After) past `--give-up-after`. */
  | 'rate-limited'
  /** The response body was larger than `--max-body` (not retried). */
  | 'body-too-large'
  /** The line was in flight when its runner died `MAX_CRASHES` (3) times. */
  | 'crashed-runner'
  | 'invalid';

/** One retried attempt, as kept in the `history` column. */
export interface HistoryEntry {
  /** When the attempt ended, epoch ms. */
  readonly at: number;
  /** The status it got, when it got a response. */
  readonly status?: number;
  /** The error code, when it failed without a response. */
  readonly code?: string;
  /** Where it failed (connect, request, headers, body, none). */
  readonly phase?: string;
  /** The delay scheduled before the next attempt. */
  readonly delayMs: number;
  readonly source: 'retry-after' | 'backoff';
  /**
   * The host turned the attempt away (a 429, or a 503 with Retry-After): it did not spend the
   * retry count. Consecutive throttles share one entry; this is how many it stands for.
   */
  readonly throttled?: number;
  /**
   * The attempt failed while its host was down (an outage: 20 failures in a row): it did not
   * spend the retry count. Consecutive ones share one entry; this is how many it stands for.
   */
  readonly down?: number;
}
