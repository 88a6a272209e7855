import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nginxMain, nginxTempPaths } from '../support/nginx-config.js';
import { type Arrival, fileRequestLog, type LimiterStats, readText } from './limiter-log.js';
import {
  checkRetryAfterAndUpstream,
  childPids,
  exited,
  freePort,
  nginxPath,
  positive,
  probe,
  readinessToken,
  sleep,
  startServer,
  tempDir,
  upstreamAddress,
  withRetries,
} from './limiter-process.js';

/**
 * A REAL nginx rate limiter on loopback (Debian's `nginx-light`, its `limit_req` module): one
 * process tree in a temporary directory of its own (configuration, pid, logs). It writes one
 * access-log line per request (`$msec $status $request_uri`, unbuffered); `stats()` /
 * `arrivals()` parse it.
 */

export interface NginxLimiterOptions {
  /** Requests per second (`limit_req_zone ... rate=<N>r/s`), all clients together. */
  rate: number;
  /** `limit_req ... burst=<B>`. @default 20 */
  burst?: number;
  /** `limit_req ... nodelay` (answer the burst at once instead of queueing it). @default true */
  nodelay?: boolean;
  /** When set, every 429 carries `Retry-After: <retryAfter>` (seconds). @default none */
  retryAfter?: number;
  /**
   * Proxy to this origin (`http://127.0.0.1:<port>`, keep-alive) instead of answering `ok`
   * itself; when it is down, nginx answers 502.
   */
  upstream?: string;
}

export interface NginxLimiter {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** The temporary directory: nginx.conf, nginx.pid, access.log, error.log. */
  readonly dir: string;
  /** The options in force (after `setRate`, the new rate). */
  readonly options: Readonly<Required<Omit<NginxLimiterOptions, 'retryAfter' | 'upstream'>>> &
    Pick<NginxLimiterOptions, 'retryAfter' | 'upstream'>;
  /** Requests per status from the access log (waits for the log to settle). */
  stats(minimum?: number): Promise<LimiterStats>;
  /** Every request in the access log, in log order. */
  arrivals(minimum?: number): Promise<Arrival[]>;
  /** The error log so far (for failure messages). */
  errorLog(): string;
  /**
   * Rewrites the configuration with a new rate and reloads nginx (SIGHUP to the master); resolves
   * once the new workers answer. The listening socket is kept, and so is the zone's state.
   */
  setRate(rate: number): Promise<void>;
  /** Stops nginx (SIGTERM, then SIGKILL after 5 s) and removes the directory. Idempotent. */
  close(): Promise<void>;
}

/** nginx's rate syntax: `20r/s`, or `30r/m` for rates under 1 r/s. */
function nginxRate(rate: number): string {
  if (rate >= 1 && Number.isInteger(rate)) return `${rate}r/s`;
  const perMinute = Math.round(rate * 60);
  if (perMinute < 1) throw new TypeError(`rate ${rate} r/s is below nginx's 1r/m`);
  return `${perMinute}r/m`;
}

interface NginxConfigInput {
  dir: string;
  port: number;
  token: string;
  generation: number;
  rate: number;
  burst: number;
  nodelay: boolean;
  retryAfter: number | undefined;
  upstream: string | undefined;
}

function nginxConfig(c: NginxConfigInput): string {
  const tmp = join(c.dir, 'tmp');
  const limited = [
    ...(c.retryAfter !== undefined ? [`      add_header Retry-After ${c.retryAfter} always;`] : []),
    '      return 429 "rate limited\\n";',
  ];
  // `return` runs in the rewrite phase, BEFORE limit_req (preaccess): the 200 must come from a
  // content handler (a static file, or proxy_pass), or the limit would never apply.
  const content = c.upstream
    ? [
        '      proxy_pass http://dogged_upstream;',
        '      proxy_http_version 1.1;',
        '      proxy_set_header Connection "";',
        '      proxy_connect_timeout 1s;',
        '      proxy_read_timeout 30s;',
      ]
    : [`      root ${join(c.dir, 'www')};`, '      try_files /ok.txt =404;'];
  return `${[
    ...nginxMain(c.dir, 4096),
    'http {',
    "  log_format dogged '$msec $status $request_uri';",
    // No buffer=: every line is written when its request ends, so the log can be counted at once.
    `  access_log ${join(c.dir, 'access.log')} dogged;`,
    ...nginxTempPaths(tmp),
    '  default_type text/plain;',
    '  server_tokens off;',
    '  keepalive_requests 1000000;',
    '  keepalive_timeout 60s;',
    // One key for every request: all clients (every process of a distributed batch) share the
    // limit, as they share a real API's.
    '  map $server_port $dogged_limit_key {',
    '    default all;',
    '  }',
    `  limit_req_zone $dogged_limit_key zone=dogged:1m rate=${nginxRate(c.rate)};`,
    '  limit_req_status 429;',
    // Rejections are logged at "info" (below the error log's level): the error log stays small.
    '  limit_req_log_level info;',
    ...(c.upstream
      ? [
          '  upstream dogged_upstream {',
          // One server: nginx never marks it down, every request tries it (502 while it is down).
          `    server ${upstreamAddress(c.upstream)} max_fails=0;`,
          '    keepalive 32;',
          '  }',
        ]
      : []),
    '  server {',
    `    listen 127.0.0.1:${c.port};`,
    '    location = /__dogged/generation {',
    '      access_log off;',
    `      return 200 "${c.token} ${c.generation}\\n";`,
    '    }',
    '    location / {',
    `      limit_req zone=dogged burst=${c.burst}${c.nodelay ? ' nodelay' : ''};`,
    '      error_page 429 = @limited;',
    ...content,
    '    }',
    '    location @limited {',
    ...limited,
    '    }',
    '  }',
    '}',
  ].join('\n')}\n`;
}

