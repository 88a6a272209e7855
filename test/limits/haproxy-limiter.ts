import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Arrival, type LimiterStats, requestLog } from './limiter-log.js';
import {
  checkRetryAfterAndUpstream,
  freePort,
  haproxyPath,
  positive,
  probe,
  readinessToken,
  startServer,
  tempDir,
  upstreamAddress,
  withRetries,
} from './limiter-process.js';

/**
 * A REAL HAProxy rate limiter on loopback (HAProxy 2.6, a stick table with `http_req_rate`):
 * one process in a temporary directory of its own (its configuration). HAProxy cannot log to a
 * file, but it can log to its own stdout (`log stdout format raw`): it runs in the foreground
 * (`-db`) and this module reads that pipe, one line per request (`%Ts.%ms %ST %HU`); `stats()`
 * / `arrivals()` parse it. HAProxy's own counters are there too: `counters()` reads its stats
 * page (a second loopback port, `;csv`: `req_tot`, `hrsp_2xx`..., `dreq` of the frontend), as a
 * cross-check. HAProxy writes its log without blocking and drops the lines the pipe cannot take
 * at once (with the pipe's reader stalled, 1,024 lines of 3,000 requests arrived, and the
 * counters said 3,000): count hundreds of requests with `counters()`, not the log.
 */

export interface HaproxyLimiterOptions {
  /**
   * Requests per second, all clients together: a request is refused with 429 when the table's
   * `http_req_rate(1s)` is above it.
   */
  rate: number;
  /** When set, every 429 carries `Retry-After: <retryAfter>` (seconds). @default none */
  retryAfter?: number;
  /** Proxy to this origin instead of answering `ok` itself (HAProxy answers 503 when it is down). */
  upstream?: string;
}

/** HAProxy's own counters for the limiter's frontend (its stats page, CSV). */
export interface HaproxyCounters {
  /** `req_tot`: HTTP requests the frontend received (the clients', without the readiness probe). */
  readonly requests: number;
  /** `hrsp_1xx` ... `hrsp_5xx` and `hrsp_other`. */
  readonly responses: Readonly<Record<'1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'other', number>>;
  /** `dreq`: requests denied by `http-request deny`. */
  readonly denied: number;
}

export interface HaproxyLimiter {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** The stats page (`<statsUrl>;csv` for CSV). */
  readonly statsUrl: string;
  readonly dir: string;
  /** Requests per status, from HAProxy's request log (its stdout; waits for it to settle). */
  stats(minimum?: number): Promise<LimiterStats>;
  /** Every request logged, in log order. */
  arrivals(minimum?: number): Promise<Arrival[]>;
  /** HAProxy's own counters (stats page). */
  counters(): Promise<HaproxyCounters>;
  /** Stops HAProxy (SIGTERM, then SIGKILL after 5 s) and removes the directory. Idempotent. */
  close(): Promise<void>;
}

function haproxyConfig(c: {
  port: number;
  statsPort: number;
  token: string;
  rate: number;
  retryAfter: number | undefined;
  upstream: string | undefined;
}): string {
  const refuse =
    c.retryAfter !== undefined
      ? `  http-request return status 429 content-type text/plain string "rate limited" hdr Retry-After ${c.retryAfter} if over_rate`
      : '  http-request deny deny_status 429 content-type text/plain string "rate limited" if over_rate';
  return `${[
    'global',
    // No chroot, no user/group, no daemon: runs as whoever starts it, in the foreground.
    '  maxconn 4000',
    // One line per request on stdout (read by this module): HAProxy has no file logging.
    '  log stdout format raw local0 info',
    'defaults',
    '  mode http',
    '  log global',
    '  log-format "%Ts.%ms %ST %HU"',
    '  timeout connect 1s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  timeout http-request 10s',
    '  timeout http-keep-alive 30s',
    'frontend limiter',
    `  bind 127.0.0.1:${c.port}`,
    '  acl ready path /__dogged/ready',
    '  http-request set-log-level silent if ready',
    `  http-request return status 200 content-type text/plain string "${c.token}" if ready`,
    // One key for every request ("all"): every client shares the limit. The rate counts every
    // request tracked, the refused ones too: a client that keeps knocking keeps the rate high
    // and stays refused (realistic: many API gateways count that way; nginx does not).
    '  http-request track-sc0 str(all) table limiter_rate',
    `  acl over_rate sc_http_req_rate(0) gt ${c.rate}`,
    refuse,
    ...(c.upstream
      ? ['  default_backend origin']
      : ['  http-request return status 200 content-type text/plain string "ok" hdr X-Dogged ok']),
    'backend limiter_rate',
    '  stick-table type string len 8 size 16 expire 60s store http_req_rate(1s)',
    ...(c.upstream ? ['backend origin', `  server origin ${upstreamAddress(c.upstream)}`] : []),
    'listen stats',
    `  bind 127.0.0.1:${c.statsPort}`,
    '  no log',
    '  stats enable',
    '  stats uri /',
  ].join('\n')}\n`;
}

