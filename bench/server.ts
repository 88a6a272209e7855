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
 * `GET /stats?run=ID` answers `{ arrivals, s503, resets }` for that run, as JSON.
 */
import { createServer, type ServerResponse } from 'node:http';

const body = Buffer.alloc(1024, 'x');
const busy = Buffer.from('busy, retry\n');

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
}

const streams = new Map<string, FaultStream>();
const MAX_STREAMS = 10_000;

function rate(value: string | null): number {
  const n = Number(value ?? 0);
  return Number.isFinite(n) ? Math.min(Math.max(n, 0), 1) : 0;
}

function streamFor(query: string): FaultStream {
  const params = new URLSearchParams(query);
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
    };
    streams.set(key, stream);
  }
  return stream;
}

function ok(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const query = q === -1 ? '' : url.slice(q + 1);
  if (url.startsWith('/stats?')) {
    const stream = streams.get(new URLSearchParams(query).get('run') ?? '');
    const json = JSON.stringify({
      arrivals: stream?.arrivals ?? 0,
      s503: stream?.s503 ?? 0,
      resets: stream?.resets ?? 0,
    });
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(json);
    });
    return;
  }
  if (!query.includes('p503=') && !query.includes('preset=')) {
    req.resume();
    req.on('end', () => ok(res));
    return;
  }
  const stream = streamFor(query);
  stream.arrivals++;
  const u = stream.random();
  if (u < stream.preset) {
    stream.resets++;
    req.socket.resetAndDestroy();
    return;
  }
  const unavailable = u < stream.preset + stream.p503;
  if (unavailable) stream.s503++;
  req.resume();
  req.on('end', () => {
    if (!unavailable) return ok(res);
    res.writeHead(503, {
      'content-type': 'text/plain',
      'content-length': busy.length,
      'retry-after': '0',
    });
    res.end(busy);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address === 'object') process.stdout.write(`${address.port}\n`);
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
process.on('disconnect', () => process.exit(0));
