import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ConnectionResetError,
  type DoggedError,
  IncompleteBodyError,
  type SessionOptions,
} from '../../src/http/index.js';
import { readText } from '../limits/limiter-log.js';
import {
  freePort,
  nginxPath,
  readinessToken,
  type ServerProcess,
  sleep,
  startServer,
  tempDir,
  withRetries,
} from '../limits/limiter-process.js';
import { available, needs } from '../support/needs.js';
import { nginxMain, nginxTempPaths } from '../support/nginx-config.js';
import { selfSignedCertificate } from './proxy-support.js';
import { fastSession, rejectionOf } from './session-support.js';

/**
 * HTTP/2 against a server nobody here wrote: nginx with `listen ... ssl http2` on loopback.
 * Two TLS ports: the main one (a static file with gzip on, and a reverse proxy to a small node
 * upstream that can cut a response mid-body or hold it), and one with `keepalive_requests 3`,
 * after which nginx sends GOAWAY on an h2 connection.
 *
 * What nginx 1.22 does, seen here:
 * - an upstream that closes its connection mid-body (after a Content-Length): nginx logs
 *   "upstream prematurely closed connection" and resets the client's stream with RST_STREAM
 *   INTERNAL_ERROR after the bytes it had;
 * - `keepalive_requests`: on the HEADERS of the last allowed stream, nginx queues a GOAWAY
 *   (NO_ERROR, last-stream-id = that stream) ahead of that stream's response, and answers it;
 * - a reload (SIGHUP): the old worker sends GOAWAY (NO_ERROR) on its connections and finishes
 *   their streams before it exits.
 * undici, on a GOAWAY, destroys the connection and fails the request at the head of its queue
 * with `HTTP/2: "GOAWAY" frame received` (a socket error), even when the stream was covered by
 * the last-stream-id: dogged sees a ConnectionResetError. On a reset mid-body, undici reports
 * either the stream error or, when the end of the data comes first, a normal end; dogged's
 * HTTP/2 dispatcher checks the Content-Length, so both are an IncompleteBodyError.
 */
const describe = needs('nginx', 'openssl');

const FILE = Array.from({ length: 2000 }, (_, i) => `row ${i}: the quick brown fox`).join('\n');
/** What the upstream answers on /up/cut/ paths: 64 KiB, half of it on a first attempt. */
const CUT_BODY = Buffer.from('0123456789abcdef'.repeat(4096));
/** Concurrent held requests that the reload test sees through. */
const HELD = 20;

let nginx: ServerProcess | undefined;
let upstream: Server | undefined;
let dir = '';
let ca = '';
/** The main TLS port: `https://127.0.0.1:<port>`. */
let url = '';
/** The port with `keepalive_requests 3`. */
let shortUrl = '';
let shortPort = 0;

/** What the upstream received, in order: method, path, request body. */
const upstreamLog: { method: string; path: string; body: string }[] = [];
const attemptsAt = new Map<string, number>();
/** Called with the number of first attempts the upstream is holding, when it changes. */
let onHeld: ((count: number) => void) | undefined;
let heldCount = 0;

function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? '/';
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const attempt = (attemptsAt.get(path) ?? 0) + 1;
    attemptsAt.set(path, attempt);
    upstreamLog.push({ method: req.method ?? '', path, body: Buffer.concat(chunks).toString() });
    if (path.startsWith('/up/cut/')) {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(CUT_BODY.length),
      });
      if (attempt > 1) {
        res.end(CUT_BODY);
        return;
      }
      // The whole request has been read: closing now sends a FIN after the half body, which
      // nginx reads to the end before it learns that the rest will never come.
      res.write(CUT_BODY.subarray(0, CUT_BODY.length / 2), () => res.socket?.destroy());
      return;
    }
    if (path.startsWith('/up/hold/') && attempt === 1) {
      // Held until nginx gives up on it (its client went away).
      heldCount++;
      onHeld?.(heldCount);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`${req.method} ${path} attempt ${attempt}`);
  });
}

