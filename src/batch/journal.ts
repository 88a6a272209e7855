import { closeSync, existsSync, fchmodSync, openSync } from 'node:fs';
import { createRequire } from 'node:module';
import type Database from 'better-sqlite3';
import { truncate } from '../retry/describe.js';
import { JournalFormatError } from './errors.js';
import {
  HeaderFieldEncoder,
  type HeaderValueRow,
  type ResponseHeaderFields,
  responseHeadersSql,
} from './header-fields.js';
import type { InvalidLine } from './input-line.js';
import { explainAccess, inMemoryCopy, isAccessError } from './journal-access.js';
import {
  EARLIER_SCHEMA_VERSIONS,
  hasColumn,
  type LineState,
  MAX_CRASHES,
  migrateSchema,
  noLines,
  SCHEMA_SQL,
  SCHEMA_VERSION,
} from './journal-schema.js';
import type { LineOutcome } from './outcome.js';

/** A pending line handed to the runner, marked `in_flight` in the same transaction. */
export interface ClaimedLine {
  readonly line: number;
  readonly key: string | null;
  readonly method: string;
  readonly url: string;
  readonly host: string;
  /** JSON object text. */
  readonly requestHeaders: string | null;
  readonly requestBody: string | null;
  readonly attempts: number;
  /** JSON array text of {@link HistoryEntry}. */
  readonly history: string | null;
  readonly nextAttemptAt: number;
  /** When its first attempt started (epoch ms); null for a line never attempted. */
  readonly firstAttemptAt: number | null;
  /**
   * A line read by this run and not yet in `requests` (see {@link Journal.deferRows}): its row
   * is written with its first start or outcome, from this object.
   */
  readonly fresh: boolean;
  /** The line's fingerprint, for a fresh line's row; null for a line read from `requests`. */
  readonly hash: string | null;
  /** The first line of a fresh line's chunk (its `input_chunks` row); 0 for any other line. */
  readonly chunk: number;
}

/** What one attempt changed, written by {@link Journal.record}. */
export type LineUpdate =
  | LineOutcome
  /**
   * The line goes back to pending without an outcome: a stop cut its attempt off (`started`:
   * the attempt is not counted, nor as unfinished), or it was claimed and never started.
   */
  | {
      readonly kind: 'released';
      readonly line: number;
      readonly started: boolean;
      /** The line, when it is fresh (it may have no row: then nothing is written). */
      readonly fresh?: ClaimedLine | undefined;
    }
  /** The line's attempt started: it counts as unfinished until its outcome (no poison lines). */
  | {
      readonly kind: 'started';
      readonly line: number;
      /**
       * When the attempt started, for a line claimed without a write: the line, still `pending`
       * in the journal, is marked `in_flight` (its attempt times stamped) with its start.
       */
      readonly at?: number;
      /** The line, when it is fresh (no row yet: its start writes it). */
      readonly fresh?: ClaimedLine | undefined;
    };

/** A line to insert, from the input. */
export type NewLine =
  | {
      readonly kind: 'request';
      readonly line: number;
      readonly hash: string;
      readonly key: string | undefined;
      readonly method: string;
      readonly url: string;
      readonly host: string;
      readonly headers: Readonly<Record<string, string>>;
      readonly body: string | undefined;
      readonly dueAt: number;
    }
  | (InvalidLine & { readonly at: number });

/** Due lines are read in two queues: retries first, then lines never attempted. */
export type DueKind = 'retry' | 'fresh';

/** Lines per state. `retrying`: pending lines that already had an attempt (a scheduled retry). */
export interface StateCounts {
  pending: number;
  in_flight: number;
  done: number;
  failed: number;
  invalid: number;
  retrying: number;
}

export interface JournalOpenOptions {
  /**
   * Open for reading only (status, export): never creates, never writes.
   * @default false
   * @example Journal.open('run.sqlite', { readonly: true })
   */
  readonly?: boolean;
}

/**
 * Creates the journal file, empty, readable and writable by its owner only (0600, whatever the
 * umask): it holds the URLs, headers and bodies of the batch. SQLite gives its `-wal` and `-shm`
 * files the mode of the database file, so they are 0600 too. An existing file is left as it is
 * (its mode included); the file is opened exclusively (`wx`), so a link planted in its place is
 * not followed. Returns false when the file already existed.
 */