async function launchNginx(
  binary: string,
  options: NginxLimiter['options'],
): Promise<NginxLimiter> {
  const dir = tempDir('nginx');
  mkdirSync(join(dir, 'www'));
  mkdirSync(join(dir, 'tmp'));
  writeFileSync(join(dir, 'www', 'ok.txt'), 'ok\n');
  const port = await freePort();
  const token = readinessToken();
  const conf = join(dir, 'nginx.conf');
  const current = { ...options };
  let generation = 1;
  const write = () =>
    writeFileSync(
      conf,
      nginxConfig({
        dir,
        port,
        token,
        generation,
        rate: current.rate,
        burst: current.burst,
        nodelay: current.nodelay,
        retryAfter: current.retryAfter,
        upstream: current.upstream,
      }),
    );
  write();
  const errorLog = join(dir, 'error.log');
  const url = `http://127.0.0.1:${port}`;
  const serves = async (gen: number): Promise<boolean> =>
    (await probe(`${url}/__dogged/generation`))?.body === `${token} ${gen}\n`;
  const server = await startServer({
    name: 'nginx',
    binary,
    args: ['-p', dir, '-c', conf, '-e', errorLog],
    dir,
    port,
    ready: () => serves(1),
    failureDetail: () => readText(errorLog),
  });
  const { child } = server;
  const log = fileRequestLog(join(dir, 'access.log'));
  return {
    url,
    port,
    dir,
    get options() {
      return { ...current };
    },
    stats: log.stats,
    arrivals: log.arrivals,
    errorLog: () => readText(errorLog),
    setRate: async (rate: number) => {
      if (server.closed) throw new Error('nginx limiter is closed');
      current.rate = positive('rate', rate);
      generation++;
      write();
      const oldWorkers = childPids(child.pid);
      child.kill('SIGHUP');
      // New workers answer first; the old ones keep accepting on the shared socket until they
      // have been told to quit: done once each old worker has exited or logged its shutdown.
      const retired = (pid: number) =>
        !childPids(child.pid).includes(pid) ||
        readText(errorLog).includes(`${pid}#${pid}: gracefully shutting down`);
      const until = Date.now() + 10_000;
      while (!(await serves(generation)) || !oldWorkers.every(retired)) {
        if (exited(child)) throw new Error(`nginx exited during a reload: ${readText(errorLog)}`);
        if (Date.now() > until)
          throw new Error(`nginx did not reload within 10 s: ${readText(errorLog)}`);
        await sleep(10);
      }
    },
    close: server.close,
  };
}

/**
 * Starts nginx as a rate limiter on a free loopback port (a few tries, in case the port is
 * taken): `limit_req` with one shared key, `rate` r/s, `burst` (default 20), `nodelay` (default
 * true), 429 with a small body (and `Retry-After` when asked), answering `ok` itself or proxying
 * to `upstream`.
 *
 * How `limit_req` counts (nginx 1.22): a leaky bucket in milli-requests; each request adds one,
 * the bucket drains at `rate`; a request that would overflow `burst` is rejected and does NOT
 * fill the bucket (rejections are free for the client, unlike HAProxy's). Time is nginx's
 * cached millisecond clock, updated once per event-loop turn: requests read in the same turn
 * see no drain between them. From a fresh zone, `burst + 1` requests at once pass.
 */
export async function startNginxLimiter(options: NginxLimiterOptions): Promise<NginxLimiter> {
  const resolved = {
    rate: positive('rate', options.rate),
    burst: options.burst ?? 20,
    nodelay: options.nodelay ?? true,
    ...(options.retryAfter !== undefined && { retryAfter: options.retryAfter }),
    ...(options.upstream !== undefined && { upstream: options.upstream }),
  };
  if (!Number.isInteger(resolved.burst) || resolved.burst < 0)
    throw new TypeError(`burst must be a non-negative integer, got ${resolved.burst}`);
  checkRetryAfterAndUpstream(resolved);
  const binary = nginxPath();
  return withRetries(() => launchNginx(binary, resolved));
}
