/**
 * What a batch report shows, read from a journal (SQLite) or a distributed job's store
 * (PostgreSQL) with aggregate queries: memory and time stay bounded whatever the size of the
 * batch (a million lines are a few scans), only the top N slowest and failed lines are read
 * whole, and every text taken from the journal is cut to a bounded length in SQL before it is
 * read (a 1 MB URL or host name costs no more than a short one).
 */
import { REDACTED, Redactor } from '../http/redact.js';
import type { Journal, StateCounts } from './journal.js';
import { linesOf } from './summary.js';

/** Options of {@link collectReport}, `collectJobReport` and {@link writeReport}. */
export interface ReportOptions {
  /**
   * The report's title.
   * @default the journal's path, or `job NAME`
   * @example { title: 'nightly crawl, 3 December' }
   */
  title?: string;
  /**
   * How many of the slowest lines, and of the busiest hosts, the report lists.
   * @default 20
   * @example { top: 50 }
   */
  top?: number;
  /**
   * How many failed lines the report lists (the first ones, in input order; the report gives
   * the total).
   * @default 50
   * @example { failedLimit: 200 }
   */
  failedLimit?: number;
  /**
   * Texts from the journal (URLs, host names, error messages) longer than this are cut, with
   * `…` and their full length shown.
   * @default 300
   * @example { maxTextLength: 120 }
   */
  maxTextLength?: number;
  /**
   * Show URL credentials and error messages as the journal holds them. Off, credentials
   * become `***@` and known secrets `***`, as `dogged export` does.
   * @default false
   * @example { includeSecrets: true }
   */
  includeSecrets?: boolean;
}

/** One bucket of the throughput chart. */
export interface ThroughputBucket {
  /** The bucket's start, epoch ms. */
  readonly at: number;
  /** Lines that finished done in it. */
  readonly done: number;
  /** Lines that finished failed in it. */
  readonly failed: number;
}

/** A label and how many lines (or retries) share it. */
export interface ReportTally {
  readonly label: string;
  readonly count: number;
}

/** The retry delays scheduled from one source. */
export interface DelaySource {
  readonly source: 'retry-after' | 'backoff';
  /** Retries scheduled (history entries). */
  readonly count: number;
  readonly totalMs: number;
  readonly maxMs: number;
  /** Counts per bucket of {@link DELAY_BUCKETS}, in order. */
  readonly buckets: readonly number[];
}

/** One host's lines. */
export interface ReportHost {
  /** `host:port`, cut to `maxTextLength`. */
  readonly host: string;
  readonly lines: number;
  readonly done: number;
  readonly failed: number;
  /** Attempts that got an outcome, over its finished lines. */
  readonly attempts: number;
  /** Mean and largest duration of the last attempt of its finished lines, ms (null: none). */
  readonly meanMs: number | null;
  readonly maxMs: number | null;
}

/** One line as the report lists it. */
export interface ReportLine {
  readonly line: number;
  readonly method: string | null;
  /** Redacted (unless `includeSecrets`) and cut to `maxTextLength`. */
  readonly url: string | null;
  readonly state: string;
  readonly status: number | null;
  readonly reason: string | null;
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  readonly attempts: number;
  readonly durationMs: number | null;
}

/** Everything a report shows. */
export interface ReportData {
  readonly title: string;
  /** When the data was read, epoch ms. */
  readonly generatedAt: number;
  readonly counts: StateCounts;
  readonly total: number;
  /** The first attempt and the last finish of the batch, epoch ms (null: nothing finished). */
  readonly firstAttemptAt: number | null;
  readonly lastFinishedAt: number | null;
  /** Lines finished per bucket of `bucketMs`, at most 60 buckets. */
  readonly throughput: { readonly bucketMs: number; readonly buckets: readonly ThroughputBucket[] };
  /** Finished lines by their final outcome: a status (`200`), else an error code. */
  readonly outcomes: readonly ReportTally[];
  /** Failed lines by why they ended (`retries-exhausted`...). */
  readonly reasons: readonly ReportTally[];
  /** Finished lines by attempts taken; the last label is `N+` for N or more. */
  readonly attempts: readonly ReportTally[];
  /** Retry delays, by where they came from. */
  readonly delays: readonly DelaySource[];
  /** The busiest hosts (at most `top`), and how many hosts there are. */
  readonly hosts: readonly ReportHost[];
  readonly hostCount: number;
  /** The slowest finished lines by their last attempt's duration (at most `top`). */
  readonly slowest: readonly ReportLine[];
  /** The first failed lines (at most `failedLimit`), and how many there are. */
  readonly failed: readonly ReportLine[];
  readonly failedCount: number;
}

