import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { Redactor } from '../http/redact.js';
import type { Journal } from './journal.js';
import type { HistoryEntry, LineState } from './journal-schema.js';

/** A retried or held attempt as exported: {@link HistoryEntry} with `at` in ISO 8601. */
export type ExportHistoryEntry = Omit<HistoryEntry, 'at'> & {
  /** When the attempt ended, ISO 8601 (the journal keeps epoch ms). */
  readonly at: string;
};

/**
 * What `--state` / `states` may ask for: a line state, or `retrying` (pending lines that already
 * had an attempt: waiting for a retry, or held by their host; the lines `dogged status` counts
 * as retrying). Their records say `state: 'pending'`.
 */
export type ExportState = LineState | 'retrying';

/** One line of the journal as exported. Timestamps are ISO 8601; durations are ms. */
export interface ExportRecord {
  line: number;
  key: string | null;
  method: string | null;
  url: string | null;
  state: LineState;
  status: number | null;
  /** Why the line ended: ok, http-status, retries-exhausted, not-retriable, retry-after-too-long, invalid. */
  reason: string | null;
  error: { code: string; message: string | null } | null;
  attempts: number;
  /**
   * The retries the line spent: its attempts that failed and were tried again, not counting
   * the times its host held it (a 429, a Retry-After, an outage), which spend none.
   */
  retries: number;
  /** The retried and held attempts, oldest first. */
  history: ExportHistoryEntry[];
  /** Response headers of the final attempt. */
  headers: Record<string, string | string[]> | null;
  bodySize: number | null;
  bodyPath: string | null;
  /** The body with `bodies: true`: UTF-8 text, or base64 (see `bodyEncoding`). */
  body?: string | null;
  bodyEncoding?: 'utf8' | 'base64';
  firstAttemptAt: string | null;
  finishedAt: string | null;
  ttfbMs: number | null;
  /**
   * The line's whole time, from the start of its first attempt to its end (waits between
   * attempts, retries and holds included); null until it is finished.
   */
  durationMs: number | null;
  /** The duration of its last attempt alone (request to end of body). */
  lastAttemptMs: number | null;
  /** The input line itself, for invalid lines. */
  raw?: string;
}

/** Options of {@link exportRecords} and {@link writeExport}. */
export interface ExportOptions {
  /**
   * Include response bodies (those stored with `bodies: 'db'`).
   * @default false
   * @example { bodies: true }
   */
  bodies?: boolean;
  /**
   * Only lines in these states; `retrying` selects the pending lines that already had an
   * attempt (see {@link ExportState}).
   * @default every state
   * @example { states: ['failed', 'retrying'] }
   */
  states?: readonly ExportState[];
  /**
   * Export what the journal holds as it is: URL credentials, `raw` lines, error messages and
   * the values of secret response headers (`Set-Cookie`...). Off, each is redacted (`***@` in
   * URLs, `***` for header values). CSV cells are escaped against formulas either way.
   * @default false
   * @example { includeSecrets: true }
   */
  includeSecrets?: boolean;
  /**
   * Header names whose values are redacted, besides `Authorization`, `Proxy-Authorization`,
   * `Cookie` and `Set-Cookie` (ignored with `includeSecrets`).
   * @default []
   * @example { secretHeaders: ['x-session-token'] }
   */
  secretHeaders?: readonly string[];
}

/** The redactor an export applies, or undefined with `includeSecrets`. */
export function exportRedactor(options: ExportOptions): Redactor | undefined {
  return options.includeSecrets
    ? undefined
    : new Redactor({ secretHeaders: options.secretHeaders ?? [] });
}

/**
 * A line's row as the export reads it, from either backend: SQLite keeps `history` and
 * `response_headers` as JSON text, PostgreSQL as parsed JSON.
 */
export interface ExportRow<History = string, Headers = string> {
  line: number;
  key: string | null;
  method: string | null;
  url: string | null;
  raw: string | null;
  state: LineState;
  status: number | null;
  reason: string | null;
  error_code: string | null;
  error_message: string | null;
  attempts: number;
  history: History | null;
  response_headers: Headers | null;
  body_size: number | null;
  body_path: string | null;
  first_attempt_at: number | null;
  finished_at: number | null;
  ttfb_ms: number | null;
  duration_ms: number | null;
  body?: Buffer | null;
}

