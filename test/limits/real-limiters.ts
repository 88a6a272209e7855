import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  accessSync,
  constants,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from '../http/proxy-support.js';

/**
 * REAL rate limiters on loopback, for tests and benches: Debian's nginx (`nginx-light`, its
 * `limit_req` module) and HAProxy 2.6 (a stick table with `http_req_rate`), each one process
 * tree per limiter, in a temporary directory of its own (configuration, pid, logs), listening
 * on a free 127.0.0.1 port. Both share ONE limit between every client (the key is a constant,
 * not the client address), so several client processes compete for the same budget, as the
 * workers of a distributed batch do against a real API.
 *
 * Counting what the limiter saw:
 * - nginx writes one access-log line per request (`$msec $status $request_uri`, unbuffered);
 *   `stats()` / `arrivals()` parse it.
 * - HAProxy cannot log to a file, but it can log to its own stdout (`log stdout format raw`):
 *   it runs in the foreground (`-db`) and this module reads that pipe, one line per request
 *   (`%Ts.%ms %ST %HU`); `stats()` / `arrivals()` parse it. HAProxy's own counters are there
 *   too: `counters()` reads its stats page (a second loopback port, `;csv`: `req_tot`,
 *   `hrsp_2xx`..., `dreq` of the frontend), as a cross-check.
 *
 * Nothing here downloads anything; a missing binary is an error that says what to install
 * (the tests fail, they never skip).
 */

const NGINX_HINT =
  'The real-limiter tests and benches run nginx: install it with `apt-get install -y nginx-light` (Debian/Ubuntu), or set DOGGED_NGINX to an nginx binary.';
const HAPROXY_HINT =
  'The real-limiter tests and benches run HAProxy: install it with `apt-get install -y haproxy` (Debian/Ubuntu), or set DOGGED_HAPROXY to a haproxy binary.';

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function findBinary(name: string, envName: string, hint: string): string {
  const override = process.env[envName];
  if (override) {
    if (executable(override)) return override;
    throw new Error(`${envName}=${override} is not an executable. ${hint}`);
  }
  const candidates = [
    `/usr/sbin/${name}`,
    ...(process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, name)),
  ];
  for (const candidate of candidates) if (executable(candidate)) return candidate;
  throw new Error(`${name} was not found. ${hint}`);
}

/** The nginx binary (`DOGGED_NGINX` overrides; then /usr/sbin, then PATH); throws with an install hint. */
export function nginxPath(): string {
  return findBinary('nginx', 'DOGGED_NGINX', NGINX_HINT);
}

/** The haproxy binary (`DOGGED_HAPROXY` overrides; then /usr/sbin, then PATH); throws with an install hint. */
export function haproxyPath(): string {
  return findBinary('haproxy', 'DOGGED_HAPROXY', HAPROXY_HINT);
}

/** `1.22.1`: what `nginx -v` says (on stderr). */
export function nginxVersion(): string {
  const result = spawnSync(nginxPath(), ['-v'], { encoding: 'utf8' });
  const text = `${result.stdout}${result.stderr}`;
  return /nginx\/(\S+)/.exec(text)?.[1] ?? text.trim();
}

/** `2.6.12-1+deb12u4`: what `haproxy -v` says. */
export function haproxyVersion(): string {
  const result = spawnSync(haproxyPath(), ['-v'], { encoding: 'utf8' });
  const text = `${result.stdout}${result.stderr}`;
  return /version (\S+)/.exec(text)?.[1] ?? text.trim();
}

// ---------------------------------------------------------------------------------------------
// Bookkeeping: every process started here is ended when this process exits.

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let exitHookInstalled = false;

