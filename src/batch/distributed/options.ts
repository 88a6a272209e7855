import type { Dispatcher } from 'undici';
import { RetryPolicy } from '../../http/policy.js';
import type { ProxyPool } from '../../http/proxy-pool.js';
import { resolveTimeouts, type TimeoutOption } from '../../http/timeouts.js';
import { assertKnownKeys, assertPlainObject, showValue } from '../../retry/validate.js';
import type { HostRate } from '../host-limits.js';
import type { BatchInput } from '../input.js';
import { BATCH_TIMEOUTS, batchMaxBodySize } from '../options.js';
import type { BatchProgress, BatchRetryEvent } from '../progress-state.js';
import type { FleetBudgetSpec, RetrySpec } from './job-config.js';
import { assertJobName } from './job-config.js';

/** Where a distributed job lives: Redis for the work, PostgreSQL for the results. */
export interface DistributedTarget {
  /**
   * The Redis of the queue: `redis://HOST:PORT/DB` (`rediss://` for TLS).
   * @example { queue: 'redis://127.0.0.1:6379/0' }
   */
  queue: string;
  /**
   * The PostgreSQL of the results; `?schema=NAME` picks the schema of dogged's tables.
   * @default schema 'dogged'
   * @example { store: 'postgres://dogged@127.0.0.1:5432/crawl' }
   */
  store: string;
  /**
   * The job's name: its lines are keyed by (job, line) in both.
   * @example { job: 'nightly-crawl' }
   */
  job: string;
}

/** What a worker process runs with (`dogged worker`, `runWorker`). */
export interface WorkerTuning {
  /**
   * Lines in flight at once in this process (per job).
   * @default 16
   * @example { concurrency: 64 }
   */
  concurrency?: number;
  /**
   * How long a line's lock lasts without renewal: a worker that dies holds its lines this long
   * before another worker takes them over (renewed every half of it while a line runs).
   * @default 10000
   * @example { lockDurationMs: 30_000 }
   */
  lockDurationMs?: number;
  /**
   * How long lines in flight may still finish after a stop.
   * @default 2000
   * @example { graceMs: 0 }
   */
  graceMs?: number;
  /**
   * The undici dispatcher to send through (a `ProxyAgent`...).
   * @default a keep-alive Agent
   * @example { dispatcher: new ProxyAgent('http://127.0.0.1:3128') }
   */
  dispatcher?: Dispatcher;
  /**
   * Proxies to send through: a `ProxyPool`, or proxy URLs that become one with its defaults.
   * A proxy that answers with a ban status (403, 429 by default) or fails is benched, and the
   * attempt moves on at once through another (rotations do not count as attempts).
   * @default undefined (direct)
   * @example { proxies: ['http://127.0.0.1:3128', 'http://127.0.0.1:3129'] }
   */
  proxies?: ProxyPool | readonly (string | URL)[];
  /**
   * Stops gracefully (Ctrl-C): no new lines; lines in flight get `graceMs`.
   * @default undefined
   * @example { signal: controller.signal }
   */
  signal?: AbortSignal;
  /**
   * Every attempt of this process that failed and was rescheduled.
   * @default undefined
   * @example { onRetry: (e) => console.error(e.url, e.delayMs) }
   */
  onRetry?: (event: BatchRetryEvent) => void;
}

/**
 * Options of a distributed batch (`runBatch` with `queue`, `store` and `job`). Everything a
 * worker applies (policy, limits, timeouts, headers) is written to the job, so every worker of
 * the job, on any machine, applies the same.
 */