type Row = ExportRow;

/** Every state a line can be in, in the order exports list them. */
const STATES: readonly LineState[] = ['pending', 'in_flight', 'done', 'failed', 'invalid'];
/** What `states` accepts. */
const EXPORT_STATES: readonly ExportState[] = [...STATES, 'retrying'];
const utf8 = new TextDecoder('utf-8', { fatal: true });
const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const round = (ms: number | null): number | null => (ms === null ? null : Math.round(ms * 10) / 10);

function decodeBody(body: Buffer): { text: string; encoding: 'utf8' | 'base64' } {
  try {
    return { text: utf8.decode(body), encoding: 'utf8' };
  } catch {
    return { text: body.toString('base64'), encoding: 'base64' };
  }
}

/**
 * The states `options` asks for (every state by default), and whether the pending lines that
 * already had an attempt are asked for (`retrying`) though `pending` is not; an unknown state is
 * a TypeError.
 */
export function statesOf(options: ExportOptions): {
  states: readonly LineState[];
  retrying: boolean;
  all: boolean;
} {
  const asked = options.states ?? STATES;
  for (const s of asked)
    if (!EXPORT_STATES.includes(s))
      throw new TypeError(
        `unknown state ${JSON.stringify(s)}; states are ${EXPORT_STATES.join(', ')}`,
      );
  const states = STATES.filter((s) => asked.includes(s));
  const retrying = asked.includes('retrying') && !states.includes('pending');
  return { states, retrying, all: states.length === STATES.length };
}

/**
 * The journal's lines in line order, one at a time (a streaming query: memory stays flat).
 * @example for (const record of exportRecords(journal, { states: ['failed'] })) console.log(record.url, record.status);
 */
export function* exportRecords(
  journal: Journal,
  options: ExportOptions = {},
): Generator<ExportRecord> {
  const { states, retrying, all } = statesOf(options);
  const redactor = exportRedactor(options);
  const where = all
    ? ''
    : `WHERE r.state IN (${states.map(() => '?').join(', ')})${retrying ? " OR (r.state = 'pending' AND r.attempts > 0)" : ''}`;
  const sql = `SELECT r.line, r.key, r.method, r.url, r.raw, r.state, r.status, r.reason, r.error_code, r.error_message,
      r.attempts, r.history, ${journal.responseHeadersSql('r', 'b')} AS response_headers, r.body_size, r.body_path, r.first_attempt_at, r.finished_at,
      r.ttfb_ms, r.duration_ms${options.bodies ? ', b.body' : ''}
    FROM requests AS r LEFT JOIN responses AS b ON b.line = r.line
    ${where} ORDER BY r.line`;
  const statement = journal.db.prepare(sql);
  const rows = (all ? statement.iterate() : statement.iterate(...states)) as IterableIterator<Row>;
  for (const row of rows)
    yield recordOf(
      {
        ...row,
        history: row.history ? (JSON.parse(row.history) as HistoryEntry[]) : null,
        response_headers: row.response_headers
          ? (JSON.parse(row.response_headers) as Record<string, string | string[]>)
          : null,
      },
      options.bodies ?? false,
      redactor,
    );
}

/**
 * A line's export record from its row (history and headers parsed), with its body or not;
 * credentials and secret header values redacted by `redactor` (none without one).
 */
