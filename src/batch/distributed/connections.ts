import type { ConnectionOptions } from 'bullmq';
import type { RedisOptions } from 'ioredis';
import type { PoolConfig } from 'pg';
import { redactText, redactUrl } from '../../http/redact.js';
import { QueueUnavailableError, StoreUnavailableError } from './errors.js';

/** Where the queue is: ioredis options parsed from `redis://[user:pass@]host[:port][/db]`. */
export interface QueueLocation {
  /** The URL with its credentials shown as `***@`, for messages. */
  readonly where: string;
  readonly options: RedisOptions;
}

/** Where the store is: a pg pool config and the schema that holds dogged's tables. */
export interface StoreLocation {
  readonly where: string;
  readonly config: PoolConfig;
  readonly schema: string;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Parses a Redis URL (`redis://HOST:PORT/DB`, `rediss://` for TLS).
 * @example parseQueueUrl('redis://127.0.0.1:6379/3').options.db // 3
 */
export function parseQueueUrl(text: string): QueueLocation {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(
      `--queue must be a URL such as redis://127.0.0.1:6379/0 (a password holding / # ? @ must be percent-encoded), got ${JSON.stringify(redactUrl(text))}`,
    );
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    throw new TypeError(
      `--queue must be a redis:// or rediss:// URL, got ${JSON.stringify(redactUrl(text))}`,
    );
  if (url.hash || url.search)
    throw new TypeError(
      `--queue must be redis://[user:password@]HOST:PORT/DB with no ?query or #fragment (a password holding / # ? @ must be percent-encoded), got ${JSON.stringify(redactUrl(text))}`,
    );
  const path = url.pathname.replace(/^\//, '');
  const db = path === '' ? 0 : Number(path);
  if (!Number.isInteger(db) || db < 0 || db > 1_000_000)
    throw new TypeError(
      `the database of --queue must be a number such as /0, got ${JSON.stringify(path)}`,
    );
  const options: RedisOptions = {
    host: url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: url.port ? Number(url.port) : 6379,
    db,
    ...(url.username && { username: decodeURIComponent(url.username) }),
    ...(url.password && { password: decodeURIComponent(url.password) }),
    ...(url.protocol === 'rediss:' && { tls: {} }),
  };
  return { where: redactUrl(text) ?? text, options };
}

/** The connection options BullMQ gets (it opens its own connections, which wait out a restart). */
export function bullConnection(location: QueueLocation): ConnectionOptions {
  const o = location.options;
  return {
    ...(o.host !== undefined && { host: o.host }),
    ...(o.port !== undefined && { port: o.port }),
    ...(o.db !== undefined && { db: o.db }),
    ...(o.username !== undefined && { username: o.username }),
    ...(o.password !== undefined && { password: o.password }),
    ...(o.tls !== undefined && { tls: o.tls }),
    maxRetriesPerRequest: null,
  };
}

/**
 * Parses a PostgreSQL URL. An extra `schema` parameter names the schema of dogged's tables
 * (default `dogged`); the rest is node-postgres' connection string.
 * @example parseStoreUrl('postgres://postgres@127.0.0.1/test?schema=crawl').schema // 'crawl'
 */
export function parseStoreUrl(text: string): StoreLocation {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(
      `--store must be a URL such as postgres://user@127.0.0.1:5432/db (a password holding / # ? @ must be percent-encoded), got ${JSON.stringify(redactUrl(text))}`,
    );
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
    throw new TypeError(
      `--store must be a postgres:// URL, got ${JSON.stringify(redactUrl(text))}`,
    );
  if (url.hash)
    throw new TypeError(
      `--store must be postgres://[user:password@]HOST:PORT/DB with no #fragment (a password holding / # ? @ must be percent-encoded), got ${JSON.stringify(redactUrl(text))}`,
    );
  const schema = url.searchParams.get('schema') ?? 'dogged';
  if (!SCHEMA_NAME.test(schema))
    throw new TypeError(
      `the schema of --store must be a lower-case SQL name, got ${JSON.stringify(schema)}`,
    );
  url.searchParams.delete('schema');
  return {
    where: redactUrl(url.href) ?? url.href,
    config: { connectionString: url.href },
    schema,
  };
}

function reasonOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length)
    return redactText(
      error.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))).join('; '),
    );
  return redactText(error instanceof Error ? error.message || error.name : String(error));
}

/**
 * Checks that Redis answers (one PING with a short connect timeout, no retries), so a run that
 * cannot reach it fails at once with a {@link QueueUnavailableError} naming where.
 */
export async function probeQueue(location: QueueLocation, timeoutMs = 5000): Promise<void> {
  const { Redis } = await import('ioredis');
  const probe = new Redis({
    ...location.options,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  // The 'error' event carries the socket's error (ECONNREFUSED...); connect() only says "closed".
  let socketError: unknown;
  probe.on('error', (error: unknown) => {
    socketError ??= error;
  });
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    const cause = socketError ?? error;
    throw new QueueUnavailableError(location.where, reasonOf(cause), { cause });
  } finally {
    probe.disconnect();
  }
}

/** Checks that PostgreSQL answers; a {@link StoreUnavailableError} naming where otherwise. */
export async function probeStore(location: StoreLocation, timeoutMs = 5000): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ ...location.config, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    throw new StoreUnavailableError(location.where, reasonOf(error), { cause: error });
  } finally {
    await client.end().catch(() => {});
  }
}
