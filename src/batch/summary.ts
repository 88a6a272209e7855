import type { Journal, StateCounts } from './journal.js';
import { noLines } from './journal-schema.js';

/** How many lines share one value. */
export interface Tally<T> {
  readonly value: T;
  readonly count: number;
}

/** Failed lines grouped by why they failed. */
export interface FailureTally {
  /** http-status, retries-exhausted, not-retriable, retry-after-too-long, rate-limited, body-too-large. */
  readonly reason: string;
  /** The final status, when the last attempt got one. */
  readonly status: number | null;
  /** The final error code, when the last attempt got no status. */
  readonly errorCode: string | null;
  readonly count: number;
}

/** One host's share of the journal. */
export interface HostSummary {
  readonly host: string;
  readonly lines: number;
  readonly done: number;
  readonly failed: number;
  /** Lines still pending or in flight. */
  readonly left: number;
  /** Retries scheduled for its lines. */
  readonly retries: number;
}

/** Every line recorded: the sum of the lines per state. */
export function linesOf(counts: StateCounts): number {
  return counts.pending + counts.in_flight + counts.done + counts.failed + counts.invalid;
}

/** Everything `dogged status` and the end of a run report about a journal. */
export interface BatchSummary {
  readonly counts: StateCounts;
  /** Every line recorded. */
  readonly total: number;
  /** Final statuses of finished lines (done and failed). */
  readonly statuses: readonly Tally<number>[];
  /** Failed lines by reason and final status or error. */
  readonly failures: readonly FailureTally[];
  /** Failures that were retried, by kind: a status (`"503"`) or an error code. */
  readonly retried: readonly Tally<string>[];
  /**
   * Attempts the host turned away (429, 503 + Retry-After) or failed while it was down, by
   * kind: they were tried again without spending a retry.
   */
  readonly held: readonly Tally<string>[];
  /** Finished lines by the attempts they took. */
  readonly attempts: readonly Tally<number>[];
  /** The busiest hosts (at most 10), and how many hosts there are in all. */
  readonly hosts: readonly HostSummary[];
  readonly hostCount: number;
  /** Retries scheduled over the whole journal. */
  readonly retries: number;
  /** When the next pending line is due, epoch ms. */
  readonly nextDueAt: number | undefined;
}

/** One group of the journal's lines, as {@link summarize} reads them (a row of its grouped scan). */
type LineGroup = [
  state: keyof StateCounts,
  status: number | null,
  reason: string | null,
  errorCode: string | null,
  attempts: number,
  host: string | null,
  count: number,
  retried: number,
  nextDue: number | null,
];

/** One group of history entries: a row of {@link summarize}'s history scan. */
type HistoryGroup = [host: string | null, kind: string, held: number | null, count: number];

/** SQLite's order of two values of one column: NULL first, then by value (binary for text). */
function compareSql(a: string | number | null, b: string | number | null): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  return a < b ? -1 : 1;
}

/** Tallies of a map, most first, ties by value. */
function byCount<T extends string | number>(tally: Map<T, number>): Tally<T>[] {
  return [...tally]
    .map(([value, count]) => ({ value, count }))
    .sort((a, b) => b.count - a.count || compareSql(a.value, b.value));
}

/** Tallies of a map in the order of their values. */
function byValue(tally: Map<number, number>): Tally<number>[] {
  return [...tally].map(([value, count]) => ({ value, count })).sort((a, b) => a.value - b.value);
}

function add<K>(map: Map<K, number>, key: K, n: number): void {
  map.set(key, (map.get(key) ?? 0) + n);
}

/**
 * The lines done at their first attempt (`ANSWERED`): most lines of most journals. SQLite groups
 * rows by sorting them, and comparing two columns of these rows costs less than comparing six
 * (the summary of 20,000 such lines took about half the time).
 */
const ANSWERED = "state = 'done' AND attempts = 1 AND reason IS 'ok' AND error_code IS NULL";

/**
 * Summarises a journal in three scans: the lines done at their first attempt, grouped by host
 * and status; the other lines, grouped by everything the summary tallies (a handful of groups
 * for most journals, at most one per line); and the history entries of the lines that have
 * any. The tallies are made from the groups here.
 */