/** Ends `child` and removes `dir` when this process exits, unless `close()` did it first. */
function track(child: ChildProcess, dir: string): void {
  live.add(child);
  dirs.add(dir);
  child.once('exit', () => live.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    // SIGTERM, not SIGKILL: nginx's master then ends its workers (a killed master would leave
    // them orphaned, still listening); it finishes on its own after this process is gone.
    for (const c of live) signal(c.pid, 'SIGTERM');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
}

function signal(pid: number | undefined, name: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** The children of `pid` (Linux /proc), e.g. nginx's workers. */
function childPids(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Ends `child` with `first` (SIGKILL for it and its children after `graceMs`); waits for its exit. */
async function terminate(
  child: ChildProcess,
  first: NodeJS.Signals,
  graceMs = 5000,
): Promise<void> {
  if (exited(child)) return;
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(first);
  const timer = setTimeout(() => {
    for (const pid of childPids(child.pid)) signal(pid, 'SIGKILL');
    child.kill('SIGKILL');
  }, graceMs);
  await done;
  clearTimeout(timer);
}

/**
 * One GET with a fresh connection (no keep-alive): used to see which generation of a limiter's
 * configuration answers, without touching the clients' pools.
 */
function probe(
  url: string,
  timeoutMs = 1000,
): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// What a limiter saw.

/** One request the limiter answered: when (epoch ms, millisecond precision), status, URI. */
export interface Arrival {
  readonly ms: number;
  readonly status: number;
  readonly uri: string;
}

/** Requests per status, and the first and last arrival (epoch ms; 0 when there were none). */
export interface LimiterStats {
  readonly total: number;
  readonly byStatus: Record<number, number>;
  readonly firstMs: number;
  readonly lastMs: number;
}

/** Totals of `arrivals`. */
export function summarizeArrivals(arrivals: readonly Arrival[]): LimiterStats {
  const byStatus: Record<number, number> = {};
  let firstMs = Number.POSITIVE_INFINITY;
  let lastMs = 0;
  for (const a of arrivals) {
    byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
    firstMs = Math.min(firstMs, a.ms);
    lastMs = Math.max(lastMs, a.ms);
  }
  return { total: arrivals.length, byStatus, firstMs: arrivals.length ? firstMs : 0, lastMs };
}

/** `1733231234.567 429 /item/1` (nginx `$msec $status $request_uri`, HAProxy `%Ts.%ms %ST %HU`). */
function parseLogLines(text: string): Arrival[] {
  const rows: Arrival[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+)\.(\d{3}) (\d{3}) (\S*)/.exec(line);
    if (!m) continue;
    rows.push({
      ms: Number(m[1]) * 1000 + Number(m[2]),
      status: Number(m[3]),
      uri: m[4] ?? '',
    });
  }
  return rows;
}

/**
 * A limiter writes its log line a moment after the client has its response: waits until the
 * log stops growing (50 ms without a new line, at most 2 s) before reading it.
 */
async function settled(size: () => number): Promise<void> {
  const deadline = Date.now() + 2000;
  let last = size();
  for (;;) {
    await sleep(50);
    const now = size();
    if (now === last || Date.now() > deadline) return;
    last = now;
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------------------------
// The upstream: a tiny origin that can be stopped and started on the same port.

export interface Upstream {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Requests answered so far. */
  readonly requests: number;
  /** True while it listens. */
  readonly running: boolean;
  /**
   * Stops listening and destroys every open connection: a proxy in front gets "connection
   * refused" (nginx answers 502).
   */
  stop(): Promise<void>;
  /** Listens again, on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** An in-process HTTP server on 127.0.0.1 answering `200 ok <path>\n` to everything. */
export async function startUpstream(): Promise<Upstream> {
  let requests = 0;
  let running = false;
  let closed = false;
  const sockets = new Set<Socket>();
  const server = createHttpServer((req, res) => {
    requests++;
    req.resume();
    const body = `ok ${req.url ?? '/'}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        running = true;
        resolve();
      });
    });
  await listen(0);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('unexpected address');
  const port = address.port;
  const stop = async (): Promise<void> => {
    if (!running) return;
    running = false;
    const done = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await done;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get requests() {
      return requests;
    },
    get running() {
      return running;
    },
    stop,
    start: async () => {
      if (running || closed) return;
      await listen(port);
    },
    close: async () => {
      closed = true;
      await stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// nginx

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
  stats(): Promise<LimiterStats>;
  /** Every request in the access log, in log order. */
  arrivals(): Promise<Arrival[]>;
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

function positive(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
    throw new TypeError(`${name} must be a positive number, got ${String(value)}`);
  return value;
}

function upstreamAddress(url: string): string {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new TypeError(`upstream must be an http:// URL, got ${url}`);
  return `${u.hostname}:${u.port || '80'}`;
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
    'daemon off;',
    'master_process on;',
    'worker_processes 1;',
    // As root, workers would run as "nobody" and could not use the 0700 temporary directory.
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    `pid ${join(c.dir, 'nginx.pid')};`,
    `error_log ${join(c.dir, 'error.log')} notice;`,
    'events {',
    '  worker_connections 4096;',
    '}',
    'http {',
    "  log_format dogged '$msec $status $request_uri';",
    // No buffer=: every line is written when its request ends, so the log can be counted at once.
    `  access_log ${join(c.dir, 'access.log')} dogged;`,
    `  client_body_temp_path ${join(tmp, 'body')};`,
    `  proxy_temp_path ${join(tmp, 'proxy')};`,
    `  fastcgi_temp_path ${join(tmp, 'fastcgi')};`,
    `  uwsgi_temp_path ${join(tmp, 'uwsgi')};`,
    `  scgi_temp_path ${join(tmp, 'scgi')};`,
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
  options: Required<Omit<NginxLimiterOptions, 'retryAfter' | 'upstream'>> &
    Pick<NginxLimiterOptions, 'retryAfter' | 'upstream'>,
): Promise<NginxLimiter> {
  const dir = mkdtempSync(join(tmpdir(), 'dogged-nginx-'));
  mkdirSync(join(dir, 'www'));
  mkdirSync(join(dir, 'tmp'));
  writeFileSync(join(dir, 'www', 'ok.txt'), 'ok\n');
  const port = await freePort();
  const token = randomBytes(6).toString('hex');
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
  const accessLog = join(dir, 'access.log');
  const child = spawn(binary, ['-p', dir, '-c', conf, '-e', errorLog], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  track(child, dir);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const url = `http://127.0.0.1:${port}`;
  const serves = async (gen: number): Promise<boolean> =>
    (await probe(`${url}/__dogged/generation`))?.body === `${token} ${gen}\n`;
  const deadline = Date.now() + 10_000;
  while (!(await serves(1))) {
    if (exited(child) || Date.now() > deadline) {
      await terminate(child, 'SIGTERM', 1000);
      const log = readText(errorLog);
      rmSync(dir, { recursive: true, force: true });
      throw new Error(
        `nginx did not start on 127.0.0.1:${port}: ${stderr.trim()} ${log.trim()}`.trim(),
      );
    }
    await sleep(20);
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    dir,
    get options() {
      return { ...current };
    },
    stats: async () => {
      await settled(() => fileSize(accessLog));
      return summarizeArrivals(parseLogLines(readText(accessLog)));
    },
    arrivals: async () => {
      await settled(() => fileSize(accessLog));
      return parseLogLines(readText(accessLog));
    },
    errorLog: () => readText(errorLog),
    setRate: async (rate: number) => {
      if (closing) throw new Error('nginx limiter is closed');
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
    close: () => {
      closing ??= (async () => {
        await terminate(child, 'SIGTERM');
        rmSync(dir, { recursive: true, force: true });
        dirs.delete(dir);
      })();
      return closing;
    },
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
  if (
    resolved.retryAfter !== undefined &&
    (!Number.isInteger(resolved.retryAfter) || resolved.retryAfter < 0)
  )
    throw new TypeError(`retryAfter must be whole seconds, got ${resolved.retryAfter}`);
  if (resolved.upstream !== undefined) upstreamAddress(resolved.upstream);
  const binary = nginxPath();
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launchNginx(binary, resolved);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

// ---------------------------------------------------------------------------------------------
// HAProxy

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
  stats(): Promise<LimiterStats>;
  /** Every request logged, in log order. */
  arrivals(): Promise<Arrival[]>;
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

async function launchHaproxy(
  binary: string,
  options: { rate: number; retryAfter: number | undefined; upstream: string | undefined },
): Promise<HaproxyLimiter> {
  const dir = mkdtempSync(join(tmpdir(), 'dogged-haproxy-'));
  const port = await freePort();
  let statsPort = await freePort();
  while (statsPort === port) statsPort = await freePort();
  const token = randomBytes(6).toString('hex');
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(cfg, haproxyConfig({ port, statsPort, token, ...options }));
  const child = spawn(binary, ['-f', cfg, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child, dir);
  let log = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    log += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const url = `http://127.0.0.1:${port}`;
  const statsUrl = `http://127.0.0.1:${statsPort}/`;
  const deadline = Date.now() + 10_000;
  while ((await probe(`${url}/__dogged/ready`))?.body !== token) {
    if (exited(child) || Date.now() > deadline) {
      await terminate(child, 'SIGTERM', 1000);
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`haproxy did not start on 127.0.0.1:${port}: ${stderr.trim()}`);
    }
    await sleep(20);
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    statsUrl,
    dir,
    stats: async () => {
      await settled(() => log.length);
      return summarizeArrivals(parseLogLines(log));
    },
    arrivals: async () => {
      await settled(() => log.length);
      return parseLogLines(log);
    },
    counters: async () => {
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
    },
    close: () => {
      closing ??= (async () => {
        await terminate(child, 'SIGTERM');
        rmSync(dir, { recursive: true, force: true });
        dirs.delete(dir);
      })();
      return closing;
    },
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
  if (
    options.retryAfter !== undefined &&
    (!Number.isInteger(options.retryAfter) || options.retryAfter < 0)
  )
    throw new TypeError(`retryAfter must be whole seconds, got ${options.retryAfter}`);
  if (options.upstream !== undefined) upstreamAddress(options.upstream);
  const binary = haproxyPath();
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launchHaproxy(binary, {
        rate: Math.floor(rate),
        retryAfter: options.retryAfter,
        upstream: options.upstream,
      });
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}