/** One GET over TLS with a fresh connection: the body, or undefined when nginx does not answer. */
function probe(target: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = httpsRequest(target, { ca, agent: false, timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve(body));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

function nginxConfig(port: number, upstreamPort: number, token: string): string {
  const tmp = join(dir, 'tmp');
  const tls = [
    `    ssl_certificate ${join(dir, 'cert.pem')};`,
    `    ssl_certificate_key ${join(dir, 'key.pem')};`,
  ];
  return `${[
    ...nginxMain(dir, 256),
    'http {',
    "  log_format h2 '$server_port $connection $connection_requests $status $request_method $request_uri $server_protocol';",
    `  access_log ${join(dir, 'access.log')} h2;`,
    ...nginxTempPaths(tmp),
    '  default_type text/plain;',
    '  gzip on;',
    '  gzip_types text/plain;',
    '  gzip_min_length 0;',
    '  server {',
    `    listen 127.0.0.1:${port} ssl http2;`,
    ...tls,
    `    root ${join(dir, 'www')};`,
    `    location = /ready { return 200 "${token}"; }`,
    '    location = /protocol { return 200 "$server_protocol $http2"; }',
    '    location /up/ {',
    `      proxy_pass http://127.0.0.1:${upstreamPort};`,
    '    }',
    '  }',
    '  server {',
    `    listen 127.0.0.1:${shortPort} ssl http2;`,
    ...tls,
    '    keepalive_requests 3;',
    `    location = /ready { return 200 "${token}"; }`,
    '    location /item/ { return 200 "$request_method $uri"; }',
    '  }',
    '}',
  ].join('\n')}\n`;
}

beforeAll(async () => {
  if (!available('nginx', 'openssl')) return;
  const pair = selfSignedCertificate();
  ca = pair.cert;
  const server = createServer(upstreamHandler);
  upstream = server;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const upstreamPort = (server.address() as AddressInfo).port;
  nginx = await withRetries(async () => {
    dir = tempDir('nginx-h2');
    mkdirSync(join(dir, 'www'));
    mkdirSync(join(dir, 'tmp'));
    writeFileSync(join(dir, 'www', 'data.txt'), FILE);
    writeFileSync(join(dir, 'cert.pem'), pair.cert);
    writeFileSync(join(dir, 'key.pem'), pair.key);
    const port = await freePort();
    shortPort = await freePort([port]);
    const token = readinessToken();
    writeFileSync(join(dir, 'nginx.conf'), nginxConfig(port, upstreamPort, token));
    url = `https://127.0.0.1:${port}`;
    shortUrl = `https://127.0.0.1:${shortPort}`;
    return startServer({
      name: 'nginx',
      binary: nginxPath(),
      args: ['-p', dir, '-c', join(dir, 'nginx.conf')],
      dir,
      port,
      ready: async () =>
        (await probe(`${url}/ready`)) === token && (await probe(`${shortUrl}/ready`)) === token,
      failureDetail: () => readText(join(dir, 'error.log')),
    });
  });
});
afterAll(async () => {
  await nginx?.close();
  upstream?.closeAllConnections();
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
});

/** One access-log line: `$server_port $connection $connection_requests $status ...`. */
interface LogRow {
  port: number;
  connection: number;
  connectionRequests: number;
  status: number;
  method: string;
  uri: string;
  protocol: string;
}

function accessLog(): LogRow[] {
  return readText(join(dir, 'access.log'))
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [port, connection, requests, status, method, uri, protocol] = line.split(' ');
      return {
        port: Number(port),
        connection: Number(connection),
        connectionRequests: Number(requests),
        status: Number(status),
        method: method ?? '',
        uri: uri ?? '',
        protocol: protocol ?? '',
      };
    });
}

/**
 * nginx writes a request's log line just after it sent the response: the log once `done` says
 * every line the test waits for is there (at most 5 s; the assertions then say what is missing).
 */
async function logOnce(done: (rows: LogRow[]) => boolean): Promise<LogRow[]> {
  const until = Date.now() + 5000;
  for (;;) {
    const rows = accessLog();
    if (done(rows) || Date.now() > until) return rows;
    await sleep(20);
  }
}