export function summarize(journal: Journal): BatchSummary {
  const db = journal.db;
  // Each query also counts the lines with a history: the third, a scan of the whole table, only
  // runs when some line has one (a run that retried nothing needs two scans, not three).
  const answered = db
    .prepare(
      `SELECT host, status, count(*), sum(history IS NOT NULL) FROM requests WHERE ${ANSWERED}
       GROUP BY host, status`,
    )
    .raw(true)
    .all() as [host: string | null, status: number | null, count: number, histories: number][];
  const groups = db
    .prepare(
      `SELECT state, status, reason, error_code, attempts, host, count(*), sum(attempts > 0),
              min(next_attempt_at), sum(history IS NOT NULL)
       FROM requests WHERE NOT (${ANSWERED})
       GROUP BY state, status, reason, error_code, attempts, host`,
    )
    .raw(true)
    .all() as [...LineGroup, histories: number][];
  let histories = 0;
  for (const group of groups) histories += group[9];
  for (const [host, status, n, withHistory] of answered) {
    histories += withHistory;
    groups.push(['done', status, 'ok', null, 1, host, n, n, null, 0]);
  }
  // A history entry is a retry, or (with `throttled` or `down`) attempts the host held.
  const history =
    histories === 0
      ? []
      : (db
          .prepare(
            `SELECT host, coalesce(CAST(json_extract(h.value, '$.status') AS TEXT), json_extract(h.value, '$.code'), 'unknown'),
                    coalesce(json_extract(h.value, '$.throttled'), json_extract(h.value, '$.down')), count(*)
             FROM requests, json_each(requests.history) AS h
             WHERE requests.history IS NOT NULL GROUP BY 1, 2, 3`,
          )
          .raw(true)
          .all() as HistoryGroup[]);

  const counts = noLines();
  const statuses = new Map<number, number>();
  const attempts = new Map<number, number>();
  const failures = new Map<
    string,
    { reason: string; status: number | null; errorCode: string | null; count: number }
  >();
  const hosts = new Map<
    string,
    { host: string; lines: number; done: number; failed: number; left: number; retries: number }
  >();
  let nextDueAt: number | undefined;
  for (const [state, status, reason, errorCode, tries, host, n, retried, due] of groups) {
    counts[state] += n;
    if (state === 'pending') {
      counts.retrying += retried;
      if (due !== null && (nextDueAt === undefined || due < nextDueAt)) nextDueAt = due;
    }
    const finished = state === 'done' || state === 'failed';
    if (finished) {
      if (status !== null) add(statuses, status, n);
      add(attempts, tries, n);
    }
    if (state === 'failed') {
      const why = reason ?? 'unknown';
      const key = JSON.stringify([why, status, errorCode]);
      const tally = failures.get(key);
      if (tally) tally.count += n;
      else failures.set(key, { reason: why, status, errorCode, count: n });
    }
    if (host !== null) {
      let h = hosts.get(host);
      if (!h) {
        h = { host, lines: 0, done: 0, failed: 0, left: 0, retries: 0 };
        hosts.set(host, h);
      }
      h.lines += n;
      if (state === 'done') h.done += n;
      else if (state === 'failed') h.failed += n;
      else if (state === 'pending' || state === 'in_flight') h.left += n;
    }
  }
  const retried = new Map<string, number>();
  const held = new Map<string, number>();
  for (const [host, kind, heldCount, n] of history) {
    if (heldCount === null) {
      add(retried, kind, n);
      if (host !== null) {
        const h = hosts.get(host);
        if (h) h.retries += n;
      }
    } else {
      add(held, kind, heldCount * n);
    }
  }
  const retriedTally = byCount(retried);
  return {
    counts,
    total: linesOf(counts),
    statuses: byValue(statuses),
    failures: [...failures.values()].sort(
      (a, b) =>
        b.count - a.count ||
        compareSql(a.reason, b.reason) ||
        compareSql(a.status, b.status) ||
        compareSql(a.errorCode, b.errorCode),
    ),
    retried: retriedTally,
    held: byCount(held),
    attempts: byValue(attempts),
    hosts: [...hosts.values()]
      .sort((a, b) => b.lines - a.lines || compareSql(a.host, b.host))
      .slice(0, 10),
    hostCount: hosts.size,
    // One entry of `retried` per history entry: their counts add up to every retry.
    retries: retriedTally.reduce((n, t) => n + t.count, 0),
    nextDueAt,
  };
}

/**
 * A summary that holds only the lines per state (its tallies empty): what an enqueue knows of a
 * job it has not run.
 */
export function summaryOfCounts(counts: StateCounts): BatchSummary {
  return {
    counts,
    total: linesOf(counts),
    statuses: [],
    failures: [],
    retried: [],
    held: [],
    attempts: [],
    hosts: [],
    hostCount: 0,
    retries: 0,
    nextDueAt: undefined,
  };
}