export function createJournalFile(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    // The reason worded once, where every failure to open a journal is explained.
    if (code === 'ENOENT')
      throw new Error(explainAccess(path, false, (error as Error).message), { cause: error });
    throw error;
  }
  try {
    fchmodSync(fd, 0o600);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * better-sqlite3 is a native addon: it is loaded on first use, so `import 'dogged'` stays cheap
 * for programs that never open a journal.
 */
let sqlite: typeof Database | undefined;
function openDatabase(path: string | Buffer, options: Database.Options): Database.Database {
  sqlite ??= createRequire(import.meta.url)('better-sqlite3') as typeof Database;
  return new sqlite(path, options);
}

const NONE: readonly number[] = Object.freeze([]);

/** The page cache of the journal's writing connection, KiB. */
const WRITER_CACHE_KIB = 4096;

/** Request lines inserted by one statement at most (9 values each). */
const MAX_INSERT_ROWS = 256;

type NewRequestLine = Extract<NewLine, { readonly kind: 'request' }>;

/** Appends the values of an `insert` of `l` to `values`, in the statement's order. */
function pushInsertValues(values: unknown[], l: NewRequestLine): unknown[] {
  values.push(
    l.line,
    l.hash,
    l.key ?? null,
    l.method,
    l.url,
    l.host,
    hasKeys(l.headers) ? JSON.stringify(l.headers) : null,
    l.body ?? null,
    l.dueAt,
  );
  return values;
}

function hasKeys(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

/** The columns of a {@link ClaimedLine}, in the order {@link claimedLine} reads them. */
const CLAIM_COLUMNS =
  'line, key, method, url, host, request_headers, request_body, attempts, history, next_attempt_at, first_attempt_at';

/** A row of {@link CLAIM_COLUMNS}, as better-sqlite3's raw mode gives it. */
type ClaimRow = [
  line: number,
  key: string | null,
  method: string,
  url: string,
  host: string,
  requestHeaders: string | null,
  requestBody: string | null,
  attempts: number,
  history: string | null,
  nextAttemptAt: number,
  firstAttemptAt: number | null,
];

/**
 * A claimed line from its raw row. Rows are read as arrays and made into objects of one shape
 * here: better-sqlite3 builds an object row by defining each column on it, which costs about
 * 0.8 µs a row more (11 columns).
 */
function claimedLine(row: ClaimRow): ClaimedLine {
  return {
    line: row[0],
    key: row[1],
    method: row[2],
    url: row[3],
    host: row[4],
    requestHeaders: row[5],
    requestBody: row[6],
    attempts: row[7],
    history: row[8],
    nextAttemptAt: row[9],
    firstAttemptAt: row[10],
    fresh: false,
    hash: null,
    chunk: 0,
  };
}

/**
 * An `input_chunks` row's lines, as {@link chunkOf} writes them: a column (an array, one value a
 * line, in line order) of each field of a pending row. A field that every line of the chunk
 * shares is one value instead (`m`, `d`); one that no line has is left out (`k`, `q`, `b`).
 * Columns, not an array a line: JSON of 200 lines took 0.22 µs a line to write and 0.17 to
 * read this way against 0.50 and 0.49 (a scratch benchmark, Node 20), and 30% fewer bytes.
 * Journals of an earlier dogged may hold chunks written as an array a line (see
 * {@link ENTRY_COLUMNS}), left by a run that died: the SQL that makes them rows reads both.
 */
interface ChunkColumns {
  /** Line numbers. */
  readonly l: number[];
  /** `line_hash`. */
  readonly h: string[];
  /** `url`. */
  readonly u: string[];
  /** `host`. */
  readonly o: string[];
  /** `method`. */
  readonly m: string | string[];
  /** `next_attempt_at`. */
  readonly d: number | number[];
  /** `key`. */
  readonly k?: (string | null)[] | undefined;
  /** `request_headers` (JSON). */
  readonly q?: (string | null)[] | undefined;
  /** `request_body`. */
  readonly b?: (string | null)[] | undefined;
}

/** `column` (a column of `n` lines, made of nulls when there is none yet) with `value` at `i`. */
function setAt(
  column: (string | null)[] | undefined,
  n: number,
  i: number,
  value: string,
): (string | null)[] {
  const c = column ?? new Array<string | null>(n).fill(null);
  c[i] = value;
  return c;
}

/** The JSON of an `input_chunks` row holding `lines[from..to)` (request lines): {@link ChunkColumns}. */
function chunkOf(lines: readonly NewLine[], from: number, to: number): string {
  const n = to - from;
  const l = new Array<number>(n);
  const h = new Array<string>(n);
  const u = new Array<string>(n);
  const o = new Array<string>(n);
  const m = new Array<string>(n);
  const d = new Array<number>(n);
  let k: (string | null)[] | undefined;
  let q: (string | null)[] | undefined;
  let b: (string | null)[] | undefined;
  let sameMethod = true;
  let sameDue = true;
  for (let i = 0; i < n; i++) {
    const line = lines[from + i] as NewRequestLine;
    l[i] = line.line;
    h[i] = line.hash;
    u[i] = line.url;
    o[i] = line.host;
    m[i] = line.method;
    d[i] = line.dueAt;
    if (line.method !== m[0]) sameMethod = false;
    if (line.dueAt !== d[0]) sameDue = false;
    if (line.key !== undefined) k = setAt(k, n, i, line.key);
    if (hasKeys(line.headers)) q = setAt(q, n, i, JSON.stringify(line.headers));
    if (line.body !== undefined) b = setAt(b, n, i, line.body);
  }
  const columns: ChunkColumns = {
    l,
    h,
    u,
    o,
    m: sameMethod ? (m[0] as string) : m,
    d: sameDue ? (d[0] as number) : d,
    k,
    q,
    b,
  };
  return JSON.stringify(columns);
}

/** The fresh lines of a chunk's columns (the chunk begins at line `chunk`). */
function freshLines(c: ChunkColumns, chunk: number): ClaimedLine[] {
  const n = c.l.length;
  const lines = new Array<ClaimedLine>(n);
  const { m, d, k, q, b } = c;
  for (let i = 0; i < n; i++)
    lines[i] = {
      line: c.l[i] as number,
      key: k ? (k[i] as string | null) : null,
      method: typeof m === 'string' ? m : (m[i] as string),
      url: c.u[i] as string,
      host: c.o[i] as string,
      requestHeaders: q ? (q[i] as string | null) : null,
      requestBody: b ? (b[i] as string | null) : null,
      attempts: 0,
      history: null,
      nextAttemptAt: typeof d === 'number' ? d : (d[i] as number),
      firstAttemptAt: null,
      fresh: true,
      hash: c.h[i] as string,
      chunk,
    };
  return lines;
}

/**
 * The columns of a pending row of `requests`, as SQL over `c` (an `input_chunks` row) and `e`
 * (a line of it, by `json_each`), by column name; a column not named is NULL. For a chunk of
 * columns ({@link ChunkColumns}: `e` iterates `$.l`, `e.key` is the line's index; a column
 * left out, or one value for all, reads as NULL at an index), and for one of an earlier dogged
 * ({@link ENTRY_COLUMNS}).
 */
/** The columns every pending row of a chunk's line has alike, as SQL. */
const PENDING_LITERALS: Readonly<Record<string, string>> = {
  state: "'pending'",
  attempts: '0',
  unfinished: '0',
};
const CHUNK_COLUMNS: Readonly<Record<string, string>> = {
  line: 'e.value',
  line_hash: "c.lines ->> ('$.h[' || e.key || ']')",
  key: "c.lines ->> ('$.k[' || e.key || ']')",
  method: "coalesce(c.lines ->> ('$.m[' || e.key || ']'), c.lines ->> '$.m')",
  url: "c.lines ->> ('$.u[' || e.key || ']')",
  host: "c.lines ->> ('$.o[' || e.key || ']')",
  request_headers: "c.lines ->> ('$.q[' || e.key || ']')",
  request_body: "c.lines ->> ('$.b[' || e.key || ']')",
  next_attempt_at: "coalesce(c.lines ->> ('$.d[' || e.key || ']'), c.lines ->> '$.d')",
  ...PENDING_LITERALS,
};
/**
 * {@link CHUNK_COLUMNS} for a chunk of an earlier dogged: a JSON array with an entry a line,
 * `[line, line_hash, key, method, url, host, request_headers, request_body, next_attempt_at]`
 * (`e` iterates the entries).
 */
const ENTRY_COLUMNS: Readonly<Record<string, string>> = {
  line: 'e.value ->> 0',
  line_hash: 'e.value ->> 1',
  key: 'e.value ->> 2',
  method: 'e.value ->> 3',
  url: 'e.value ->> 4',
  host: 'e.value ->> 5',
  request_headers: 'e.value ->> 6',
  request_body: 'e.value ->> 7',
  next_attempt_at: 'e.value ->> 8',
  ...PENDING_LITERALS,
};

/** The chunks' lines that have no row in `requests`, as rows of `columns` (SQL). */
function chunkRowsSql(columns: readonly string[], schema: string): string {
  const select = (of: Readonly<Record<string, string>>, each: string, kind: string): string =>
    `SELECT ${columns.map((c) => of[c] ?? 'NULL').join(', ')}
    FROM ${schema}input_chunks AS c, ${each} AS e
    WHERE json_type(c.lines) = '${kind}'
      AND NOT EXISTS (SELECT 1 FROM ${schema}requests AS r WHERE r.line = ${of.line})`;
  return `${select(CHUNK_COLUMNS, "json_each(c.lines, '$.l')", 'object')}
    UNION ALL ${select(ENTRY_COLUMNS, 'json_each(c.lines)', 'array')}`;
}

/** The columns of a fresh line's row, written with its first start or outcome. */
const ROW_COLUMNS =
  'line, line_hash, key, method, url, host, request_headers, request_body, next_attempt_at, first_attempt_at, last_attempt_at';

/**
 * The columns of an answered line's row (see {@link isOkOutcome}) that take a value, in
 * {@link setOkRow}'s order; its state, attempts, reason and next attempt are the statement's
 * literals ({@link OK_ROW}), and its other columns NULL: binding a value costs about as much as
 * SQLite's own work on it (with 12 values a row, a scratch benchmark of 20,000 rows in 32-row
 * statements wrote 1.59 µs a row, against 1.82 with the 16 of a plain row).
 */
const OK_COLUMNS =
  'line, line_hash, method, url, host, first_attempt_at, last_attempt_at, status, body_size, finished_at, ttfb_ms, duration_ms, header_fields, state, attempts, reason, next_attempt_at';
/** One row of {@link OK_COLUMNS}: 13 values, then the literals of a line done at once. */
const OK_ROW = `(${'?, '.repeat(13)}'done', 1, 'ok', 0)`;
/**
 * The columns of a plain outcome's row (see {@link isPlainOutcome}), in {@link setPlainRow}'s
 * order: an answered line's, its literals as values; the row's other columns are NULL.
 */
const PLAIN_COLUMNS = OK_COLUMNS;
/**
 * The columns of a fresh line's row written with its outcome, in {@link setOutcomeRow}'s order:
 * a plain row's, then the ones NULL in it.
 */
const OUTCOME_COLUMNS = `${PLAIN_COLUMNS}, key, request_headers, request_body, history, error_code, error_message, body_path`;

/** The first id free in `header_values`. */
function nextHeaderValueId(db: Database.Database): number {
  return db.prepare('SELECT coalesce(max(id), 0) + 1 FROM header_values').pluck().get() as number;
}

/** A row of `values` values: `(?, ?, ?)`. */
function rowOf(values: number): string {
  return `(${Array.from({ length: values }, () => '?').join(', ')})`;
}
/** Rows in one multi-row INSERT of outcomes, largest first (fewest statement sizes). */
const ROW_BATCHES: readonly number[] = [32, 8];

/**
 * A multi-row INSERT of one table and set of columns: its statement and its values array for
 * each number of rows, prepared and built on first use, then reused.
 */
class RowInsert<T> {
  readonly #db: Database.Database;
  readonly #head: string;
  readonly #row: string;
  /** Values of one row. */
  readonly #width: number;
  /** Writes the values of `item`'s row into `values`, from index `i`. */
  readonly #set: (values: unknown[], i: number, item: T) => void;
  readonly #statements = new Map<number, Database.Statement>();
  readonly #values = new Map<number, unknown[]>();

  /**
   * `head`: the statement up to its VALUES (`INSERT INTO t (a, b, c)`); `row`: one row's tuple,
   * a `?` for each value `set` writes and literals for the rest (`(?, ?, 'done')`).
   */
  constructor(
    db: Database.Database,
    head: string,
    row: string,
    set: (values: unknown[], i: number, item: T) => void,
  ) {
    this.#db = db;
    this.#head = head;
    this.#row = row;
    this.#width = row.split('?').length - 1;
    this.#set = set;
  }

  /**
   * Writes `items` in statements of 32, then 8, then 1 row (a statement for each row count would
   * cost its preparing each time). The values go to better-sqlite3 as arguments, not as one
   * array: it reads an array's elements one by one through V8's API, which cost as much as
   * SQLite's own work on the row (a third of the INSERT, measured on Node 20). The values are
   * emptied after each statement: a body is not held past its write.
   */
  run(items: readonly T[]): void {
    for (let i = 0; i < items.length; ) {
      const rows = batchSize(items.length - i);
      let values = this.#values.get(rows);
      let statement = this.#statements.get(rows);
      if (!values || !statement) {
        values = new Array<unknown>(rows * this.#width).fill(null);
        statement = this.#db.prepare(
          `${this.#head} VALUES ${Array.from({ length: rows }, () => this.#row).join(', ')}`,
        );
        this.#values.set(rows, values);
        this.#statements.set(rows, statement);
      }
      for (let k = 0; k < rows; k++, i++) this.#set(values, k * this.#width, items[i] as T);
      try {
        statement.run(...values);
      } finally {
        values.fill(null);
      }
    }
  }
}

/**
 * True when the fresh line's row at outcome `o` has NULL in every column of
 * {@link OUTCOME_COLUMNS} that {@link PLAIN_COLUMNS} leaves out: a plain line (no key, headers
 * or body of its own) answered at its first attempt with no error, its body not in a file.
 */
function isPlainOutcome(o: LineOutcome): boolean {
  const line = o.fresh as ClaimedLine;
  return (
    line.key === null &&
    line.requestHeaders === null &&
    line.requestBody === null &&
    o.history.length === 0 &&
    o.errorCode === null &&
    o.errorMessage === null &&
    o.bodyPath === null
  );
}

/**
 * True when the fresh line's row at outcome `o` holds {@link OK_ROW}'s literals: a plain line
 * (see {@link isPlainOutcome}) done at its first attempt with reason `ok`.
 */
function isOkOutcome(o: LineOutcome): boolean {
  return (
    o.state === 'done' &&
    o.attempts === 1 &&
    o.reason === 'ok' &&
    o.nextAttemptAt === 0 &&
    isPlainOutcome(o)
  );
}

/** When a fresh line's attempt started, for its row (epoch ms). */
function startOf(o: LineOutcome): number {
  return o.startedAt ?? o.finishedAt ?? Date.now();
}

/**
 * The `header_fields` of an outcome's row: its final response's headers as `fields` encodes them
 * (see {@link HeaderFieldEncoder}), encoded already ({@link Journal.encodeHeaders}) or now, or
 * null.
 */
function headerFieldsOf(fields: HeaderFieldEncoder, o: LineOutcome): string | null {
  if (o.kind !== 'final') return null;
  if (o.headerFields != null) return o.headerFields;
  return o.responseHeaders !== null ? fields.encode(o.responseHeaders) : null;
}

/**
 * Writes the values of an answered line's row ({@link OK_COLUMNS}) into `values`, from `i`; its
 * headers encoded by `fields`.
 */
function setOkRow(fields: HeaderFieldEncoder, values: unknown[], i: number, o: LineOutcome): void {
  const line = o.fresh as ClaimedLine;
  const startedAt = startOf(o);
  values[i] = line.line;
  values[i + 1] = line.hash;
  values[i + 2] = line.method;
  values[i + 3] = line.url;
  values[i + 4] = line.host;
  values[i + 5] = startedAt;
  values[i + 6] = startedAt;
  values[i + 7] = o.status;
  values[i + 8] = o.bodySize;
  values[i + 9] = o.finishedAt;
  values[i + 10] = o.ttfbMs;
  values[i + 11] = o.durationMs;
  values[i + 12] = headerFieldsOf(fields, o);
}

/** Writes the values of a plain outcome's row ({@link PLAIN_COLUMNS}) into `values`, from `i`. */
function setPlainRow(
  fields: HeaderFieldEncoder,
  values: unknown[],
  i: number,
  o: LineOutcome,
): void {
  setOkRow(fields, values, i, o);
  values[i + 13] = o.state;
  values[i + 14] = o.attempts;
  values[i + 15] = o.reason;
  values[i + 16] = o.nextAttemptAt;
}

/** Writes the values of a fresh line's row at its outcome `o` into `values`, from index `i`. */
function setOutcomeRow(
  fields: HeaderFieldEncoder,
  values: unknown[],
  i: number,
  o: LineOutcome,
): void {
  setPlainRow(fields, values, i, o);
  const line = o.fresh as ClaimedLine;
  values[i + 17] = line.key;
  values[i + 18] = line.requestHeaders;
  values[i + 19] = line.requestBody;
  values[i + 20] = o.history.length ? JSON.stringify(o.history) : null;
  values[i + 21] = o.errorCode;
  values[i + 22] = o.errorMessage;
  values[i + 23] = o.bodyPath;
}

/** Writes the values of an outcome's `responses` row (its body) into `values`, from index `i`. */
function setResponseRow(values: unknown[], i: number, o: LineOutcome): void {
  values[i] = o.line;
  values[i + 1] = o.body;
}

/** The rows of the next multi-row INSERT when `left` rows are left to write. */
function batchSize(left: number): number {
  for (const n of ROW_BATCHES) if (left >= n) return n;
  return 1;
}

/** True when the outcome has a body to keep in `responses` (`--bodies db`). */
function hasBody(o: LineOutcome): boolean {
  return o.kind === 'final' && o.body !== null;
}

function prepareStatements(db: Database.Database) {
  return {
    insert: db.prepare(
      `INSERT INTO requests (line, line_hash, key, method, url, host, request_headers, request_body, state, next_attempt_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?) ON CONFLICT (line) DO NOTHING`,
    ),
    insertInvalid: db.prepare(
      `INSERT INTO requests (line, line_hash, key, raw, state, error_code, error_message, reason, finished_at)
       VALUES (?, ?, ?, ?, 'invalid', 'ERR_DOGGED_INVALID_LINE', ?, 'invalid', ?) ON CONFLICT (line) DO NOTHING`,
    ),
    hashOf: db.prepare('SELECT line_hash FROM requests WHERE line = ?').pluck(),
    markInFlight: db.prepare(
      `UPDATE requests SET state = 'in_flight', last_attempt_at = ?, first_attempt_at = coalesce(first_attempt_at, ?)
       WHERE line = ? AND state = 'pending'`,
    ),
    update: db.prepare(
      `UPDATE requests SET state = ?, attempts = ?, next_attempt_at = ?, history = ?, status = ?, error_code = ?,
         error_message = ?, reason = ?, body_size = ?, body_path = ?, finished_at = ?,
         ttfb_ms = ?, duration_ms = ?, header_fields = ?, unfinished = 0
       WHERE line = ? AND state = 'in_flight'`,
    ),
    release: db.prepare(
      "UPDATE requests SET state = 'pending' WHERE line = ? AND state = 'in_flight'",
    ),
    releaseStarted: db.prepare(
      "UPDATE requests SET state = 'pending', unfinished = max(unfinished - 1, 0) WHERE line = ? AND state = 'in_flight'",
    ),
    started: db.prepare(
      "UPDATE requests SET unfinished = unfinished + 1 WHERE line = ? AND state = 'in_flight'",
    ),
    startedUnclaimed: db.prepare(
      `UPDATE requests SET state = 'in_flight', last_attempt_at = ?, first_attempt_at = coalesce(first_attempt_at, ?),
         unfinished = unfinished + 1
       WHERE line = ? AND state IN ('pending', 'in_flight')`,
    ),
    updateUnclaimed: db.prepare(
      `UPDATE requests SET state = ?, attempts = ?, next_attempt_at = ?, history = ?, status = ?, error_code = ?,
         error_message = ?, reason = ?, body_size = ?, body_path = ?, finished_at = ?,
         ttfb_ms = ?, duration_ms = ?, header_fields = ?, unfinished = 0, last_attempt_at = ?,
         first_attempt_at = coalesce(first_attempt_at, ?)
       WHERE line = ? AND state IN ('pending', 'in_flight')`,
    ),
    putResponse: db.prepare('INSERT OR REPLACE INTO responses (line, body) VALUES (?, ?)'),
    putHeaderValue: db.prepare('INSERT INTO header_values (id, name, value) VALUES (?, ?, ?)'),
    nextDue: db
      .prepare("SELECT min(next_attempt_at) FROM requests WHERE state = 'pending'")
      .pluck(),
    insertChunk: db.prepare('INSERT INTO input_chunks (first_line, lines) VALUES (?, ?)'),
    deleteChunk: db.prepare('DELETE FROM input_chunks WHERE first_line = ?'),
    nextChunk: db
      .prepare(
        'SELECT first_line, lines FROM input_chunks WHERE first_line > ? ORDER BY first_line LIMIT 1',
      )
      .raw(true),
    startFresh: db.prepare(
      `INSERT INTO requests (${ROW_COLUMNS}, state, unfinished)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'in_flight', 1)`,
    ),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/**
 * The SQLite journal of a batch (better-sqlite3, WAL). Every method is synchronous and most run
 * in one transaction; the runner batches its writes so a run costs a few transactions per
 * event-loop turn, not one per URL.
 */
export class Journal {
  readonly path: string;
  readonly db: Database.Database;
  readonly readonly: boolean;
  readonly #statements: Statements | undefined;
  /** Due-lines statements by kind, `after` or not, and LIMIT. */
  readonly #due = new Map<string, Database.Statement>();
  /** better-sqlite3's transaction wrapper, built once (it is a few closures per call otherwise). */
  readonly #transaction: (fn: () => unknown) => unknown;
  /** Multi-row INSERTs of new lines, by row count (see {@link insertLines}). */
  readonly #insertMany = new Map<number, Database.Statement>();
  /** Multi-line claims, by the (power of two) number of lines (see {@link claim}). */
  readonly #claimMany = new Map<number, Database.Statement>();
  #nextDueExcept: Database.Statement | undefined;
  /** The values of {@link record}'s two UPDATEs (written in place for each outcome). */
  readonly #updateValues = new Array<unknown>(15).fill(null);
  readonly #updateUnclaimedValues = new Array<unknown>(17).fill(null);
  /** Prepared on first use (only runs with `--cookies` touch the cookies table). */
  #cookieRead: Database.Statement | undefined;
  #cookieWrite: Database.Statement | undefined;
  /** New request lines go to `input_chunks` (see {@link deferRows}). */
  #deferring = false;
  /** Lines up to this one are checked against their rows when read again (a resume). */
  #rowsMax = 0;
  /**
   * False once `requests` was seen to hold no pending row, until a write may add one (a retry,
   * a release, lines inserted as rows). While a run holds the journal ({@link deferRows} on:
   * every write goes through these methods), {@link dueLines} then has nothing to read and runs
   * no query: a run over new input keeps its lines in chunks until their outcome, and its
   * refills (two due-lines queries each, about every 50 lines) read nothing from `requests`.
   */
  #pendingRows = true;
  /** The first line of the last chunk written, and of the last one read back. */
  #chunkWritten = 0;
  #chunkRead = 0;
  /** Fresh lines read back from `input_chunks` and not handed out yet, from `#freshHead` on. */
  #fresh: ClaimedLine[] = [];
  #freshHead = 0;
  /** Fresh lines whose start was written (they have a row): their next write updates it. */
  readonly #rowed = new Set<number>();
  /** The lines without a row of each chunk read back: a chunk goes when all have one. */
  readonly #chunkLeft = new Map<number, number>();
  /** The outcomes of {@link recordAll} that write a fresh line's row (reused). */
  readonly #freshOutcomes: LineOutcome[] = [];
  /** The outcomes of {@link #insertOutcomes} by the INSERT that writes them (reused). */
  readonly #okOutcomes: LineOutcome[] = [];
  readonly #plainOutcomes: LineOutcome[] = [];
  readonly #otherOutcomes: LineOutcome[] = [];
  readonly #responseOutcomes: LineOutcome[] = [];
  /** The multi-row INSERTs of fresh lines' rows (answered, plain, or other) and responses. */
  readonly #okRows: RowInsert<LineOutcome>;
  readonly #plainRows: RowInsert<LineOutcome>;
  readonly #outcomeRows: RowInsert<LineOutcome>;
  readonly #responseRows: RowInsert<LineOutcome>;
  /** The response headers' encoder: the header fields that repeat get an id (`header_values`). */
  readonly #fields: HeaderFieldEncoder;
  /**
   * The header values written in the transaction under way: put back to write again if it rolls
   * back (see {@link transaction}).
   */
  readonly #writtenFields: HeaderValueRow[] = [];

  private constructor(path: string, db: Database.Database, readonly: boolean) {
    this.path = path;
    this.db = db;
    this.readonly = readonly;
    this.#statements = readonly ? undefined : prepareStatements(db);
    this.#transaction = db.transaction((fn: () => unknown) => fn());
    const fields = new HeaderFieldEncoder(readonly ? 1 : nextHeaderValueId(db));
    this.#fields = fields;
    this.#okRows = new RowInsert(db, `INSERT INTO requests (${OK_COLUMNS})`, OK_ROW, (v, i, o) =>
      setOkRow(fields, v, i, o),
    );
    this.#plainRows = new RowInsert(
      db,
      `INSERT INTO requests (${PLAIN_COLUMNS})`,
      rowOf(17),
      (v, i, o) => setPlainRow(fields, v, i, o),
    );
    this.#outcomeRows = new RowInsert(
      db,
      `INSERT INTO requests (${OUTCOME_COLUMNS})`,
      rowOf(24),
      (v, i, o) => setOutcomeRow(fields, v, i, o),
    );
    this.#responseRows = new RowInsert(
      db,
      'INSERT OR REPLACE INTO responses (line, body)',
      rowOf(2),
      setResponseRow,
    );
  }

  /**
   * Opens (and, unless read-only, creates) the journal at `path`. Read-only, it never writes:
   * no pragma that writes, no schema change; a journal whose directory is not writable is read
   * from an in-memory copy when its file holds all of it. A file it may not open gives an error
   * naming the path and the reason (permission denied, directory not writable).
   */
  static open(path: string, options: JournalOpenOptions = {}): Journal {
    const readonly = options.readonly ?? false;
    if (readonly && !existsSync(path))
      throw new JournalFormatError(`${path} does not exist (no batch has run with --db ${path})`);
    const cannotOpen = (error: unknown): JournalFormatError =>
      new JournalFormatError(
        `cannot open ${path}: ${explainAccess(path, readonly, (error as Error).message)}`,
        { cause: error },
      );
    let db: Database.Database;
    try {
      // An in-memory or temporary database (':memory:', '') has no file to create. (A path
      // beginning with `file:` is a file name like any other: better-sqlite3 reads no URI.)
      if (!readonly && path !== '' && path !== ':memory:') createJournalFile(path);
      db = openDatabase(path, { readonly, fileMustExist: readonly });
    } catch (error) {
      throw cannotOpen(error);
    }
    try {
      return Journal.#prepare(db, path, readonly);
    } catch (error) {
      db.close();
      if (error instanceof JournalFormatError) throw error;
      if (isAccessError(error)) {
        const copy = readonly ? inMemoryCopy(path) : undefined;
        if (!copy) throw cannotOpen(error);
        const memory = openDatabase(copy, { readonly: true });
        try {
          return Journal.#prepare(memory, path, true);
        } catch (inner) {
          memory.close();
          if (inner instanceof JournalFormatError) throw inner;
          throw new JournalFormatError(
            `${path} is not a dogged journal: ${(inner as Error).message}`,
            {
              cause: inner,
            },
          );
        }
      }
      throw new JournalFormatError(`${path} is not a dogged journal: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /** Settings, schema and version check of a just-opened database. */
  static #prepare(db: Database.Database, path: string, readonly: boolean): Journal {
    db.pragma('busy_timeout = 5000');
    if (!readonly) {
      db.pragma('journal_mode = WAL');
      // WAL + NORMAL: a committed transaction survives a crash or kill -9 of the process
      // (only a power loss may drop the last ones), without an fsync per commit.
      db.pragma('synchronous = NORMAL');
      // A 4 MiB page cache, not better-sqlite3's 16 MiB: the runner's pages are the last ones
      // written and the next ones read, and SQLite's sorter takes as much again for a GROUP BY
      // over a large journal (the summary at a run's end); 1,000,000 lines peaked at 166–174
      // MiB RSS with it, 189 MiB without.
      db.pragma(`cache_size = -${WRITER_CACHE_KIB}`);
      db.exec(SCHEMA_SQL);
      // One transaction: a reader never sees a view replaced halfway, or a version without its
      // columns.
      db.transaction(() => {
        const version = Journal.#checkVersion(db, path, true);
        migrateSchema(db);
        if (version !== SCHEMA_VERSION)
          db.prepare("UPDATE meta SET value = ? WHERE name = 'schema_version'").run(
            String(SCHEMA_VERSION),
          );
      })();
    } else {
      Journal.#checkVersion(db, path, false);
    }
    const journal = new Journal(path, db, readonly);
    if (readonly) journal.#showChunks();
    return journal;
  }

  /**
   * A read-only journal whose run is under way (or died) has lines in `input_chunks`: a
   * temporary view named `requests`, which the readers' queries find before the table, shows
   * them as the pending rows they will become.
   */
  #showChunks(): void {
    // A journal of an earlier dogged has no such table.
    const hasTable = this.db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'input_chunks'")
      .get();
    if (!hasTable || !this.db.prepare('SELECT 1 FROM input_chunks LIMIT 1').get()) return;
    const columns = (
      this.db.prepare('PRAGMA main.table_info(requests)').all() as { name: string }[]
    ).map((c) => c.name);
    this.db.exec(
      `CREATE TEMP VIEW requests AS SELECT * FROM main.requests UNION ALL ${chunkRowsSql(columns, 'main.')}`,
    );
  }

  /**
   * The lines of `input_chunks` without a row become pending rows of `requests`: the lines a run
   * read and never attempted, when it died. Call with the runner lock held (a running runner's
   * lines are its own), before reading the journal's lines.
   */
  writeDeferredRows(): void {
    this.#s; // read-only journals refuse
    this.#materialize();
  }

  #materialize(): void {
    this.transaction(() => {
      const columns = [
        'line',
        'line_hash',
        'key',
        'method',
        'url',
        'host',
        'request_headers',
        'request_body',
        'state',
        'next_attempt_at',
      ];
      this.db.exec(
        `INSERT INTO requests (${columns.join(', ')}) ${chunkRowsSql(columns, '')}; DELETE FROM input_chunks`,
      );
    });
    this.#pendingRows = true;
    this.#fresh = [];
    this.#freshHead = 0;
    this.#chunkRead = 0;
    this.#chunkWritten = 0;
    this.#rowed.clear();
    this.#chunkLeft.clear();
  }

  /**
   * With `on`, new request lines are written a chunk to a row (`input_chunks`), not a row each,
   * and handed to the scheduler by {@link takeFresh}; each gets its row in `requests` with its
   * first start or outcome (written once, where a row at its reading would be written twice).
   * Turning it off writes the lines left in the chunks as pending rows (the run's end).
   */
  deferRows(on: boolean): void {
    this.#s; // read-only journals refuse
    if (on) {
      this.#materialize();
      this.#rowsMax = this.maxLine();
      this.#pendingRows = this.#s.nextDue.get() !== null;
    } else if (this.#deferring) this.#materialize();
    this.#deferring = on;
  }

  /** True when fresh lines are left to hand out (see {@link takeFresh}). */
  get hasFresh(): boolean {
    return this.#freshHead < this.#fresh.length || this.#chunkRead < this.#chunkWritten;
  }

  /**
   * Hands out up to `max` fresh lines, in line order, looking at `scan` lines at most: a line
   * `accept` turns down stays at the front, for a later call.
   */
  takeFresh(max: number, scan: number, accept: (line: ClaimedLine) => boolean): ClaimedLine[] {
    const taken: ClaimedLine[] = [];
    const refused: ClaimedLine[] = [];
    let seen = 0;
    while (taken.length < max && seen < scan) {
      if (this.#freshHead >= this.#fresh.length && !this.#readChunk()) break;
      const line = this.#fresh[this.#freshHead++] as ClaimedLine;
      seen++;
      if (accept(line)) taken.push(line);
      else refused.push(line);
    }
    if (refused.length > 0) {
      this.#fresh = refused.concat(this.#fresh.slice(this.#freshHead));
      this.#freshHead = 0;
    }
    return taken;
  }

  /** Reads the next chunk's lines into `#fresh`; false when none is left. */
  #readChunk(): boolean {
    if (this.#chunkRead >= this.#chunkWritten) return false;
    const row = this.#s.nextChunk.get(this.#chunkRead) as [number, string] | undefined;
    if (!row) {
      this.#chunkRead = this.#chunkWritten;
      return false;
    }
    const chunk = row[0];
    this.#chunkRead = chunk;
    // A chunk this journal wrote: earlier dogged's chunks were made rows when the run began.
    const lines = freshLines(JSON.parse(row[1]) as ChunkColumns, chunk);
    this.#chunkLeft.set(chunk, lines.length);
    this.#fresh = lines;
    this.#freshHead = 0;
    return true;
  }

  /**
   * Checks the journal's schema version (a new one gets {@link SCHEMA_VERSION} when
   * `initialise`), and returns it: the current one, or an earlier one this dogged reads (see
   * `EARLIER_SCHEMA_VERSIONS`).
   */
  static #checkVersion(db: Database.Database, path: string, initialise: boolean): number {
    const hasMeta = db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")
      .get();
    if (!hasMeta) throw new JournalFormatError(`${path} is not a dogged journal (no meta table)`);
    const row = db.prepare("SELECT value FROM meta WHERE name = 'schema_version'").get() as
      | { value: string }
      | undefined;
    if (!row) {
      if (!initialise)
        throw new JournalFormatError(`${path} is not a dogged journal (no schema version)`);
      const insert = db.prepare('INSERT INTO meta (name, value) VALUES (?, ?)');
      insert.run('schema_version', String(SCHEMA_VERSION));
      insert.run('created_at', new Date().toISOString());
      return SCHEMA_VERSION;
    }
    const version = Number(row.value);
    if (version !== SCHEMA_VERSION && !EARLIER_SCHEMA_VERSIONS.includes(version)) {
      throw new JournalFormatError(
        `${path} is a journal of schema version ${row.value}; this dogged reads versions ${[...EARLIER_SCHEMA_VERSIONS, SCHEMA_VERSION].join(', ')}`,
      );
    }
    return version;
  }

  /**
   * The due-lines query for one kind and LIMIT. SQLite re-plans a statement whose LIMIT is a
   * bound parameter on every run (about 10 µs), so each limit gets its own statement instead.
   */
  #dueStatement(kind: DueKind, limit: number, after: boolean): Database.Statement {
    // Stryker disable next-line StringLiteral: any two different words for `after` make different keys
    const key = `${kind}:${after ? 'after' : ''}:${limit}`;
    let statement = this.#due.get(key);
    // Stryker disable next-line ConditionalExpression: preparing the statement again on every call gives the same rows (the cache saves time only)
    if (!statement) {
      // Retries read their own partial index; fresh lines the queue's, skipping due retries.
      const which = kind === 'retry' ? 'AND attempts > 0' : 'AND attempts = 0';
      statement = this.db.prepare(
        // Stryker disable next-line ConditionalExpression,StringLiteral: the retry query read through the index of all pending lines (INDEXED BY requests_due) returns the same rows, only slower
        `SELECT ${CLAIM_COLUMNS} FROM requests INDEXED BY ${kind === 'retry' ? 'requests_retry_due' : 'requests_due'}
         WHERE state = 'pending' ${which} AND next_attempt_at <= ?
         ${after ? 'AND (next_attempt_at, line) > (?, ?)' : ''} ORDER BY next_attempt_at, line LIMIT ${limit}`,
      );
      statement.raw(true);
      this.#due.set(key, statement);
    }
    return statement;
  }

  /**
   * SQL of a line's final response headers, a JSON object's text, from its `requests` row
   * aliased `line` and its `responses` row (by a LEFT JOIN) aliased `response`: the
   * `response_headers` view's expression, for the columns this journal has (a journal of an
   * earlier schema version opened read-only keeps its own).
   */
  responseHeadersSql(line: string, response: string): string {
    return responseHeadersSql(line, response, {
      requests: hasColumn(this.db, 'requests', 'header_fields'),
      responses: hasColumn(this.db, 'responses', 'header_fields'),
    });
  }

  get #s(): Statements {
    if (!this.#statements) throw new Error(`${this.path} was opened read-only`);
    return this.#statements;
  }

  /**
   * The `header_fields` text of a final response's headers, for an outcome given to
   * {@link record} or {@link recordAll} with the next writes (`LineOutcome.headerFields`): the
   * header values it gives ids to are written with them (or, should their transaction roll
   * back, with the next ones).
   */
  encodeHeaders(headers: ResponseHeaderFields): string {
    return this.#fields.encode(headers);
  }

  /** `fn` in one transaction (nested calls join it). */
  transaction<T>(fn: () => T): T {
    const written = this.#writtenFields;
    const from = written.length;
    try {
      const result = this.#transaction(fn) as T;
      // Committed (a nested call: its savepoint released, the transaction still under way).
      if (!this.db.inTransaction) written.length = 0;
      return result;
    } catch (error) {
      // Rolled back (a nested call: to its savepoint): the header values written in it are not
      // in the journal. Outcomes that name them may still be written (encoded before it, see
      // `encodeHeaders`): they are written again, with the next outcomes.
      this.#fields.restore(written.splice(from));
      throw error;
    }
  }

  getMeta(name: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM meta WHERE name = ?').get(name) as
      | { value: string }
      | undefined;
    return row?.value;
  }

  setMeta(name: string, value: string): void {
    this.db
      .prepare(
        'INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value',
      )
      .run(name, value);
  }

  /** The saved cookie jar of `host` (`--cookies`), as JSON; undefined when it has none. */
  cookieJar(host: string): string | undefined {
    this.#cookieRead ??= this.db.prepare('SELECT jar FROM cookies WHERE host = ?').pluck();
    return this.#cookieRead.get(host) as string | undefined;
  }

  /** Saves cookie jars (`[host, JSON]`), replacing the hosts' earlier ones. */
  saveCookieJars(jars: readonly (readonly [host: string, json: string])[]): void {
    if (jars.length === 0) return;
    this.#cookieWrite ??= this.db.prepare(
      'INSERT INTO cookies (host, jar) VALUES (?, ?) ON CONFLICT (host) DO UPDATE SET jar = excluded.jar',
    );
    const write = this.#cookieWrite;
    this.transaction(() => {
      for (const [host, json] of jars) write.run(host, json);
    });
  }

  /** The highest line number recorded (0 for an empty journal). */
  maxLine(): number {
    const rows =
      (this.db.prepare('SELECT coalesce(max(line), 0) FROM requests').pluck().get() as number) ?? 0;
    if (this.#chunkWritten === 0) return rows;
    // The last chunk, unless every line of it has its row already (it is gone then).
    const chunk = this.#s.nextChunk.get(this.#chunkWritten - 1) as [number, string] | undefined;
    if (!chunk) return rows;
    const lines = (JSON.parse(chunk[1]) as ChunkColumns).l;
    return Math.max(rows, lines[lines.length - 1] as number);
  }

  /**
   * Inserts new lines; a line already recorded is left as it is, after checking it is the same
   * line (its fingerprint). Returns the number inserted per kind and the first changed line.
   */
  insertLines(lines: readonly NewLine[]): {
    pending: number;
    invalid: number;
    changedLine: number | undefined;
  } {
    const s = this.#s;
    let pending = 0;
    let invalid = 0;
    let changedLine: number | undefined;
    this.transaction(() => {
      let i = 0;
      while (i < lines.length) {
        let end = i;
        while (end < lines.length && end - i < MAX_INSERT_ROWS && lines[end]?.kind === 'request')
          end++;
        if (this.#deferring && end > i && (lines[i] as NewLine).line > this.#rowsMax) {
          // Lines never read before: a chunk row for all of them.
          const first = (lines[i] as NewLine).line;
          s.insertChunk.run(first, chunkOf(lines, i, end));
          this.#chunkWritten = first;
          pending += end - i;
          i = end;
          continue;
        }
        if (end > i) this.#pendingRows = true;
        if (end - i > 1) {
          // A run of request lines: one statement for all of them (a statement per line costs
          // about a microsecond more per line). Fewer rows inserted than given: some were
          // recorded already, and each of those must be the same line as before.
          const inserted = this.#insertRequests(lines, i, end);
          pending += inserted;
          if (inserted < end - i)
            for (let k = i; k < end && changedLine === undefined; k++) {
              const l = lines[k] as NewLine;
              if (s.hashOf.get(l.line) !== l.hash) changedLine = l.line;
            }
          i = end;
          continue;
        }
        const l = lines[i++] as NewLine;
        const info =
          l.kind === 'request'
            ? s.insert.run(pushInsertValues([], l))
            : s.insertInvalid.run(
                l.line,
                l.hash,
                l.key ?? null,
                truncate(l.raw, 2000),
                l.reason,
                l.at,
              );
        if (info.changes === 1) {
          if (l.kind === 'request') pending++;
          else invalid++;
        } else if (s.hashOf.get(l.line) !== l.hash) {
          changedLine ??= l.line;
        }
      }
    });
    return { pending, invalid, changedLine };
  }

  /** Inserts the request lines `lines[from..to)` in one statement; returns how many were new. */
  #insertRequests(lines: readonly NewLine[], from: number, to: number): number {
    const rows = to - from;
    let statement = this.#insertMany.get(rows);
    if (!statement) {
      statement = this.db.prepare(
        `INSERT INTO requests (line, line_hash, key, method, url, host, request_headers, request_body, state, next_attempt_at)
         VALUES ${Array.from({ length: rows }, () => "(?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)").join(', ')}
         ON CONFLICT (line) DO NOTHING`,
      );
      this.#insertMany.set(rows, statement);
    }
    const values: unknown[] = [];
    for (let k = from; k < to; k++) pushInsertValues(values, lines[k] as NewRequestLine);
    return statement.run(...values).changes;
  }

  /**
   * Lines left `in_flight` by a runner that died go back to `pending`; a line whose attempts
   * were cut by {@link MAX_CRASHES} dead runners in a row is failed with reason
   * `crashed-runner` instead (no poison line). Returns how many went back to pending.
   */
  releaseInFlight(now: number = Date.now()): number {
    this.#pendingRows = true;
    return this.transaction(() => {
      this.db
        .prepare(
          `UPDATE requests SET state = 'failed', reason = 'crashed-runner', status = NULL,
             error_code = 'ERR_DOGGED_CRASHED_RUNNER', error_message = ?, finished_at = ?
           WHERE state = 'in_flight' AND unfinished >= ?`,
        )
        .run(
          `the runner died ${MAX_CRASHES} times while this line was in flight (killed, crashed or out of memory); it is not fetched again (dogged retry-failed gives it another chance)`,
          now,
          MAX_CRASHES,
        );
      return this.db
        .prepare("UPDATE requests SET state = 'pending' WHERE state = 'in_flight'")
        .run().changes;
    });
  }

  /**
   * Up to `limit` due pending lines of one kind (retries: lines attempted before; fresh: never
   * attempted), in due order; after (`at`, `line`) when given.
   */
  dueLines(
    kind: DueKind,
    now: number,
    limit: number,
    after?: { at: number; line: number },
  ): ClaimedLine[] {
    if (this.#deferring && !this.#pendingRows) return [];
    const n = Math.max(1, Math.min(1024, Math.trunc(limit)));
    const rows = (
      after
        ? this.#dueStatement(kind, n, true).all(now, after.at, after.line)
        : this.#dueStatement(kind, n, false).all(now)
    ) as ClaimRow[];
    const lines = new Array<ClaimedLine>(rows.length);
    for (let i = 0; i < rows.length; i++) lines[i] = claimedLine(rows[i] as ClaimRow);
    return lines;
  }

  /** Marks a pending line `in_flight`; false if it was not pending. */
  markInFlight(line: number, now: number): boolean {
    return this.#s.markInFlight.run(now, now, line).changes === 1;
  }

  /**
   * Marks pending lines `in_flight` (as {@link markInFlight} does each), in one statement;
   * returns the lines that were not pending (none, usually: an empty array).
   */
  claim(lines: readonly number[], now: number): readonly number[] {
    if (lines.length === 0) return NONE;
    if (lines.length === 1)
      return this.markInFlight(lines[0] as number, now) ? NONE : [lines[0] as number];
    this.#s; // read-only journals refuse
    // One statement per power of two of lines, the list padded with 0 (no line has it).
    let size = 2;
    while (size < lines.length) size *= 2;
    let statement = this.#claimMany.get(size);
    if (!statement) {
      statement = this.db
        .prepare(
          `UPDATE requests SET state = 'in_flight', last_attempt_at = ?, first_attempt_at = coalesce(first_attempt_at, ?)
           WHERE line IN (${Array.from({ length: size }, () => '?').join(', ')}) AND state = 'pending'
           RETURNING line`,
        )
        .pluck();
      this.#claimMany.set(size, statement);
    }
    const values: number[] = [now, now, ...lines];
    for (let k = lines.length; k < size; k++) values.push(0);
    const claimed = statement.all(...values) as number[];
    if (claimed.length === lines.length) return NONE;
    const got = new Set(claimed);
    return lines.filter((line) => !got.has(line));
  }

  /** The lines left `in_flight` (by a runner that died, when read before {@link releaseInFlight}). */
  inFlightLines(): number[] {
    return this.db
      .prepare("SELECT line FROM requests WHERE state = 'in_flight' ORDER BY line")
      .pluck()
      .all() as number[];
  }

  /** Writes the outcomes of attempts (call inside {@link transaction} to batch them). */
  record(update: LineUpdate): void {
    const s = this.#s;
    const fresh = update.fresh;
    if (update.kind === 'released') {
      // A fresh line without a row has nothing to undo: it becomes a pending row at the run's end.
      if (fresh && !this.#rowed.delete(update.line)) return;
      this.#pendingRows = true;
      (update.started ? s.releaseStarted : s.release).run(update.line);
      return;
    }
    if (update.kind === 'started') {
      if (fresh && !this.#rowed.has(update.line)) {
        const at = update.at ?? Date.now();
        s.startFresh.run(
          fresh.line,
          fresh.hash,
          fresh.key,
          fresh.method,
          fresh.url,
          fresh.host,
          fresh.requestHeaders,
          fresh.requestBody,
          fresh.nextAttemptAt,
          at,
          at,
        );
        this.#rowed.add(update.line);
        this.#rowWritten(fresh);
      } else if (update.at === undefined) s.started.run(update.line);
      else s.startedUnclaimed.run(update.at, update.at, update.line);
      return;
    }
    if (fresh && !this.#rowed.delete(update.line)) {
      // A fresh line's row, written once with its outcome (its start was not written).
      this.#insertOutcomes([update]);
      return;
    }
    if (update.state === 'pending') this.#pendingRows = true;
    const at = update.startedAt;
    // The statement's values, written into the array kept for it (bound at once, never held):
    // no array a line.
    const values = at === undefined ? this.#updateValues : this.#updateUnclaimedValues;
    values[0] = update.state;
    values[1] = update.attempts;
    values[2] = update.nextAttemptAt;
    values[3] = update.history.length ? JSON.stringify(update.history) : null;
    values[4] = update.status;
    values[5] = update.errorCode;
    values[6] = update.errorMessage;
    values[7] = update.reason;
    values[8] = update.bodySize;
    values[9] = update.bodyPath;
    values[10] = update.finishedAt;
    values[11] = update.ttfbMs;
    values[12] = update.durationMs;
    values[13] = headerFieldsOf(this.#fields, update);
    if (at === undefined) values[14] = update.line;
    else {
      values[14] = at;
      values[15] = at;
      values[16] = update.line;
    }
    // The header values the row names first, should this run outside a transaction.
    this.#writeHeaderValues();
    const changed = (at === undefined ? s.update : s.updateUnclaimed).run(...values).changes;
    if (changed === 0 || update.kind !== 'final') return;
    if (update.body !== null) s.putResponse.run(update.line, update.body);
  }

  /**
   * Writes the header values given ids by the responses just written, in their transaction (the
   * caller's: {@link record} and {@link recordAll} are called inside one).
   */
  #writeHeaderValues(): void {
    if (!this.#fields.pending) return;
    const put = this.#s.putHeaderValue;
    const rows = this.#fields.take();
    const inTransaction = this.db.inTransaction;
    for (const row of rows) {
      put.run(row.id, row.name, row.value);
      if (inTransaction) this.#writtenFields.push(row);
    }
  }

  /**
   * Writes a turn's updates (call inside {@link transaction}), as {@link record} writes each, but
   * the rows of fresh lines that end with this outcome in multi-row INSERTs (of 32 rows, then 8,
   * then one at a time: a statement for each row count would cost its preparing each time).
   */
  recordAll(updates: readonly LineUpdate[]): void {
    const outcomes = this.#freshOutcomes;
    for (const update of updates) {
      if (
        (update.kind === 'final' || update.kind === 'retry') &&
        update.fresh &&
        !this.#rowed.has(update.line)
      )
        outcomes.push(update);
      else this.record(update);
    }
    if (outcomes.length === 0) return;
    this.#insertOutcomes(outcomes);
    outcomes.length = 0;
  }

  #insertOutcomes(outcomes: readonly LineOutcome[]): void {
    const ok = this.#okOutcomes;
    const plain = this.#plainOutcomes;
    const other = this.#otherOutcomes;
    const responses = this.#responseOutcomes;
    try {
      for (const o of outcomes) {
        if (o.state === 'pending') this.#pendingRows = true;
        (isOkOutcome(o) ? ok : isPlainOutcome(o) ? plain : other).push(o);
        if (hasBody(o)) responses.push(o);
      }
      // A chunk's count of lines without a row, once for each run of its lines (the outcomes of
      // a turn are mostly of consecutive lines), not once a line.
      let chunk = 0;
      let rows = 0;
      for (const o of outcomes) {
        const line = o.fresh as ClaimedLine;
        if (line.chunk !== chunk) {
          if (rows > 0) this.#rowsWritten(chunk, rows);
          chunk = line.chunk;
          rows = 0;
        }
        rows++;
      }
      if (rows > 0) this.#rowsWritten(chunk, rows);
      this.#okRows.run(ok);
      this.#plainRows.run(plain);
      this.#outcomeRows.run(other);
      this.#responseRows.run(responses);
      this.#writeHeaderValues();
    } finally {
      ok.length = 0;
      plain.length = 0;
      other.length = 0;
      responses.length = 0;
    }
  }

  /** A fresh line got its row: its chunk goes once every line of it has one. */
  #rowWritten(line: ClaimedLine): void {
    this.#rowsWritten(line.chunk, 1);
  }

  /** `rows` fresh lines of the chunk that begins at line `chunk` got their rows. */
  #rowsWritten(chunk: number, rows: number): void {
    const left = (this.#chunkLeft.get(chunk) ?? rows) - rows;
    if (left > 0) {
      this.#chunkLeft.set(chunk, left);
      return;
    }
    this.#chunkLeft.delete(chunk);
    this.#s.deleteChunk.run(chunk);
  }

  /**
   * When the earliest pending line is due (epoch ms), or undefined when none is pending; the
   * lines `except` left out.
   */
  nextDueAt(except: readonly number[] = NONE): number | undefined {
    // Fresh lines left to hand out were due when they were read.
    if (this.hasFresh)
      return (this.#fresh[this.#freshHead] as ClaimedLine | undefined)?.nextAttemptAt ?? 0;
    if (except.length > 0) {
      // Lines claimed without a write are pending in the journal, not for the caller.
      this.#nextDueExcept ??= this.db
        .prepare(
          `SELECT next_attempt_at FROM requests INDEXED BY requests_due
           WHERE state = 'pending' AND line NOT IN (SELECT value FROM json_each(?))
           ORDER BY next_attempt_at, line LIMIT 1`,
        )
        .pluck();
      return (this.#nextDueExcept.get(JSON.stringify(except)) as number | undefined) ?? undefined;
    }
    const value = this.#s.nextDue.get() as number | null;
    if (value === null) this.#pendingRows = false;
    return value ?? undefined;
  }

  /** Lines per state (a full scan: for startup and `dogged status`). */
  counts(): StateCounts {
    const counts = noLines();
    const rows = this.db
      .prepare(
        'SELECT state, sum(attempts > 0) AS retried, count(*) AS n FROM requests GROUP BY state',
      )
      .all() as { state: LineState; retried: number; n: number }[];
    for (const row of rows) {
      counts[row.state] = row.n;
      if (row.state === 'pending') counts.retrying = row.retried;
    }
    return counts;
  }

  close(): void {
    // Stryker disable next-line ConditionalExpression: better-sqlite3's close() of a closed database does nothing either
    if (this.db.open) this.db.close();
  }
}