/** A session speaking h2 with the test CA, no real sleeps, and every failed attempt kept. */
function h2Session(options: SessionOptions = {}): {
  session: ReturnType<typeof fastSession>['session'];
  failures: unknown[];
} {
  const failures: unknown[] = [];
  const { session } = fastSession({
    http2: true,
    tls: { ca },
    hooks: { error: (error) => void failures.push(error) },
    ...options,
  });
  return { session, failures };
}

/**
 * {@link HELD} GETs of `/up/hold/<prefix><i>` through `session`, which the upstream holds; once
 * it holds them all (each reached it through nginx's old worker), a reload (SIGHUP). Each must
 * fail once with the GOAWAY and succeed on its retry; `session` is closed.
 */
async function reloadUnder(
  session: ReturnType<typeof h2Session>['session'],
  failures: unknown[],
  prefix: string,
): Promise<void> {
  const allHeld = new Promise<void>((resolve) => {
    onHeld = (count) => {
      if (count === HELD) resolve();
    };
  });
  const runs = Array.from({ length: HELD }, async (_, i) => {
    const res = await session.get(`${url}/up/hold/${prefix}${i}`);
    return { text: await res.text(), attempts: res.attempts };
  });
  // Every request has reached the upstream through the old worker: reload now.
  await allHeld;
  nginx?.child.kill('SIGHUP');
  const results = await Promise.all(runs);
  await session.close();
  results.forEach((result, i) => {
    expect(result).toEqual({ text: `GET /up/hold/${prefix}${i} attempt 2`, attempts: 2 });
  });
  expect(failures).toHaveLength(HELD);
  for (const failure of failures) {
    expect(failure).toBeInstanceOf(ConnectionResetError);
    expect((failure as Error).message).toMatch(/GOAWAY/);
  }
}

