import type { Pool, PoolClient } from 'pg';
import { retry } from '../../retry/retry.js';
import { retryIf } from '../../retry/retry-if.js';
import { stop } from '../../retry/stop.js';
import { wait } from '../../retry/wait.js';
import type { InvalidLine } from '../input-line.js';
import type { StateCounts } from '../journal.js';
import { type HistoryEntry, noLines } from '../journal-schema.js';
import type { StoreLocation } from './connections.js';
import { probeStore } from './connections.js';
import { StoreUnavailableError } from './errors.js';
import { type JobConfig, parseJobConfig } from './job-config.js';
import { type InsertResult, insertLines } from './store-lines.js';
import { storeSchemaSql } from './store-schema.js';

/**
 * The statistics target of {@link PgStore.analyze}: PostgreSQL samples 300 rows per unit, so
 * 3,000 rows (its default, 100, samples 30,000).
 */
const ANALYZE_TARGET = 10;

/** A line as a worker needs it: what the BullMQ job carries. */
export interface QueuedLine {
  readonly line: number;
  readonly method: string;
  readonly url: string;
  readonly host: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly key?: string;
}

/** An input line to record: a request to fetch, or an invalid line. */
export type StoreLine =
  | ({ readonly kind: 'request'; readonly hash: string } & QueuedLine)
  | InvalidLine;

/** Where a line stands in the store. */
export interface LineRecordState {
  readonly state: 'pending' | 'done' | 'failed' | 'invalid';
  readonly attempts: number;
  readonly history: readonly HistoryEntry[];
  readonly nextAttemptAt: number;
  readonly host: string | null;
  /** When the line's first attempt started (epoch ms); null before any. */
  readonly firstAttemptAt: number | null;
}

/** PostgreSQL failures worth another try: the connection, not the query. */
export function isTransientStoreError(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (/^(08|57P0)/.test(code) || code === '53300') return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(code))
    return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|connection timeout|Client has encountered a connection error|not queryable/i.test(
    message,
  );
}

/**
 * The results of distributed batches in PostgreSQL (node-postgres). Every write is keyed by
 * (job, line) and guarded by the attempt count it follows, so it is applied at most once
 * whatever the number of times a line was executed. Queries that fail on the connection are
 * retried (with backoff, for up to `retryForMs`) on a fresh connection of the pool.
 */
export class PgStore {
  readonly where: string;
  readonly schema: string;
  readonly pool: Pool;
  readonly #retryForMs: number;

  private constructor(location: StoreLocation, pool: Pool, retryForMs: number) {
    this.where = location.where;
    this.schema = location.schema;
    this.pool = pool;
    this.#retryForMs = retryForMs;
  }