/** Upper bounds (exclusive, ms) of the retry delay buckets; the last bucket is open. */
export const DELAY_BUCKETS: readonly number[] = [100, 1000, 10_000, 60_000, 600_000];
/** Labels of the delay buckets, in order. */
export const DELAY_BUCKET_LABELS: readonly string[] = [
  '< 100 ms',
  '100 ms – 1 s',
  '1 – 10 s',
  '10 s – 1 min',
  '1 – 10 min',
  '≥ 10 min',
];
/** Attempts from this many on share the last bar of the attempts chart. */
export const ATTEMPTS_CAP = 10;
const MAX_BUCKETS = 60;
const MAX_TALLIES = 30;
const NICE_BUCKETS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21_600, 43_200, 86_400,
].map((s) => s * 1000);

/** How the report's SQL differs between SQLite and PostgreSQL. */
export interface ReportDialect {
  /** The requests table. */
  readonly table: string;
  /** A condition every query adds (the job, in the store), with its parameters. */
  readonly scope: string;
  readonly scopeParams: readonly unknown[];
  /** FROM items that give one row per history entry of `r`, as `h`. */
  historyEntries(r: string): string;
  /** A history entry's field as text. */
  field(name: string): string;
  /** The 1-based position of `needle` in `text` (0: absent). */
  position(text: string, needle: string): string;
  /** Runs a query (`?` placeholders). */
  all(sql: string, params: readonly unknown[]): Promise<Record<string, unknown>[]>;
}

const num = (value: unknown): number => (value === null || value === undefined ? 0 : Number(value));
const numOrNull = (value: unknown): number | null =>
  value === null || value === undefined ? null : Number(value);
const textOrNull = (value: unknown): string | null =>
  value === null || value === undefined ? null : String(value);

/** `text` cut to `max` characters, with `…` and the full length when it was longer. */
export function cut(text: string, max: number, fullLength = text.length): string {
  if (fullLength <= max && text.length <= max) return text;
  return `${text.slice(0, max)}… (${fullLength.toLocaleString('en-US')} characters)`;
}

/**
 * A URL as read (its first `max + 1` characters of `fullLength`), redacted and cut: when its
 * first `@` (`at`, 1-based; 0 for none) lies past what was read, the part after the scheme is
 * hidden whole, since what was read cannot show where its credentials end.
 */