export function recordOf(
  row: ExportRow<HistoryEntry[], Record<string, string | string[]>>,
  bodies: boolean,
  redactor: Redactor | undefined,
): ExportRecord {
  const text = (value: string | null): string | null =>
    value === null || !redactor ? value : redactor.text(value);
  const record: ExportRecord = {
    line: row.line,
    key: row.key,
    method: row.method,
    url: row.url === null || !redactor ? row.url : redactor.url(row.url),
    state: row.state,
    status: row.status,
    reason: row.reason,
    error: row.error_code ? { code: row.error_code, message: text(row.error_message) } : null,
    attempts: row.attempts,
    retries: (row.history ?? []).filter((h) => !h.throttled && !h.down).length,
    history: (row.history ?? []).map((h) => ({ ...h, at: new Date(h.at).toISOString() })),
    headers:
      row.response_headers && redactor
        ? redactor.headers(row.response_headers)
        : row.response_headers,
    bodySize: row.body_size,
    bodyPath: row.body_path,
    firstAttemptAt: iso(row.first_attempt_at),
    finishedAt: iso(row.finished_at),
    ttfbMs: round(row.ttfb_ms),
    durationMs:
      row.finished_at === null || row.first_attempt_at === null
        ? null
        : round(row.finished_at - row.first_attempt_at),
    lastAttemptMs: round(row.duration_ms),
  };
  if (row.raw !== null) record.raw = text(row.raw) as string;
  if (bodies) {
    if (row.body) {
      const { text, encoding } = decodeBody(row.body);
      record.body = text;
      record.bodyEncoding = encoding;
    } else {
      record.body = null;
    }
  }
  return record;
}

/** The CSV columns, in order. */
export const CSV_COLUMNS = [
  'line',
  'key',
  'method',
  'url',
  'state',
  'status',
  'reason',
  'error_code',
  'error_message',
  'attempts',
  'retries',
  'body_size',
  'body_path',
  'first_attempt_at',
  'finished_at',
  'ttfb_ms',
  'duration_ms',
  'last_attempt_ms',
] as const;

/**
 * One CSV cell (RFC 4180). A text that a spreadsheet would run as a formula (it starts with `=`,
 * `+`, `-`, `@`, a tab or a carriage return) gets a `'` in front and is quoted, as OWASP's CSV
 * injection rule says; a text holding a quote, a comma, a semicolon (the separator of some
 * locales), a tab or a line break is quoted, so no separator inside it starts a new cell.
 */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return String(value);
  const text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) return `"'${text.replaceAll('"', '""')}"`;
  return /[",;\t\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * One CSV row (RFC 4180), with `body` and `body_encoding` columns when bodies are exported.
 * Cells are escaped against formula injection ({@link csvCell}).
 */
export function toCsvRow(record: ExportRecord, withBodies: boolean): string {
  const cells: unknown[] = [
    record.line,
    record.key,
    record.method,
    record.url ?? record.raw,
    record.state,
    record.status,
    record.reason,
    record.error?.code,
    record.error?.message,
    record.attempts,
    record.retries,
    record.bodySize,
    record.bodyPath,
    record.firstAttemptAt,
    record.finishedAt,
    record.ttfbMs,
    record.durationMs,
    record.lastAttemptMs,
  ];
  if (withBodies) cells.push(record.body, record.bodyEncoding);
  return `${cells.map(csvCell).join(',')}\r\n`;
}

/**
 * Writes the journal to `out` as JSON Lines or CSV, honouring backpressure. Resolves with the
 * number of records written.
 * @example await writeExport(journal, process.stdout, { format: 'csv' });
 */
export async function writeExport(
  journal: Journal,
  out: Writable,
  options: ExportOptions & { format: 'jsonl' | 'csv' },
): Promise<number> {
  return writeRecords(exportRecords(journal, options), out, options);
}

/**
 * Writes records (from a journal or a distributed job's store) to `out` as JSON Lines or CSV,
 * honouring backpressure. Resolves with the number of records written.
 * @example await writeRecords(storeRecords(store, 'crawl'), process.stdout, { format: 'jsonl' });
 */
export async function writeRecords(
  records: Iterable<ExportRecord> | AsyncIterable<ExportRecord>,
  out: Writable,
  options: { format: 'jsonl' | 'csv'; bodies?: boolean },
): Promise<number> {
  let count = 0;
  const withBodies = options.bodies ?? false;
  const write = async (text: string): Promise<void> => {
    if (!out.write(text)) await once(out, 'drain');
  };
  if (options.format === 'csv')
    await write(
      `${[...CSV_COLUMNS, ...(withBodies ? ['body', 'body_encoding'] : [])].join(',')}\r\n`,
    );
  for await (const record of records) {
    await write(
      options.format === 'csv' ? toCsvRow(record, withBodies) : `${JSON.stringify(record)}\n`,
    );
    count++;
  }
  return count;
}
