import type { Dispatcher } from 'undici';
import { checkMaxBodySize, DEFAULT_MAX_BODY_SIZE } from '../http/body-limit.js';
import type { TlsOptions } from '../http/dispatchers.js';
import type { HeadersLike } from '../http/headers.js';
import { RetryPolicy, type RetryPolicyOptions } from '../http/policy.js';
import type { ProxyPool } from '../http/proxy-pool.js';
import {
  DEFAULT_TIMEOUTS,
  type ResolvedTimeouts,
  resolveTimeouts,
  type TimeoutOption,
} from '../http/timeouts.js';
import type { RandomSource } from '../retry/random.js';
import { assertKnownKeys, assertPlainObject, showValue } from '../retry/validate.js';
import type { BodiesOption } from './bodies.js';
import type { HostRate } from './host-limits.js';
import type { BatchInput } from './input.js';
import type { BatchProgress, BatchRetryEvent } from './progress-state.js';

/** Options of {@link runBatch}. Durations are milliseconds. */
export interface BatchOptions {
  /**
   * Path of the SQLite journal. Created if missing; an existing journal is resumed.
   * @example { db: 'run.sqlite' }
   */
  db: string;
  /**
   * The lines to fetch: a file of URLs or JSONL lines `{ url, method, headers, body, json,
   * key, idempotencyKey }`, `'-'` for stdin, a stream, or an (async) iterable of lines. Omit it
   * to finish the work already in the journal. Lines appended since the last run add work.
   * @default undefined (only the journal's pending lines)
   * @example { input: 'urls.txt' }
   */
  input?: BatchInput;
  /**
   * Requests in flight at once, all hosts together.
   * @default 16
   * @example { concurrency: 64 }
   */
  concurrency?: number;
  /**
   * Requests in flight at once to one `host:port`.
   * @default 4
   * @example { perHost: 8 }
   */
  perHost?: number;
  /**
   * How each host is paced. `'adaptive'`: no limit until the host throttles (a 429, or a 503
   * with Retry-After), then paced just under the rate it was seen to accept, probing upward
   * again from time to time. A number: request starts per second per host at most (spaced
   * evenly), and lower when the host throttles. `'none'`: no pacing. Whatever the choice, a
   * throttle pauses the whole host (for its Retry-After), not only the line that got it.
   * @default 'adaptive'
   * @example { rate: 2 } // at most one request every 500 ms per host
   */
  rate?: HostRate;
  /**
   * How long a line may be turned away by its host for rate limiting (429s, 503s with
   * Retry-After), from its first attempt. Such answers do not spend the line's retries (they
   * are the host's signal, not the line's failure); a line fails with reason `rate-limited` only
   * when the host has not let it through by then.
   * @default 21600000 (6 h)
   * @example { giveUpAfter: 3_600_000 } // 1 h
   */
  giveUpAfter?: number;
  /**
   * The retry policy (urllib3 semantics), applied durably: each retry is a journal entry with
   * its due time, and the policy's counters are rebuilt from the journal after a restart.
   * @default { total: 5 } (the RetryPolicy defaults otherwise)
   * @example { retry: { total: 8, statusForcelist: [429, 503] } }
   */
  retry?: RetryPolicy | RetryPolicyOptions;
  /**
   * Timeouts of each attempt (`{ connect, read, attempt, total }`, `[connect, read]` or one
   * number for connect and read). `attempt` bounds one whole attempt, head and body, so a body
   * that drips a byte now and then fails the attempt (retriable) instead of holding its slot for
   * ever. `Infinity` means no limit.
   * @default { connect: 10000, read: 30000, attempt: 600000 }
   * @example { timeout: { connect: 5000, read: 30_000, attempt: 120_000 } }
   */
  timeout?: TimeoutOption;
  /**
   * The largest response body accepted, in bytes; a larger one fails its line at once with
   * reason `body-too-large` (not retried), reading no more than the limit. With `bodies: 'db'`
   * (bodies held in memory, then in the journal) it is 100 MiB unless set, and at most
   * {@link MAX_DB_BODY_SIZE}; with `'none'` or `{ dir }` bodies are streamed, never held, and
   * have no limit unless one is set.
   * @default 104857600 (100 MiB) with bodies 'db'; none with 'none' or { dir }
   * @example { maxBodySize: 10_000_000 } // 10 MB
   */
  maxBodySize?: number;
  /**
   * Headers sent with every request (a JSONL line's own headers win).
   * @default { 'user-agent': 'dogged/<version>' }
   * @example { headers: { authorization: 'Bearer abc' } }
   */
  headers?: HeadersLike;
  /**
   * Where response bodies go: the journal (`'db'`), nowhere (`'none'`: read, then dropped),
   * or one file per line (`{ dir }`).
   * @default 'db'
   * @example { bodies: { dir: 'out/' } }
   */
  bodies?: BodiesOption;
  /**
   * The longest Retry-After the batch honours; the line is rescheduled (never slept on), so
   * an hour is fine. A longer one fails the line with `ERR_DOGGED_RETRY_AFTER_TOO_LONG`.
   * @default 86400000 (24 h)
   * @example { maxRetryAfter: 3_600_000 }
   */
  maxRetryAfter?: number;
  /**
   * When nothing is left but lines scheduled later than this from now, stop (result
   * `'deferred'`) instead of waiting; running the batch again later resumes them.
   * @default Infinity (wait for them)
   * @example { maxWait: 60_000 }
   */
  maxWait?: number;
  /**
   * The undici dispatcher to send through (a `ProxyAgent`, a mock...).
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
   * Keep cookies: one jar per `host:port` for the run, so a host's lines send the cookies it
   * set for earlier ones (a login, an anti-bot cookie), never another host's. The jars are
   * written to the journal with the outcomes whose responses set them, so a resumed run (or
   * `retry-failed`) keeps the sessions. Off by default: lines run in parallel and in any
   * order, so a cookie that one line's response sets changes what another line fetches (a
   * different result on every run); turn it on for hosts that need a session.
   * Bounded: 4,096 bytes per cookie, 180 cookies per host (oldest evicted).
   * @default false
   * @example { cookies: true }
   */
  cookies?: boolean;
  /**
   * Offer HTTP/2 to https hosts (ALPN `h2`; HTTP/1.1 with a host that does not speak it).
   * Stream resets and GOAWAY are retried as their HTTP/1.1 counterparts.
   * @default false
   * @example { http2: true }
   */
  http2?: boolean;
  /**
   * TLS settings for https hosts: `ca` to trust (a private or test CA), client `cert` and
   * `key`, `rejectUnauthorized` (as the Session's `tls`). Not with `dispatcher`.
   * @default Node's defaults (verify against its root certificates)
   * @example { tls: { ca: readFileSync('test-ca.pem') } }
   */
  tls?: TlsOptions;
  /**
   * The random source of jittered backoffs (seed it for reproducible schedules).
   * @default Math.random
   * @example { random: seededRandom(7) }
   */
  random?: RandomSource;
  /**
   * Stops the run gracefully: no new attempts; attempts in flight get `graceMs` to finish,
   * then are cut off and their lines go back to pending. The result is `'interrupted'`.
   * @default undefined
   * @example { signal: AbortSignal.timeout(60_000) }
   */
  signal?: AbortSignal;
  /**
   * How long attempts in flight may still finish after a stop.
   * @default 2000
   * @example { graceMs: 0 }
   */
  graceMs?: number;
  /**
   * Called with the run's counters when they change, at most every `progressIntervalMs`.
   * @default undefined
   * @example { onProgress: (p) => console.log(`${p.done}/${p.total}`) }
   */
  onProgress?: (progress: BatchProgress) => void;
  /**
   * How often `onProgress` may be called.
   * @default 200
   * @example { progressIntervalMs: 1000 }
   */
  progressIntervalMs?: number;
  /**
   * Extra name/value pairs to keep in the journal's `meta` table, written once the run holds
   * the journal (the CLI keeps its flags there for `dogged retry-failed`).
   * @default undefined
   * @example { meta: { job: 'nightly-crawl' } }
   */
  meta?: Readonly<Record<string, string>>;
  /**
   * Called for every attempt that failed and was rescheduled (the CLI's `-v`).
   * @default undefined
   * @example { onRetry: (e) => console.error(`${e.url} retry in ${e.delayMs} ms`) }
   */
  onRetry?: (event: BatchRetryEvent) => void;
}