  /** Connects (failing at once with {@link StoreUnavailableError}) and creates the tables. */
  static async open(
    location: StoreLocation,
    options: { poolSize?: number; retryForMs?: number } = {},
  ): Promise<PgStore> {
    await probeStore(location);
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({
      ...location.config,
      // A worker's queries are few (a chunk's load, a batch of results): a few connections do.
      max: options.poolSize ?? 3,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 10_000,
      application_name: 'dogged',
    });
    // An idle client whose server went away: the pool drops it; the next query reconnects.
    pool.on('error', () => {});
    const store = new PgStore(location, pool, options.retryForMs ?? 60_000);
    await store.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
        `dogged:${location.schema}`,
      ]);
      await client.query(storeSchemaSql(location.schema));
    });
    return store;
  }

  /** `fn` with retries on connection failures. */
  async #retrying<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await retry(fn, {
        stop: stop.afterDelay(this.#retryForMs),
        wait: wait.fullJitter({ multiplier: 200, max: 3000 }),
        retry: retryIf.error(isTransientStoreError),
        reraise: true,
        name: 'PostgreSQL',
      });
    } catch (error) {
      if (isTransientStoreError(error))
        throw new StoreUnavailableError(this.where, (error as Error).message, { cause: error });
      throw error;
    }
  }

  /**
   * One query, retried on connection failures. `sql` may be `{ name, text }`: a named prepared
   * statement (parsed once per connection).
   */
  async query<R extends object>(
    sql: string | { readonly name: string; readonly text: string },
    params: unknown[] = [],
  ): Promise<R[]> {
    return this.#retrying(
      async () =>
        (
          await this.pool.query<R>(
            typeof sql === 'string' ? { text: sql, values: params } : { ...sql, values: params },
          )
        ).rows,
    );
  }

  /** `fn` in one transaction (retried whole on connection failures). */
  async transaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return this.#retrying(async () => {
      const client = await this.pool.connect();
      try {
        await client.query('BEGIN');
        const value = await fn(client);
        await client.query('COMMIT');
        return value;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    });
  }

  get #t(): string {
    return `${this.schema}.requests`;
  }

  async upsertJob(config: JobConfig): Promise<void> {
    await this.query(
      `INSERT INTO ${this.schema}.jobs (job, config, input) VALUES ($1, $2, $3)
       ON CONFLICT (job) DO UPDATE SET config = excluded.config, input = coalesce(excluded.input, ${this.schema}.jobs.input), updated_at = now()`,
      [config.job, JSON.stringify(config), config.input],
    );
  }

  /** The config a job was enqueued with, if the store has the job. */
  async jobConfig(job: string): Promise<JobConfig | undefined> {
    const rows = await this.query<{ config: unknown }>(
      `SELECT config FROM ${this.schema}.jobs WHERE job = $1`,
      [job],
    );
    const row = rows[0];
    if (!row) return undefined;
    // Refuses a config written by an incompatible dogged.
    return parseJobConfig(
      typeof row.config === 'string' ? row.config : JSON.stringify(row.config),
      job,
    );
  }

  /** The saved cookie jars of a job (`--cookies`): host → JSON. */
  async cookieJars(job: string): Promise<Map<string, string>> {
    const rows = await this.query<{ host: string; jar: string }>(
      `SELECT host, jar FROM ${this.schema}.cookies WHERE job = $1`,
      [job],
    );
    return new Map(rows.map((row) => [row.host, row.jar]));
  }

  /** Saves cookie jars of a job (`[host, JSON]`) in one statement, replacing earlier ones. */
  async saveCookieJars(
    job: string,
    jars: readonly (readonly [host: string, json: string])[],
  ): Promise<void> {
    if (jars.length === 0) return;
    await this.query(
      `INSERT INTO ${this.schema}.cookies (job, host, jar)
       SELECT $1, host, jar FROM unnest($2::text[], $3::text[]) AS j (host, jar)
       ON CONFLICT (job, host) DO UPDATE SET jar = excluded.jar, updated_at = now()`,
      [job, jars.map((j) => j[0]), jars.map((j) => j[1])],
    );
  }

  async hasJob(job: string): Promise<boolean> {
    const rows = await this.query(`SELECT 1 FROM ${this.schema}.jobs WHERE job = $1`, [job]);
    return rows.length > 0;
  }

  /**
   * Records new lines; see {@link insertLines}.
   */
  async insertLines(job: string, lines: readonly StoreLine[]): Promise<InsertResult> {
    return insertLines(this, job, lines);
  }

  /**
   * An attempt of a pending line starts: counts it as unfinished until its outcome is written.
   * Returns how many attempts of the line are unfinished now (this one included): more than
   * one means workers died (or were cut off) with the line in flight. Undefined when the line is
   * not pending any more.
   */
  async startAttempt(job: string, line: number): Promise<number | undefined> {
    const rows = await this.query<{ unfinished: number }>(
      `UPDATE ${this.#t} SET unfinished = unfinished + 1
       WHERE job = $1 AND line = $2 AND state = 'pending' RETURNING unfinished`,
      [job, line],
    );
    return rows[0]?.unfinished;
  }

  /** An attempt was cut off by a stop (not a crash): it no longer counts as unfinished. */
  async abandonAttempt(job: string, line: number): Promise<void> {
    await this.query(
      `UPDATE ${this.#t} SET unfinished = greatest(unfinished - 1, 0) WHERE job = $1 AND line = $2`,
      [job, line],
    );
  }

  /**
   * Fails a pending line with reason `crashed-runner` (workers died `crashes` times with it in
   * flight). False when it is not pending any more.
   */
  async failCrashed(
    job: string,
    line: number,
    crashes: number,
    worker: string,
    now: number,
  ): Promise<boolean> {
    const rows = await this.query(
      `UPDATE ${this.#t} SET state = 'failed', reason = 'crashed-runner', status = NULL,
         error_code = 'ERR_DOGGED_CRASHED_RUNNER', error_message = $3, finished_at = $4, worker = $5
       WHERE job = $1 AND line = $2 AND state = 'pending' RETURNING line`,
      [
        job,
        line,
        `the worker died ${crashes} times while this line was in flight (killed, crashed or out of memory); it is not fetched again`,
        now,
        worker,
      ],
    );
    return rows.length === 1;
  }

  /** Lines per state (`in_flight` is the queue's business: always 0 here). */
  async counts(job: string): Promise<StateCounts> {
    const rows = await this.query<{ state: string; n: number; retried: number }>(
      `SELECT state, count(*)::int AS n, count(*) FILTER (WHERE attempts > 0)::int AS retried
       FROM ${this.#t} WHERE job = $1 GROUP BY state`,
      [job],
    );
    const counts = noLines();
    for (const row of rows) {
      if (
        row.state === 'pending' ||
        row.state === 'done' ||
        row.state === 'failed' ||
        row.state === 'invalid'
      )
        counts[row.state] = row.n;
      if (row.state === 'pending') counts.retrying = row.retried;
    }
    return counts;
  }

  /** Whether any line of the job is still pending (the partial index answers it at once). */
  async anyPending(job: string): Promise<boolean> {
    const rows = await this.query<{ pending: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM ${this.#t} WHERE job = $1 AND state = 'pending') AS pending`,
      [job],
    );
    return rows[0]?.pending ?? false;
  }

  /** The chunks (of `size` lines) that hold pending lines, in order. */
  async pendingChunks(job: string, size: number): Promise<number[]> {
    const rows = await this.query<{ k: number }>(
      `SELECT DISTINCT (line - 1) / $2::int AS k FROM ${this.#t} WHERE job = $1 AND state = 'pending' ORDER BY k`,
      [job, size],
    );
    return rows.map((r) => r.k);
  }

  /**
   * Refreshes the planner's statistics of the lines (after the first lines of a job): of the
   * three columns the workers' queries select on, from a sample of 3,000 rows. That is all the
   * planner needs to pick the primary key for the batched writes, and it costs the same on a
   * store of millions of lines: a whole-table `ANALYZE` samples 30,000 rows of every column,
   * bodies included, and took 0.5 to 1 s of the server's CPU on a store of 80,000 finished lines.
   */
  async analyze(): Promise<void> {
    await this.transaction(async (client) => {
      await client.query(`SET LOCAL default_statistics_target = ${ANALYZE_TARGET}`);
      await client.query(`ANALYZE ${this.#t} (job, line, state)`);
    });
  }

  /** When the earliest pending line is due, if any. */
  async nextDueAt(job: string): Promise<number | undefined> {
    const rows = await this.query<{ at: number | null }>(
      `SELECT min(next_attempt_at)::float8 AS at FROM ${this.#t} WHERE job = $1 AND state = 'pending'`,
      [job],
    );
    return rows[0]?.at ?? undefined;
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => {});
  }
}