export interface DistributedBatchOptions extends DistributedTarget, WorkerTuning {
  /**
   * The lines (as `runBatch`'s `input`). Lines already recorded for the job are not added again;
   * lines appended since add work. Omit it to join the job's remaining work.
   * @default undefined
   * @example { input: 'urls.txt' }
   */
  input?: BatchInput;
  /**
   * Only record and enqueue the input; workers (`dogged worker`) do the fetching. The result
   * then tells the job's lines by state (`counts`, `summary.total`), read in one query; the
   * summary's tallies (statuses, failures, retries, hosts) are left empty: the job has not run
   * here, and tallying it would read every row of the job several times (`dogged status --queue
   * --store --job` gives the full summary).
   * @default false
   * @example { enqueueOnly: true }
   */
  enqueueOnly?: boolean;
  /**
   * Input lines per queue job (a worker takes a chunk, loads its pending lines in one query and
   * writes their outcomes in batches). Smaller chunks spread a small input over more workers;
   * larger ones cost less per line. A job keeps the chunk size it was first enqueued with.
   * @default 250
   * @example { chunkSize: 1000 }
   */
  chunkSize?: number;
  /**
   * The seed of the jitter: each line's backoffs are drawn from (seed, line, attempt), so a
   * line waits the same in every run of the job, whichever worker runs it.
   * @default undefined (unseeded)
   * @example { seed: 7 }
   */
  seed?: number;
  /**
   * Keep cookies: one jar per `host:port` in each worker, saved in the store with the outcomes
   * whose responses set them; a worker that starts (or restarts) begins from the saved jars.
   * Workers running at the same time each keep their own (a login one of them sees reaches the
   * others when they next start). Off by default, as in the local runner (see its `cookies`).
   * @default false
   * @example { cookies: true }
   */
  cookies?: boolean;
  /**
   * Offer HTTP/2 to https hosts (ALPN `h2`), in every worker of the job.
   * @default false
   * @example { http2: true }
   */
  http2?: boolean;
  /**
   * Requests in flight per `host:port`, all workers together.
   * @default 4
   * @example { perHost: 8 }
   */
  perHost?: number;
  /**
   * How each host is paced, all workers together: `'adaptive'` (find the host's limit from its
   * throttles, shared through Redis), a number (request starts per second at most, and lower
   * when the host throttles) or `'none'`. A throttle pauses the host for every worker.
   * @default 'adaptive'
   * @example { rate: 5 }
   */
  rate?: HostRate;
  /**
   * How long a line may be turned away by its host for rate limiting (429s, 503s with
   * Retry-After), from its first attempt; such answers do not spend its retries.
   * @default 21600000 (6 h)
   * @example { giveUpAfter: 3_600_000 }
   */
  giveUpAfter?: number;
  /**
   * The retry policy, as plain data (every worker rebuilds the same policy from it).
   * @default { total: 5, jitter: 'full', backoff: 500, maxBackoff: 30000 }
   * @example { retry: { total: 8, statusForcelist: [429, 503] } }
   */
  retry?: RetrySpec;
  /**
   * Timeouts of each attempt: ms, `[connect, read]` or `{ connect, read, attempt, total }`
   * (`attempt`: one whole attempt, head and body).
   * @default { connect: 10000, read: 30000, attempt: 600000 }
   * @example { timeout: { connect: 5000, read: 30_000, attempt: 120_000 } }
   */
  timeout?: TimeoutOption;
  /**
   * The largest response body accepted, in bytes; a larger one fails its line with reason
   * `body-too-large`. With bodies `'db'` (kept in PostgreSQL) 100 MiB unless set, at most
   * 900 MB; with `'none'` no limit unless set (bodies are counted, never held).
   * @default 104857600 (100 MiB) with bodies 'db'; none with 'none'
   * @example { maxBodySize: 10_000_000 }
   */
  maxBodySize?: number;
  /**
   * Headers sent with every request (a JSONL line's own headers win).
   * @default { 'user-agent': 'dogged/<version>' }
   * @example { headers: { authorization: 'Bearer abc' } }
   */
  headers?: Record<string, string>;
  /**
   * Response bodies: in the store (`'db'`) or read and dropped (`'none'`).
   * @default 'db'
   * @example { bodies: 'none' }
   */
  bodies?: 'db' | 'none';
  /**
   * The longest Retry-After honoured (by rescheduling); longer fails the line.
   * @default 86400000 (24 h)
   * @example { maxRetryAfter: 3_600_000 }
   */
  maxRetryAfter?: number;
  /**
   * Stop (result `'deferred'`) rather than wait longer than this for lines scheduled later.
   * @default Infinity
   * @example { maxWait: 60_000 }
   */
  maxWait?: number;
  /**
   * The fleet-wide retry budget per host, or `false` for none.
   * @default { percentCanRetry: 0.2, minRetriesPerSecond: 10, ttlMs: 10000 }
   * @example { budget: { percentCanRetry: 0.1 } }
   */
  budget?: Partial<FleetBudgetSpec> | false;
  /**
   * After a 429/503 with Retry-After from a host, hold every worker off that host until then.
   * @default true
   * @example { cooldown: false }
   */
  cooldown?: boolean;
  /**
   * Called with the job's counters (fleet-wide) every `progressIntervalMs`.
   * @default undefined
   * @example { onProgress: (p) => console.log(`${p.finished}/${p.total}`) }
   */
  onProgress?: (progress: BatchProgress) => void;
  /**
   * How often `onProgress` is called.
   * @default 250
   * @example { progressIntervalMs: 1000 }
   */
  progressIntervalMs?: number;
}