const KEYS = [
  'db',
  'input',
  'concurrency',
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
  'dispatcher',
  'proxies',
  'cookies',
  'http2',
  'tls',
  'random',
  'signal',
  'graceMs',
  'onProgress',
  'progressIntervalMs',
  'onRetry',
  'meta',
] as const;

/** The default attempt deadline of a batch (`timeout.attempt`): 10 minutes. */
export const BATCH_ATTEMPT_TIMEOUT_MS = 600_000;

/** A batch's timeouts: the Session's defaults, and a finite attempt deadline. */
export const BATCH_TIMEOUTS: ResolvedTimeouts = Object.freeze({
  ...DEFAULT_TIMEOUTS,
  attempt: BATCH_ATTEMPT_TIMEOUT_MS,
});

/**
 * The largest body `bodies: 'db'` can keep: SQLite and PostgreSQL hold at most 1 GB in one
 * value, and a row needs room for the rest.
 */
export const MAX_DB_BODY_SIZE = 900_000_000;

/**
 * The body limit of a batch: `maxBodySize`, or 100 MiB when bodies go to the journal (held in
 * memory first); a stream to a file or to nowhere has none unless set.
 */
export function batchMaxBodySize(
  where: string,
  value: unknown,
  bodies: 'db' | 'none' | 'dir',
): number | undefined {
  if (value === undefined) return bodies === 'db' ? DEFAULT_MAX_BODY_SIZE : undefined;
  const limit = checkMaxBodySize(`${where}: maxBodySize`, value);
  if (bodies === 'db' && limit > MAX_DB_BODY_SIZE)
    throw new TypeError(
      `${where}: maxBodySize of ${limit} bytes is more than bodies 'db' can keep (${MAX_DB_BODY_SIZE} bytes: SQLite and PostgreSQL hold at most 1 GB in one value); keep bodies in files (--bodies dir:PATH) or none, or lower --max-body`,
    );
  return limit;
}