describe('a real nginx over HTTP/2 (http2: true)', () => {
  it('speaks h2 to nginx, and decodes the gzip nginx sends over it', async () => {
    const { session } = h2Session();
    expect(await (await session.get(`${url}/protocol`)).text()).toBe('HTTP/2.0 h2');
    const res = await session.get(`${url}/data.txt`);
    expect(res.headers.get('content-encoding')).toBe('gzip');
    expect(await res.text()).toBe(FILE);
    await session.close();
    const rows = await logOnce((r) => r.some((row) => row.uri === '/data.txt'));
    expect(rows.find((row) => row.uri === '/data.txt')?.protocol).toBe('HTTP/2.0');
  });

  it('retries a GET whose upstream was cut mid-body (nginx resets the stream) and gets it whole', async () => {
    const { session, failures } = h2Session();
    const res = await session.get(`${url}/up/cut/get`);
    expect(res.status).toBe(200);
    expect(await res.bytes()).toEqual(CUT_BODY);
    expect(res.attempts).toBe(2);
    expect(attemptsAt.get('/up/cut/get')).toBe(2);
    // What nginx did: RST_STREAM INTERNAL_ERROR after the half body (undici reports it as the
    // stream error, or as an end before the Content-Length).
    expect(failures).toHaveLength(1);
    expect(failures[0]).toBeInstanceOf(IncompleteBodyError);
    expect((failures[0] as DoggedError).message).toMatch(/reset mid-body/);
    await session.close();
    expect(readText(join(dir, 'error.log'))).toMatch(/upstream prematurely closed connection/);
  });

  it('does not retry a POST the upstream received before the cut: IncompleteBodyError', async () => {
    const { session } = h2Session();
    const res = await session.post(`${url}/up/cut/post`, { body: 'order 42' });
    expect(res.status).toBe(200);
    const error = await rejectionOf(res.bytes());
    expect(error).toBeInstanceOf(IncompleteBodyError);
    expect((error as DoggedError).attempts).toBe(1);
    expect(upstreamLog.filter((a) => a.path === '/up/cut/post')).toEqual([
      { method: 'POST', path: '/up/cut/post', body: 'order 42' },
    ]);
    await session.close();
  });

  it('a run of GETs across keepalive_requests GOAWAYs: every one succeeds, on new connections', async () => {
    const { session, failures } = h2Session();
    const n = 24;
    const lanes = 4;
    const bodies = new Map<number, string>();
    let attempts = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: lanes }, async () => {
        while (next < n) {
          const i = next++;
          const res = await session.get(`${shortUrl}/item/run-${i}`);
          bodies.set(i, await res.text());
          attempts += res.attempts;
        }
      }),
    );
    await session.close();
    for (let i = 0; i < n; i++) expect(bodies.get(i)).toBe(`GET /item/run-${i}`);
    const uris = new Set(Array.from({ length: n }, (_, i) => `/item/run-${i}`));
    const rows = (
      await logOnce((r) => [...uris].every((uri) => r.some((row) => row.uri === uri)))
    ).filter((row) => uris.has(row.uri));
    // nginx closed every connection after its third request (a GOAWAY), and never served more.
    expect(Math.max(...rows.map((row) => row.connectionRequests))).toBe(3);
    expect(new Set(rows.map((row) => row.connection)).size).toBeGreaterThanOrEqual(n / 3);
    expect(rows.every((row) => row.protocol === 'HTTP/2.0')).toBe(true);
    for (const uri of uris)
      expect(rows.some((row) => row.uri === uri && row.status === 200)).toBe(true);
    // The requests in flight when a GOAWAY came were retried on a new connection.
    expect(attempts - n).toBe(failures.length);
    expect(failures.length).toBeGreaterThan(0);
    for (const failure of failures) {
      expect(failure).toBeInstanceOf(ConnectionResetError);
      expect((failure as Error).message).toMatch(/GOAWAY/);
    }
  });

  it('does not repeat a POST whose connection went away under it: nginx had answered it', async () => {
    const { session } = h2Session();
    const results: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      try {
        const res = await session.post(`${shortUrl}/item/post-${i}`, { body: 'x' });
        results.push(await res.text());
      } catch (error) {
        results.push(error);
      }
    }
    await session.close();
    // The third stream on the connection is the last one nginx allows: its GOAWAY comes first.
    expect(results.slice(0, 2)).toEqual(['POST /item/post-0', 'POST /item/post-1']);
    expect(results[2]).toBeInstanceOf(ConnectionResetError);
    expect((results[2] as DoggedError).attempts).toBe(1);
    const rows = await logOnce((r) => r.some((row) => row.uri === '/item/post-2'));
    expect(rows.filter((row) => row.uri === '/item/post-2').map((row) => row.status)).toEqual([
      200,
    ]);
  });

  it('a reload (SIGHUP) under 20 requests in flight: each is retried and succeeds', async () => {
    const { session, failures } = h2Session();
    await reloadUnder(session, failures, '');
  });

  it('multiplexes 20 requests on one connection; a reload under them: each is retried once and succeeds', async () => {
    heldCount = 0;
    const { session, failures } = h2Session();
    expect(await (await session.get(`${url}/up/mux/warm`)).text()).toBe(
      'GET /up/mux/warm attempt 1',
    );
    await reloadUnder(session, failures, 'mux-');
    const rows = (
      await logOnce(
        (r) =>
          r.filter((row) => row.uri.startsWith('/up/hold/mux-')).length === 2 * HELD &&
          r.some((row) => row.uri === '/up/mux/warm'),
      )
    ).filter((row) => row.uri.startsWith('/up/hold/mux-') || row.uri === '/up/mux/warm');
    // The first attempts: streams of the warm-up's connection, which nginx's old worker logged
    // when the client went away (499). The retries: answered by the new workers.
    const warm = rows.find((row) => row.uri === '/up/mux/warm');
    const first = rows.filter((row) => row.uri !== '/up/mux/warm' && row.status === 499);
    expect(first).toHaveLength(HELD);
    expect(first.every((row) => row.connection === warm?.connection)).toBe(true);
    expect(rows.filter((row) => row.status === 200)).toHaveLength(HELD + 1);
  });
});
