/**
 * A plain keep-alive HTTP server for the benchmarks, run in its own process so that it does not
 * share the client's event loop. Prints its port on stdout. Every successful response carries a
 * 1 KiB body.
 *
 * A request without `p503` or `preset` in its query string always gets 200 and the body. Those
 * select faults, decided per arrival by a small seeded PRNG so that a run is reproducible:
 * - `p503=0.2`: 503 with `Retry-After: 0` (and a short body) to a seeded 20% of arrivals;
 * - `preset=0.1`: the socket is reset (RST, `ECONNRESET` on the client) before any response
 *   byte, for a seeded 10% of arrivals;
 * - `seed=7`: the PRNG seed (default 1);
 * - `run=ID`: one PRNG stream per run ID (default: the whole query string), so that every client
 *   in a benchmark sees the same fault sequence in arrival order when given the same seed.
 * - `once=1`: a transient fault instead: only the first arrival of each request (told apart by
 *   its `i=N` parameter) may be faulted; its retries always get 200. Without it a fault is as
 *   likely on a retry as on a first attempt.
 * `GET /stats?run=ID` answers `{ arrivals, s503, resets }` for that run, as JSON.
 *
 * Content coding and HTTP/2 (bench/peers-wire.ts):
 * - `GET /gzip` answers a 16 KiB JSON-like text (`jsonPayload` of bench/lib.ts), gzip-encoded
 *   (compressed once, at start) when the request's `Accept-Encoding` names gzip, else as it is;
 * - with BENCH_TLS_KEY and BENCH_TLS_CERT (PEM) in the environment, the process also listens for
 *   HTTP/2 over TLS (and HTTP/1.1, by ALPN) and prints that port after the first on the same
 *   line; there every path answers 200 and the 1 KiB body;
 * - `GET /wire-stats` answers `{ gzip, identity, h2, h1 }`: how many `/gzip` responses went out
 *   encoded and not, and how many TLS requests came over HTTP/2 and HTTP/1.1, since start.
 *
 * Storm runs (bench/storm.ts), selected by `storm=ID` in the query string:
 * - `GET /storm/start?run=ID&downAt=0&downFor=10000` starts (or restarts) run ID now: every
 *   `storm=ID` request that arrives from `downAt` ms to `downAt + downFor` ms after that gets
 *   503 with a short body and no Retry-After (a dead upstream behind a load balancer);
 * - `storm=ID&rps=100&burst=100`: outside an outage, a token bucket shared by the whole run
 *   (chaos `/ratelimit` semantics: starts full, refills at `rps`; empty: 429 with Retry-After in
 *   whole seconds, at least 1);
 * - otherwise 200 and the body;
 * - `GET /storm/log?run=ID` answers the run's arrival log as JSON counts per 10 ms bin from the
 *   start: `{ binMs, arrivals, retries, ok, s503, s429 }` (a request whose `x-attempt` header
 *   is above 1 is a retry). A `storm=ID` request for a run not started starts it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { TokenBucket } from '../src/testing/chaos/token-bucket.js';
import { jsonPayload } from './lib.js';

const body = Buffer.alloc(1024, 'x');
const busy = Buffer.from('busy, retry\n');
const payload = jsonPayload(16 * 1024);
const gzipped = gzipSync(payload);
const wire = { gzip: 0, identity: 0, h2: 0, h1: 0 };

/** `/gzip`: the JSON-like payload, gzip-encoded when the client accepts it. */
function compressible(req: IncomingMessage, res: ServerResponse): void {
  const accepts = /\bgzip\b/i.test(String(req.headers['accept-encoding'] ?? ''));
  if (accepts) wire.gzip++;
  else wire.identity++;
  req.resume();
  req.on('end', () => {
    const out = accepts ? gzipped : payload;
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': out.length,
      vary: 'accept-encoding',
      ...(accepts && { 'content-encoding': 'gzip' }),
    });
    res.end(out);
  });
}

