/**
 * The services and tools the test suite needs, and the probes the preflight (global-setup.ts)
 * runs before any test: each answers `undefined` when the thing is there, or what is missing
 * and the command or setting that provides it. Probes are quick (short timeouts) and run in
 * parallel.
 */
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { PG_URL, REDIS_URL_BASE } from '../batch/distributed/distributed-support.js';
import { privatePostgresUnavailable } from '../batch/distributed/private-postgres.js';
import { tinyproxyPath } from '../http/proxy-support.js';
import { haproxyPath, nginxPath } from '../limits/limiter-process.js';
import { SERVICES, type Service } from './service-names.js';

/** The browser the report test drives (Debian's package). */
export const CHROMIUM = process.env.DOGGED_TEST_CHROMIUM ?? '/usr/bin/chromium';

export { SERVICES, type Service };

/** Why a service cannot be used (`what`), and the command or setting that provides it (`fix`). */
export interface Missing {
  readonly what: string;
  readonly fix: string;
}

/** Per service: undefined when available. */
export type Availability = Record<Service, Missing | undefined>;

/** The preflight's line for a missing service. */
export function describeMissing(m: Missing): string {
  return `${m.what}: ${m.fix}`;
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** Set by test/global-setup.ts (the preflight). */
    services: Availability;
  }
}

/** The Redis and PostgreSQL the tests use (DOGGED_TEST_REDIS, DOGGED_TEST_POSTGRES). */
const REDIS_URL = REDIS_URL_BASE;
const POSTGRES_URL = PG_URL;

const SERVICES_HINT =
  '`npm run services` installs and starts Redis and PostgreSQL on 127.0.0.1 (Debian/Ubuntu, sudo)';
const PROBE_TIMEOUT_MS = 2000;

/** Credentials in a URL are not for printing. */
function shown(url: string): string {
  return url.replace(/\/\/[^/@]*@/, '//***@');
}

function onPath(name: string, extra: readonly string[] = []): boolean {
  const candidates = [
    ...extra,
    ...(process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, name)),
  ];
  return candidates.some((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return statSync(candidate).isFile();
    } catch {
      return false;
    }
  });
}

function firstLine(error: unknown): string {
  const e = error as { message?: string; code?: string };
  const text = e.message || e.code || String(error);
  return text.split('\n')[0] as string;
}

/** `work`, or a rejection once PROBE_TIMEOUT_MS have passed (a server that accepts and is silent). */
async function withDeadline(work: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)),
      PROBE_TIMEOUT_MS,
    );
  });
  work.catch(() => {}); // its late failure, after the deadline, is not news
  try {
    await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function probeRedis(): Promise<Missing | undefined> {
  const env = process.env.DOGGED_TEST_REDIS ? ' (DOGGED_TEST_REDIS)' : '';
  const where = `${shown(REDIS_URL)}${env}`;
  const client = new Redis(REDIS_URL, {
    lazyConnect: true,
    connectTimeout: PROBE_TIMEOUT_MS,
    commandTimeout: PROBE_TIMEOUT_MS,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  // ioredis rejects with "Connection is closed."; the cause (ECONNREFUSED...) is an event.
  let cause: unknown;
  client.on('error', (error) => {
    cause ??= error;
  });
  try {
    await withDeadline(
      (async () => {
        await client.connect();
        await client.ping();
      })(),
    );
    return undefined;
  } catch (error) {
    return {
      what: `Redis: nothing answers at ${where} (${firstLine(cause ?? error)})`,
      fix: `${SERVICES_HINT}, or set DOGGED_TEST_REDIS=redis://HOST:PORT`,
    };
  } finally {
    client.disconnect();
  }
}

async function probePostgres(): Promise<Missing | undefined> {
  const env = process.env.DOGGED_TEST_POSTGRES ? ' (DOGGED_TEST_POSTGRES)' : '';
  const where = `${shown(POSTGRES_URL)}${env}`;
  const client = new pg.Client({
    connectionString: POSTGRES_URL,
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
    query_timeout: PROBE_TIMEOUT_MS,
  });
  client.on('error', () => {});
  try {
    await withDeadline(
      (async () => {
        await client.connect();
        await client.query('SELECT 1');
      })(),
    );
    return undefined;
  } catch (error) {
    return {
      what: `PostgreSQL: no login at ${where} (${firstLine(error)})`,
      fix: `the tests need trust login and a database named test: ${SERVICES_HINT}, or set DOGGED_TEST_POSTGRES=postgres://USER@HOST:PORT/DB`,
    };
  } finally {
    // end() waits for a server that may never answer: the socket is closed at once instead.
    client.end().catch(() => {});
    client.connection.stream.destroy();
  }
}

/** A binary finder's error (`X was not found. ... install it with ...`), or undefined. */
function binary(find: () => string): Missing | undefined {
  try {
    find();
    return undefined;
  } catch (error) {
    const text = firstLine(error);
    const cut = text.indexOf('. ');
    return cut < 0
      ? { what: text, fix: '' }
      : { what: text.slice(0, cut), fix: text.slice(cut + 2) };
  }
}

const apt = (name: string, pkg: string, use: string): Missing => ({
  what: `${name} is not installed (${use})`,
  fix: `sudo apt-get install -y ${pkg}`,
});

/** Runs every probe at once; resolves within about PROBE_TIMEOUT_MS. */
export async function probeServices(): Promise<Availability> {
  const [redis, postgres] = await Promise.all([probeRedis(), probePostgres()]);
  const initdb = privatePostgresUnavailable();
  return {
    redis,
    postgres,
    // Their finders' messages name what is missing and the package that provides it.
    tinyproxy: binary(tinyproxyPath),
    nginx: binary(nginxPath),
    haproxy: binary(haproxyPath),
    openssl: onPath('openssl')
      ? undefined
      : apt('openssl', 'openssl', 'test certificates for https through proxies'),
    curl: onPath('curl') ? undefined : apt('curl', 'curl', "the chaos server's curl checks"),
    chromium: existsSync(CHROMIUM)
      ? undefined
      : apt(
          'chromium',
          'chromium',
          `the report rendered by a browser (DOGGED_TEST_CHROMIUM, now ${CHROMIUM})`,
        ),
    'redis-server': onPath('redis-server', ['/usr/bin/redis-server'])
      ? undefined
      : apt('redis-server', 'redis-server', 'tests that restart a private Redis'),
    initdb:
      initdb === undefined
        ? undefined
        : {
            what: `a private PostgreSQL cannot be started (tests that restart one): ${initdb}`,
            fix: 'sudo apt-get install -y postgresql',
          },
  };
}
