import type { Journal, StateCounts } from './journal.js';

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

/**
 * Summarises a journal with a few aggregate queries (they scan the journal once each: cheap
 * for thousands of lines, about a second for a million).
 */
export function summarize(journal: Journal): BatchSummary {
  const db = journal.db;
  const counts = journal.counts();
  const statuses = db
    .prepare(
      `SELECT status AS value, count(*) AS count FROM requests
       WHERE state IN ('done', 'failed') AND status IS NOT NULL GROUP BY status ORDER BY status`,
    )
    .all() as Tally<number>[];
  const failures = db
    .prepare(
      `SELECT coalesce(reason, 'unknown') AS reason, status, error_code AS errorCode, count(*) AS count
       FROM requests WHERE state = 'failed' GROUP BY 1, 2, 3 ORDER BY count DESC, reason`,
    )
    .all() as FailureTally[];
  // A history entry is a retry, or (with `throttled` or `down`) attempts the host held.
  const kind = `coalesce(CAST(json_extract(h.value, '$.status') AS TEXT), json_extract(h.value, '$.code'), 'unknown')`;
  const held = `coalesce(json_extract(h.value, '$.throttled'), json_extract(h.value, '$.down'))`;
  const retried = db
    .prepare(
      `SELECT ${kind} AS value, count(*) AS count
       FROM requests, json_each(requests.history) AS h
       WHERE requests.history IS NOT NULL AND ${held} IS NULL GROUP BY 1 ORDER BY count DESC, value`,
    )
    .all() as Tally<string>[];
  const heldTally = db
    .prepare(
      `SELECT ${kind} AS value, sum(${held}) AS count
       FROM requests, json_each(requests.history) AS h
       WHERE requests.history IS NOT NULL AND ${held} IS NOT NULL GROUP BY 1 ORDER BY count DESC, value`,
    )
    .all() as Tally<string>[];
  const attempts = db
    .prepare(
      `SELECT attempts AS value, count(*) AS count FROM requests
       WHERE state IN ('done', 'failed') GROUP BY attempts ORDER BY attempts`,
    )
    .all() as Tally<number>[];
  const hosts = db
    .prepare(
      `SELECT host, count(*) AS lines, sum(state = 'done') AS done, sum(state = 'failed') AS failed,
              sum(state IN ('pending', 'in_flight')) AS left,
              sum((SELECT count(*) FROM json_each(history) AS h WHERE ${held} IS NULL)) AS retries
       FROM requests WHERE host IS NOT NULL GROUP BY host ORDER BY lines DESC, host LIMIT 10`,
    )
    .all() as HostSummary[];
  const hostCount = db
    .prepare('SELECT count(DISTINCT host) FROM requests WHERE host IS NOT NULL')
    .pluck()
    .get() as number;
  // One row of `retried` per history entry: their counts add up to every retry.
  const retries = retried.reduce((n, t) => n + t.count, 0);
  const nextDueAt = db
    .prepare("SELECT min(next_attempt_at) FROM requests WHERE state = 'pending'")
    .pluck()
    .get() as number | null;
  return {
    counts,
    total: linesOf(counts),
    statuses,
    failures,
    retried,
    held: heldTally,
    attempts,
    hosts,
    hostCount,
    retries,
    nextDueAt: nextDueAt ?? undefined,
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