/** mulberry32: a tiny seeded PRNG, uniform in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface FaultStream {
  p503: number;
  preset: number;
  random: () => number;
  arrivals: number;
  s503: number;
  resets: number;
  /** With `once=1`: the request ids seen so far (their retries are never faulted). */
  seen: Set<string> | undefined;
}

const streams = new Map<string, FaultStream>();
const MAX_STREAMS = 10_000;

function rate(value: string | null): number {
  const n = Number(value ?? 0);
  return Number.isFinite(n) ? Math.min(Math.max(n, 0), 1) : 0;
}

function streamFor(params: URLSearchParams, query: string): FaultStream {
  const key = params.get('run') ?? query;
  let stream = streams.get(key);
  if (!stream) {
    if (streams.size >= MAX_STREAMS) streams.clear();
    stream = {
      p503: rate(params.get('p503')),
      preset: rate(params.get('preset')),
      random: mulberry32(Number(params.get('seed') ?? 1) || 1),
      arrivals: 0,
      s503: 0,
      resets: 0,
      seen: params.get('once') === '1' ? new Set() : undefined,
    };
    streams.set(key, stream);
  }
  return stream;
}

/**
 * Reads the request to its end, then answers 200 with the body, or `status` (503, 429) with the
 * short busy body and `Retry-After` when given.
 */
function reply(req: IncomingMessage, res: ServerResponse, status = 200, retryAfter?: string): void {
  req.resume();
  req.on('end', () => {
    if (status === 200) return ok(res);
    res.writeHead(status, {
      'content-type': 'text/plain',
      'content-length': busy.length,
      ...(retryAfter !== undefined && { 'retry-after': retryAfter }),
    });
    res.end(busy);
  });
}

function ok(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
}

const BIN_MS = 10;

/** One storm run: its clock origin, outage window, rate limit and arrival counts per bin. */
interface StormRun {
  start: number;
  downFrom: number;
  downUntil: number;
  bucket: TokenBucket | undefined;
  arrivals: number[];
  retries: number[];
  ok: number[];
  s503: number[];
  s429: number[];
}

const runs = new Map<string, StormRun>();
const MAX_RUNS = 100;

function newRun(id: string, downAt: number, downFor: number): StormRun {
  if (runs.size >= MAX_RUNS) runs.clear();
  const start = performance.now();
  const run: StormRun = {
    start,
    downFrom: start + downAt,
    downUntil: start + downAt + downFor,
    bucket: undefined,
    arrivals: [],
    retries: [],
    ok: [],
    s503: [],
    s429: [],
  };
  runs.set(id, run);
  return run;
}

function bump(bins: number[], bin: number): void {
  while (bins.length <= bin) bins.push(0);
  bins[bin] = (bins[bin] ?? 0) + 1;
}

function nonNegative(value: string | null): number {
  const n = Number(value ?? 0);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

function json(req: IncomingMessage, res: ServerResponse, value: unknown): void {
  const text = JSON.stringify(value);
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(text);
  });
}