/** The default `giveUpAfter`: 6 hours. */
export const GIVE_UP_AFTER_MS = 6 * 3_600_000;
/** The longest pause of a host after throttles without Retry-After (as the default max backoff). */
export const HOST_MAX_PAUSE_MS = 30_000;

/** The defaults of a batch's retry policy: a batch can afford more patience than one call. */
export const BATCH_RETRY_DEFAULTS: RetryPolicyOptions = Object.freeze({ total: 5 });

function positiveInteger(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    throw new TypeError(`runBatch: ${name} must be a positive integer, got ${showValue(value)}`);
  return value;
}

function flag(name: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean')
    throw new TypeError(`runBatch: ${name} must be true or false, got ${showValue(value)}`);
  return value;
}

function duration(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0)
    throw new TypeError(
      `runBatch: ${name} must be a non-negative number of milliseconds, got ${showValue(value)}`,
    );
  return value;
}

/** The checked options with defaults applied. */
export interface ResolvedBatchOptions {
  readonly concurrency: number;
  readonly perHost: number;
  readonly rate: HostRate;
  /** The longest pause of a host after throttles without Retry-After. */
  readonly maxPauseMs: number;
  readonly giveUpAfter: number;
  readonly random: RandomSource | undefined;
  readonly policy: RetryPolicy;
  readonly maxRetryAfter: number;
  readonly maxWait: number;
  readonly graceMs: number;
  readonly progressIntervalMs: number;
  /** Each attempt's timeouts, the batch's attempt deadline included. */
  readonly timeouts: ResolvedTimeouts;
  /** The body limit (undefined: none, bodies are streamed). */
  readonly maxBodySize: number | undefined;
  /** One cookie jar per host, kept in the journal. */
  readonly cookies: boolean;
  /** Offer HTTP/2 to https hosts. */
  readonly http2: boolean;
}

/** The kind of a `bodies` option. */
export function bodiesKind(bodies: BodiesOption | undefined): 'db' | 'none' | 'dir' {
  return bodies === undefined || bodies === 'db' ? 'db' : bodies === 'none' ? 'none' : 'dir';
}

/** Checks `options` loudly at the boundary and applies the defaults. */
export function resolveBatchOptions(options: BatchOptions): ResolvedBatchOptions {
  assertPlainObject('runBatch options', options);
  assertKnownKeys('runBatch', options as unknown as Record<string, unknown>, KEYS, {
    database: 'use db',
    journal: 'use db',
    retries: 'use retry: { total: n }',
    per_host: 'use perHost',
  });
  if (typeof options.db !== 'string' || options.db === '')
    throw new TypeError(`runBatch: db must be the journal's path, got ${showValue(options.db)}`);
  const rate = options.rate ?? 'adaptive';
  if (
    rate !== 'adaptive' &&
    rate !== 'none' &&
    (typeof rate !== 'number' || !(rate > 0) || !Number.isFinite(rate))
  )
    throw new TypeError(
      `runBatch: rate must be 'adaptive', 'none' or a positive number of requests per second, got ${showValue(options.rate)}`,
    );
  const retry = options.retry;
  const policy =
    retry instanceof RetryPolicy
      ? retry
      : new RetryPolicy({
          ...BATCH_RETRY_DEFAULTS,
          ...(options.random && { random: options.random }),
          ...retry,
        });
  return {
    concurrency: positiveInteger('concurrency', options.concurrency, 16),
    perHost: positiveInteger('perHost', options.perHost, 4),
    rate,
    maxPauseMs: HOST_MAX_PAUSE_MS,
    giveUpAfter: duration('giveUpAfter', options.giveUpAfter, GIVE_UP_AFTER_MS),
    random: options.random,
    policy,
    maxRetryAfter: duration('maxRetryAfter', options.maxRetryAfter, 86_400_000),
    maxWait: duration('maxWait', options.maxWait, Number.POSITIVE_INFINITY),
    graceMs: duration('graceMs', options.graceMs, 2000),
    progressIntervalMs: duration('progressIntervalMs', options.progressIntervalMs, 200),
    timeouts: resolveTimeouts(options.timeout, BATCH_TIMEOUTS, 'runBatch: timeout'),
    maxBodySize: batchMaxBodySize('runBatch', options.maxBodySize, bodiesKind(options.bodies)),
    cookies: flag('cookies', options.cookies),
    http2: flag('http2', options.http2),
  };
}