/** The limiter frontend's counters, from the stats page at `statsUrl`. */
async function readCounters(statsUrl: string): Promise<HaproxyCounters> {
  const res = await probe(`${statsUrl};csv`);
  if (res?.status !== 200) throw new Error('the HAProxy stats page did not answer');
  const [header = '', ...rows] = res.body.split('\n');
  const names = header.replace(/^# /, '').split(',');
  const row = rows
    .map((r) => r.split(','))
    .find((cells) => cells[0] === 'limiter' && cells[1] === 'FRONTEND');
  if (!row) throw new Error(`no frontend row in HAProxy's stats: ${res.body}`);
  const field = (name: string) => Number(row[names.indexOf(name)] || 0);
  // The counters include the one readiness probe that was answered (its log line is
  // silenced): taken off here, so that they count the clients' requests only.
  return {
    requests: field('req_tot') - 1,
    responses: {
      '1xx': field('hrsp_1xx'),
      '2xx': field('hrsp_2xx') - 1,
      '3xx': field('hrsp_3xx'),
      '4xx': field('hrsp_4xx'),
      '5xx': field('hrsp_5xx'),
      other: field('hrsp_other'),
    },
    denied: field('dreq'),
  };
}

async function launchHaproxy(
  binary: string,
  options: { rate: number; retryAfter: number | undefined; upstream: string | undefined },
): Promise<HaproxyLimiter> {
  const dir = tempDir('haproxy');
  const port = await freePort();
  const statsPort = await freePort([port]);
  const token = readinessToken();
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(cfg, haproxyConfig({ port, statsPort, token, ...options }));
  const url = `http://127.0.0.1:${port}`;
  const statsUrl = `http://127.0.0.1:${statsPort}/`;
  const server = await startServer({
    name: 'haproxy',
    binary,
    args: ['-f', cfg, '-db'],
    dir,
    port,
    captureStdout: true,
    ready: async () => (await probe(`${url}/__dogged/ready`))?.body === token,
  });
  const log = requestLog(server.stdout, () => server.stdout().length);
  return {
    url,
    port,
    statsUrl,
    dir,
    stats: log.stats,
    arrivals: log.arrivals,
    counters: () => readCounters(statsUrl),
    close: server.close,
  };
}

/**
 * Starts HAProxy as a rate limiter on a free loopback port: a stick table keyed by one constant
 * (every client shares the limit) storing `http_req_rate(1s)`, 429 above `rate` (with
 * `Retry-After` when asked), answering `ok` itself or proxying to `upstream`.
 *
 * How it counts (HAProxy 2.6): `http_req_rate(1s)` is a sliding one-second window (the current
 * second plus the previous one, weighted), incremented when a request is tracked, which is
 * before it is refused: refused requests count, so a client that keeps sending while refused
 * stays refused.
 */
export async function startHaproxyLimiter(options: HaproxyLimiterOptions): Promise<HaproxyLimiter> {
  const rate = positive('rate', options.rate);
  checkRetryAfterAndUpstream(options);
  const binary = haproxyPath();
  return withRetries(() =>
    launchHaproxy(binary, {
      rate: Math.floor(rate),
      retryAfter: options.retryAfter,
      upstream: options.upstream,
    }),
  );
}