/** `/storm/start`, `/storm/log` and `storm=ID` requests. */
function storm(req: IncomingMessage, res: ServerResponse, path: string, query: string): void {
  const params = new URLSearchParams(query);
  if (path === '/storm/start') {
    const id = params.get('run') ?? '';
    newRun(id, nonNegative(params.get('downAt')), nonNegative(params.get('downFor')));
    json(req, res, { run: id });
    return;
  }
  if (path === '/storm/log') {
    const run = runs.get(params.get('run') ?? '');
    json(req, res, {
      binMs: BIN_MS,
      arrivals: run?.arrivals ?? [],
      retries: run?.retries ?? [],
      ok: run?.ok ?? [],
      s503: run?.s503 ?? [],
      s429: run?.s429 ?? [],
    });
    return;
  }
  const id = params.get('storm') ?? '';
  const run = runs.get(id) ?? newRun(id, 0, 0);
  const now = performance.now();
  const bin = Math.floor((now - run.start) / BIN_MS);
  bump(run.arrivals, bin);
  if (Number(req.headers['x-attempt'] ?? 1) > 1) bump(run.retries, bin);
  let status = 200;
  let retryAfter: string | undefined;
  if (now >= run.downFrom && now < run.downUntil) status = 503;
  else if (params.has('rps')) {
    run.bucket ??= new TokenBucket(
      Math.max(nonNegative(params.get('rps')), 0.000_001),
      Math.max(1, Math.floor(nonNegative(params.get('burst')) || 1)),
      now,
    );
    const decision = run.bucket.take(now);
    if (!decision.allowed) {
      status = 429;
      retryAfter = String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000)));
    }
  }
  if (status === 200) bump(run.ok, bin);
  else bump(status === 503 ? run.s503 : run.s429, bin);
  reply(req, res, status, retryAfter);
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const query = q === -1 ? '' : url.slice(q + 1);
  if (url.startsWith('/storm/') || query.includes('storm=')) {
    storm(req, res, q === -1 ? url : url.slice(0, q), query);
    return;
  }
  if (url === '/gzip') {
    compressible(req, res);
    return;
  }
  if (url === '/wire-stats') {
    json(req, res, wire);
    return;
  }
  if (url.startsWith('/stats?')) {
    const stream = streams.get(new URLSearchParams(query).get('run') ?? '');
    json(req, res, {
      arrivals: stream?.arrivals ?? 0,
      s503: stream?.s503 ?? 0,
      resets: stream?.resets ?? 0,
    });
    return;
  }
  if (!query.includes('p503=') && !query.includes('preset=')) {
    reply(req, res);
    return;
  }
  const params = new URLSearchParams(query);
  const stream = streamFor(params, query);
  stream.arrivals++;
  if (stream.seen) {
    const id = params.get('i') ?? '';
    if (stream.seen.has(id)) {
      reply(req, res);
      return;
    }
    stream.seen.add(id);
  }
  const u = stream.random();
  if (u < stream.preset) {
    stream.resets++;
    req.socket.resetAndDestroy();
    return;
  }
  const unavailable = u < stream.preset + stream.p503;
  if (unavailable) stream.s503++;
  if (unavailable) reply(req, res, 503, '0');
  else reply(req, res);
});
server.keepAliveTimeout = 60_000;

/** HTTP/2 over TLS (HTTP/1.1 too, by ALPN), when the environment gives a key and certificate. */
const key = process.env.BENCH_TLS_KEY;
const cert = process.env.BENCH_TLS_CERT;
const h2 = key && cert ? createSecureServer({ key, cert, allowHTTP1: true }) : undefined;
const h2Sessions = new Set<ServerHttp2Session>();
if (h2) {
  h2.on('session', (session) => {
    h2Sessions.add(session);
    session.once('close', () => h2Sessions.delete(session));
  });
  h2.on('stream', (stream) => {
    wire.h2++;
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': body.length });
    stream.end(body);
  });
  // An HTTP/1.1 request (a client that did not negotiate h2): answered, and counted as such.
  h2.on('request', (req, res) => {
    if (req.httpVersion === '2.0') return;
    wire.h1++;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
}

/** Listens on a free loopback port; resolves with it. */
function listen(target: Server | Http2SecureServer): Promise<number> {
  return new Promise((resolve) =>
    target.listen(0, '127.0.0.1', () => resolve((target.address() as AddressInfo).port)),
  );
}

const ports = [await listen(server), ...(h2 ? [await listen(h2)] : [])];
process.stdout.write(`${ports.join(' ')}\n`);
process.on('SIGTERM', () => {
  for (const session of h2Sessions) session.destroy();
  h2?.close();
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
process.on('disconnect', () => process.exit(0));