function safeUrl(
  slice: string,
  fullLength: number,
  at: number,
  max: number,
  redactor: Redactor | undefined,
): string {
  if (!redactor) return cut(slice, max, fullLength);
  if (at > slice.length) {
    const scheme = /^\s*[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(slice);
    return `${scheme ? scheme[0] : ''}${REDACTED}… (${fullLength.toLocaleString('en-US')} characters)`;
  }
  return cut(redactor.url(slice) ?? slice, max, fullLength);
}

/** The bucket width for a span: a round one, giving at most 60 buckets. */
export function bucketWidth(spanMs: number): number {
  for (const width of NICE_BUCKETS) if (spanMs / width < MAX_BUCKETS) return width;
  return Math.ceil(spanMs / MAX_BUCKETS / 86_400_000) * 86_400_000;
}

/** Reads a report's data through a dialect (see {@link collectReport}). */
export async function collectReportWith(
  sql: ReportDialect,
  counts: StateCounts,
  options: ReportOptions & { title: string },
): Promise<ReportData> {
  const top = options.top ?? 20;
  const failedLimit = options.failedLimit ?? 50;
  const max = options.maxTextLength ?? 300;
  if (!Number.isInteger(top) || top < 0) throw new TypeError('top must be an integer >= 0');
  if (!Number.isInteger(failedLimit) || failedLimit < 0)
    throw new TypeError('failedLimit must be an integer >= 0');
  if (!Number.isInteger(max) || max < 16) throw new TypeError('maxTextLength must be >= 16');
  const redactor = options.includeSecrets ? undefined : new Redactor();
  const t = sql.table;
  const scope = sql.scope;
  const p = sql.scopeParams;
  const finished = `${scope} AND state IN ('done', 'failed')`;
  // Texts are read cut: a hostile 1 MB value costs a few hundred bytes here.
  const read = max + 1;

  const [span] = await sql.all(
    `SELECT min(first_attempt_at) AS first, min(finished_at) AS start, max(finished_at) AS stop
     FROM ${t} WHERE ${finished} AND finished_at IS NOT NULL`,
    p,
  );
  const start = numOrNull(span?.start);
  const stop = numOrNull(span?.stop);
  let bucketMs = 1000;
  let buckets: ThroughputBucket[] = [];
  if (start !== null && stop !== null) {
    bucketMs = bucketWidth(stop - start + 1);
    const origin = Math.floor(start / bucketMs) * bucketMs;
    const rows = await sql.all(
      `SELECT CAST((finished_at - ?) / ? AS INTEGER) AS b,
              sum(CASE WHEN state = 'done' THEN 1 ELSE 0 END) AS done,
              sum(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) AS failed
       FROM ${t} WHERE ${finished} AND finished_at IS NOT NULL GROUP BY 1 ORDER BY 1`,
      [origin, bucketMs, ...p],
    );
    const count = Math.floor((stop - origin) / bucketMs) + 1;
    buckets = Array.from({ length: count }, (_, i) => ({
      at: origin + i * bucketMs,
      done: 0,
      failed: 0,
    }));
    for (const row of rows) {
      const i = Math.trunc(num(row.b));
      const bucket = buckets[i];
      if (bucket) buckets[i] = { ...bucket, done: num(row.done), failed: num(row.failed) };
    }
  }

  const tally = (rows: Record<string, unknown>[]): ReportTally[] =>
    rows.map((row) => ({ label: cut(String(row.label), 64), count: num(row.count) }));
  const outcomes = tally(
    await sql.all(
      `SELECT coalesce(CAST(status AS TEXT), substr(error_code, 1, 65), 'unknown') AS label, count(*) AS count
       FROM ${t} WHERE ${finished} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ${MAX_TALLIES}`,
      p,
    ),
  );
  const reasons = tally(
    await sql.all(
      `SELECT coalesce(substr(reason, 1, 65), 'unknown') AS label, count(*) AS count
       FROM ${t} WHERE ${scope} AND state = 'failed' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT ${MAX_TALLIES}`,
      p,
    ),
  );
  const attemptRows = await sql.all(
    `SELECT CASE WHEN attempts >= ${ATTEMPTS_CAP} THEN ${ATTEMPTS_CAP} ELSE attempts END AS a, count(*) AS count
     FROM ${t} WHERE ${finished} GROUP BY 1 ORDER BY 1`,
    p,
  );
  const attempts = attemptRows.map((row) => {
    const a = num(row.a);
    return { label: a >= ATTEMPTS_CAP ? `${ATTEMPTS_CAP}+` : String(a), count: num(row.count) };
  });

  const delay = `CAST(${sql.field('delayMs')} AS DOUBLE PRECISION)`;
  const bucketCase = `CASE ${DELAY_BUCKETS.map((b, i) => `WHEN ${delay} < ${b} THEN ${i}`).join(' ')} ELSE ${DELAY_BUCKETS.length} END`;
  const delayRows = await sql.all(
    `SELECT ${sql.field('source')} AS source, ${bucketCase} AS b, count(*) AS count,
            sum(${delay}) AS total, max(${delay}) AS max
     FROM ${t} AS r, ${sql.historyEntries('r')}
     WHERE ${scope.replaceAll('job', 'r.job')} AND r.history IS NOT NULL GROUP BY 1, 2`,
    p,
  );
  const delays: DelaySource[] = [];
  for (const source of ['backoff', 'retry-after'] as const) {
    const rows = delayRows.filter((row) => row.source === source);
    if (rows.length === 0) continue;
    const bucketCounts = DELAY_BUCKET_LABELS.map(() => 0);
    for (const row of rows) bucketCounts[num(row.b)] = num(row.count);
    delays.push({
      source,
      count: rows.reduce((n, row) => n + num(row.count), 0),
      totalMs: rows.reduce((n, row) => n + num(row.total), 0),
      maxMs: rows.reduce((n, row) => Math.max(n, num(row.max)), 0),
      buckets: bucketCounts,
    });
  }

  const hostRows = await sql.all(
    `SELECT substr(host, 1, ${read}) AS host, length(host) AS host_length, count(*) AS lines,
            sum(CASE WHEN state = 'done' THEN 1 ELSE 0 END) AS done,
            sum(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) AS failed,
            sum(CASE WHEN state IN ('done', 'failed') THEN attempts ELSE 0 END) AS attempts,
            avg(CASE WHEN state IN ('done', 'failed') THEN duration_ms END) AS mean,
            max(CASE WHEN state IN ('done', 'failed') THEN duration_ms END) AS max
     FROM ${t} WHERE ${scope} AND host IS NOT NULL GROUP BY host ORDER BY 3 DESC, 1 LIMIT ${top}`,
    p,
  );
  const hosts: ReportHost[] = hostRows.map((row) => ({
    host: cut(String(row.host), max, num(row.host_length)),
    lines: num(row.lines),
    done: num(row.done),
    failed: num(row.failed),
    attempts: num(row.attempts),
    meanMs: numOrNull(row.mean),
    maxMs: numOrNull(row.max),
  }));
  const [hostCount] = await sql.all(
    `SELECT count(DISTINCT host) AS n FROM ${t} WHERE ${scope} AND host IS NOT NULL`,
    p,
  );

  const lineColumns = `line, substr(method, 1, 16) AS method, substr(url, 1, ${read}) AS url,
    length(url) AS url_length, ${sql.position('url', "'@'")} AS url_at, state, status,
    substr(reason, 1, 64) AS reason, substr(error_code, 1, 64) AS error_code,
    substr(error_message, 1, ${read}) AS error_message, length(error_message) AS error_length,
    attempts, duration_ms`;
  const lineOf = (row: Record<string, unknown>): ReportLine => {
    const message = textOrNull(row.error_message);
    const url = textOrNull(row.url);
    return {
      line: num(row.line),
      method: textOrNull(row.method),
      url: url === null ? null : safeUrl(url, num(row.url_length), num(row.url_at), max, redactor),
      state: String(row.state),
      status: numOrNull(row.status),
      reason: textOrNull(row.reason),
      errorCode: textOrNull(row.error_code),
      errorMessage:
        message === null
          ? null
          : cut(redactor ? redactor.text(message) : message, max, num(row.error_length)),
      attempts: num(row.attempts),
      durationMs: numOrNull(row.duration_ms),
    };
  };
  const slowest = (
    await sql.all(
      `SELECT ${lineColumns} FROM ${t} WHERE ${finished} AND duration_ms IS NOT NULL
       ORDER BY duration_ms DESC, line LIMIT ${top}`,
      p,
    )
  ).map(lineOf);
  const failed = (
    await sql.all(
      `SELECT ${lineColumns} FROM ${t} WHERE ${scope} AND state = 'failed' ORDER BY line LIMIT ${failedLimit}`,
      p,
    )
  ).map(lineOf);

  return {
    title: options.title,
    generatedAt: Date.now(),
    counts,
    total: linesOf(counts),
    firstAttemptAt: numOrNull(span?.first),
    lastFinishedAt: stop,
    throughput: { bucketMs, buckets },
    outcomes,
    reasons,
    attempts,
    delays,
    hosts,
    hostCount: num(hostCount?.n),
    slowest,
    failed,
    failedCount: counts.failed,
  };
}

/** The SQLite dialect over a journal. */
function journalDialect(journal: Journal): ReportDialect {
  return {
    table: 'requests',
    scope: '1 = 1',
    scopeParams: [],
    historyEntries: (r) => `json_each(${r}.history) AS h`,
    field: (name) => `json_extract(h.value, '$.${name}')`,
    position: (text, needle) => `instr(${text}, ${needle})`,
    all: async (text, params) =>
      journal.db.prepare(text).all(...params) as Record<string, unknown>[],
  };
}

/**
 * Reads what a report shows from a journal: counts, throughput over time, outcomes, failure
 * reasons, attempts, retry delays by source, hosts, the slowest and the failed lines. A few
 * aggregate queries: bounded memory for any size of journal.
 * @example const data = await collectReport(Journal.open('run.sqlite', { readonly: true }));
 */
export async function collectReport(
  journal: Journal,
  options: ReportOptions = {},
): Promise<ReportData> {
  return collectReportWith(journalDialect(journal), journal.counts(), {
    ...options,
    title: options.title ?? journal.db.name,
  });
}