const KEYS = [
  'queue',
  'store',
  'job',
  'input',
  'enqueueOnly',
  'concurrency',
  'chunkSize',
  'seed',
  'cookies',
  'http2',
  'perHost',
  'rate',
  'giveUpAfter',
  'retry',
  'timeout',
  'maxBodySize',
  'headers',
  'bodies',
  'maxRetryAfter',
  'maxWait',
  'budget',
  'cooldown',
  'signal',
  'graceMs',
  'onProgress',
  'progressIntervalMs',
  'onRetry',
  'lockDurationMs',
  'dispatcher',
  'proxies',
] as const;

function positive(name: string, value: unknown, integer: boolean): void {
  if (value === undefined) return;
  if (
    typeof value !== 'number' ||
    !(value > 0) ||
    !Number.isFinite(value) ||
    (integer && !Number.isInteger(value))
  )
    throw new TypeError(
      `runBatch: ${name} must be a positive ${integer ? 'integer' : 'number'}, got ${showValue(value)}`,
    );
}

/** Checks the options of a distributed batch loudly at the boundary. */
export function checkDistributedOptions(options: DistributedBatchOptions): void {
  assertPlainObject('runBatch options', options);
  assertKnownKeys('runBatch', options as unknown as Record<string, unknown>, KEYS, {
    db: 'a distributed batch has no db: give queue, store and job, or only db',
    redis: 'use queue',
    postgres: 'use store',
  });
  if (typeof options.queue !== 'string')
    throw new TypeError(`runBatch: queue must be a redis:// URL, got ${showValue(options.queue)}`);
  if (typeof options.store !== 'string')
    throw new TypeError(
      `runBatch: store must be a postgres:// URL, got ${showValue(options.store)}`,
    );
  assertJobName(options.job);
  positive('concurrency', options.concurrency, true);
  positive('perHost', options.perHost, true);
  positive('chunkSize', options.chunkSize, true);
  if (
    options.seed !== undefined &&
    (!Number.isInteger(options.seed) || options.seed < 0 || options.seed > 0xffff_ffff)
  )
    throw new TypeError(
      `runBatch: seed must be an integer from 0 to 4294967295, got ${showValue(options.seed)}`,
    );
  for (const name of ['cookies', 'http2'] as const)
    if (options[name] !== undefined && typeof options[name] !== 'boolean')
      throw new TypeError(
        `runBatch: ${name} must be true or false, got ${showValue(options[name])}`,
      );
  if (options.chunkSize !== undefined && options.chunkSize > 100_000)
    throw new TypeError(
      `runBatch: chunkSize must be at most 100000 lines, got ${showValue(options.chunkSize)}`,
    );
  if (options.rate !== 'adaptive' && options.rate !== 'none') positive('rate', options.rate, false);
  positive('giveUpAfter', options.giveUpAfter, false);
  positive('lockDurationMs', options.lockDurationMs, false);
  if (
    options.retry !== undefined &&
    (options.retry === null ||
      typeof options.retry !== 'object' ||
      options.retry instanceof RetryPolicy)
  )
    throw new TypeError(
      'runBatch: a distributed batch takes retry as plain data ({ total, jitter, backoff, maxBackoff, statusForcelist }), so that every worker rebuilds the same policy',
    );
  if (options.bodies !== undefined && options.bodies !== 'db' && options.bodies !== 'none')
    throw new TypeError(
      `runBatch: a distributed batch stores bodies in 'db' or 'none', got ${showValue(options.bodies)}`,
    );
  batchMaxBodySize('runBatch', options.maxBodySize, options.bodies ?? 'db');
  resolveTimeouts(options.timeout, BATCH_TIMEOUTS, 'runBatch: timeout');
}
