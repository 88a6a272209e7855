import { writeFileSync } from 'node:fs';
import {
  constants,
  createSecureServer,
  type Http2SecureServer,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { Http2Agent } from '../../src/http/http2.js';
import {
  ConnectionResetError,
  type DoggedError,
  IncompleteBodyError,
  Session,
} from '../../src/http/index.js';
import { runCli, tempDir } from '../batch/batch-support.js';
import { available, needs } from '../support/needs.js';
import { selfSignedCertificate } from './proxy-support.js';
import { rejectionOf } from './session-support.js';

const describe = needs('openssl');

let server: Http2SecureServer;
let base = '';
let cert = '';
const seen = new Map<string, number>();
const sessions = new Set<ServerHttp2Session>();
const CUT_BODY = Buffer.from('0123456789abcdef'.repeat(4096));
/** Given each first attempt of a `/run/held` path, which the server holds. */
let onHeld: ((stream: ServerHttp2Stream) => void) | undefined;
/** Given each stream of a `/mux/` path, which the server holds. */
let onMux: ((stream: ServerHttp2Stream, path: string) => void) | undefined;

beforeAll(async () => {
  if (!available('openssl')) return;
  const pair = selfSignedCertificate();
  cert = pair.cert;
  server = createSecureServer({ key: pair.key, cert: pair.cert, allowHTTP1: true });
  server.on('session', (session) => sessions.add(session));
  server.on('stream', (stream, headers) => {
    // A stream reset (by either side) is an error on the server's stream too.
    stream.on('error', () => {});
    const path = String(headers[':path']);
    const n = (seen.get(path) ?? 0) + 1;
    seen.set(path, n);
    if (path.startsWith('/refused') && n === 1) {
      stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (path.startsWith('/goaway') && n === 1) {
      stream.session?.goaway(constants.NGHTTP2_NO_ERROR, 0);
      stream.session?.destroy();
      return;
    }
    if (path.startsWith('/cut') && n === 1) {
      // A Content-Length, half the body, then RST_STREAM INTERNAL_ERROR (a proxy whose
      // upstream went away mid-body does this).
      stream.respond({
        ':status': 200,
        'content-type': 'application/octet-stream',
        'content-length': String(CUT_BODY.length),
      });
      stream.write(CUT_BODY.subarray(0, CUT_BODY.length / 2), () =>
        stream.close(constants.NGHTTP2_INTERNAL_ERROR),
      );
      return;
    }
    if (path.startsWith('/cut')) {
      stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
      stream.end(CUT_BODY);
      return;
    }
    if (path.startsWith('/head')) {
      // A HEAD answer: the Content-Length of the body a GET would get, and no body.
      stream.respond({ ':status': 200, 'content-length': '1000' }, { endStream: true });
      return;
    }
    if (path.startsWith('/run/held') && n === 1) {
      onHeld?.(stream);
      return;
    }
    if (path.startsWith('/mux/') && onMux) {
      onMux(stream, path);
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end(`h2 ${path} attempt ${n}`);
  });
  // Over HTTP/1.1 (allowHTTP1), a request event instead of a stream one.
  server.on('request', (req, res) => {
    if (req.httpVersion === '2.0') return;
    res.end(`http/${req.httpVersion}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const session of sessions) session.destroy();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});

/**
 * Holds the streams of `/mux/` paths the server gets (and their paths); `allOpen` resolves once
 * `count` are open at once.
 */
function holdMux(count: number): {
  held: ServerHttp2Stream[];
  paths: Map<ServerHttp2Stream, string>;
  allOpen: Promise<void>;
} {
  const held: ServerHttp2Stream[] = [];
  const paths = new Map<ServerHttp2Stream, string>();
  const allOpen = new Promise<void>((resolve) => {
    onMux = (stream, path) => {
      held.push(stream);
      paths.set(stream, path);
      if (held.length === count) resolve();
    };
  });
  return { held, paths, allOpen };
}

describe('HTTP/2 (http2: true)', () => {
  it('speaks h2 to an https origin that offers it; without http2, HTTP/1.1', async () => {
    const h2 = new Session({ logger: false, http2: true, tls: { ca: cert } });
    expect(await (await h2.get(`${base}/hello`)).text()).toBe('h2 /hello attempt 1');
    await h2.close();
    const h1 = new Session({ logger: false, tls: { ca: cert } });
    expect(await (await h1.get(`${base}/hello`)).text()).toBe('http/1.1');
    await h1.close();
  });

  it('retries a stream the server refused (REFUSED_STREAM), even for a POST', async () => {
    const h2 = new Session({ logger: false, http2: true, tls: { ca: cert } });
    const res = await h2.post(`${base}/refused`, { body: 'x' });
    expect(await res.text()).toBe('h2 /refused attempt 2');
    expect(res.attempts).toBe(2);
    await h2.close();
  });

  it('retries a GET whose connection went away (GOAWAY)', async () => {
    const h2 = new Session({ logger: false, http2: true, tls: { ca: cert } });
    const res = await h2.get(`${base}/goaway`);
    expect(await res.text()).toBe('h2 /goaway attempt 2');
    await h2.close();
  });

  it('retries a GET whose stream was reset mid-body (RST_STREAM INTERNAL_ERROR) to the whole body', async () => {
    const failures: unknown[] = [];
    const h2 = new Session({
      logger: false,
      http2: true,
      tls: { ca: cert },
      hooks: { error: (error) => void failures.push(error) },
    });
    const res = await h2.get(`${base}/cut/get`);
    expect(await res.bytes()).toEqual(CUT_BODY);
    expect(res.attempts).toBe(2);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toBeInstanceOf(IncompleteBodyError);
    expect((failures[0] as Error).message).toMatch(/reset mid-body/);
    await h2.close();
  });

  it("a handler of undici's new API through the HTTP/2 agent: a reset mid-body is a cut, not an end", async () => {
    const agent = new Http2Agent({ allowH2: true, connect: { ca: cert } });
    const outcome = await new Promise<{
      status: number;
      length: string;
      bytes: number;
      error?: Error;
    }>((resolve) => {
      let status = 0;
      let length = '';
      let bytes = 0;
      agent.dispatch(
        { origin: base, path: '/cut/new-api', method: 'GET' },
        {
          onRequestStart() {},
          onResponseStart(_controller, statusCode, headers) {
            status = statusCode;
            length = String(headers['content-length']);
          },
          onResponseData(_controller, chunk) {
            bytes += chunk.length;
          },
          onResponseEnd() {
            resolve({ status, length, bytes });
          },
          onResponseError(_controller, error) {
            resolve({ status, length, bytes, error });
          },
        },
      );
    });
    await agent.close();
    expect(outcome.status).toBe(200);
    expect(outcome.length).toBe(String(CUT_BODY.length));
    expect(outcome.bytes).toBeLessThan(CUT_BODY.length);
    expect((outcome.error as { code?: string } | undefined)?.code).toBe(
      'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
    );
  });

  it('a HEAD answer with a Content-Length and no body is whole, not cut', async () => {
    const h2 = new Session({ logger: false, http2: true, tls: { ca: cert } });
    const res = await h2.head(`${base}/head`);
    expect(res.headers.get('content-length')).toBe('1000');
    expect((await res.bytes()).length).toBe(0);
    expect(res.attempts).toBe(1);
    await h2.close();
  });

  it('does not retry a POST whose stream was reset mid-body: IncompleteBodyError', async () => {
    const h2 = new Session({ logger: false, http2: true, tls: { ca: cert } });
    const res = await h2.post(`${base}/cut/post`, { body: 'x' });
    const error = await rejectionOf(res.bytes());
    expect(error).toBeInstanceOf(IncompleteBodyError);
    expect((error as DoggedError).attempts).toBe(1);
    expect(seen.get('/cut/post')).toBe(1);
    await h2.close();
  });

  it('a GOAWAY in the middle of 20 concurrent requests: every one succeeds', async () => {
    const failures: unknown[] = [];
    const h2 = new Session({
      logger: false,
      http2: true,
      tls: { ca: cert },
      hooks: { error: (error) => void failures.push(error) },
    });
    // Half the requests are answered at once; the server holds the first attempt of the other
    // half. Once the first half is done and the server holds the second, it sends GOAWAY (its
    // last stream id: the held ones) on their connections and answers them, as a server that
    // shuts down gracefully does.
    const held: ServerHttp2Stream[] = [];
    const allHeld = new Promise<void>((resolve) => {
      onHeld = (stream) => {
        held.push(stream);
        if (held.length === 10) resolve();
      };
    });
    const run = async (path: string) => {
      const res = await h2.get(`${base}${path}`);
      return { text: await res.text(), attempts: res.attempts };
    };
    const answered = Array.from({ length: 10 }, (_, i) => run(`/run/${i}`));
    const retried = Array.from({ length: 10 }, (_, i) => run(`/run/held/${i}`));
    const first = await Promise.all(answered);
    await allHeld;
    const lastStream = new Map<ServerHttp2Session, number>();
    for (const stream of held) {
      const session = stream.session as ServerHttp2Session;
      lastStream.set(session, Math.max(lastStream.get(session) ?? 0, stream.id ?? 0));
    }
    for (const [session, last] of lastStream) session.goaway(constants.NGHTTP2_NO_ERROR, last);
    for (const stream of held) {
      if (stream.destroyed) continue;
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end('answered after the GOAWAY');
    }
    const second = await Promise.all(retried);
    await h2.close();
    first.forEach((result, i) => {
      expect(result).toEqual({ text: `h2 /run/${i} attempt 1`, attempts: 1 });
    });
    // undici fails the request in flight on a connection that receives a GOAWAY, although its
    // stream was within the last stream id: each held request is sent again, on a connection
    // that is not going away (a retry that lands on one that is, before its GOAWAY was read,
    // is not processed there and fails too).
    second.forEach((result, i) => {
      expect(result.text).toBe(`h2 /run/held/${i} attempt 2`);
      expect(result.attempts).toBeGreaterThanOrEqual(2);
    });
    const retries = second.reduce((sum, result) => sum + result.attempts - 1, 0);
    expect(failures).toHaveLength(retries);
    for (const failure of failures) {
      expect(failure).toBeInstanceOf(ConnectionResetError);
      expect((failure as Error).message).toMatch(/GOAWAY/);
    }
  });

  it('multiplexes: 16 concurrent requests after a burst of 8 share one connection, all 16 streams open at once', async () => {
    const h2 = new Session({ logger: false, http2: true, tls: { ca: cert } });
    const before = new Set(sessions);
    const open = () => [...sessions].filter((s) => !before.has(s) && !s.closed && !s.destroyed);
    try {
      // A burst before any connection is up: a connection for each request (the protocol is
      // not known yet); all but the first to speak h2 are retired, and close once their answer
      // is in.
      const burst = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => (await h2.get(`${base}/burst/${i}`)).text()),
      );
      expect(burst).toEqual(Array.from({ length: 8 }, (_, i) => `h2 /burst/${i} attempt 1`));
      expect(sessions.size - before.size).toBe(8);
      await vi.waitFor(() => expect(open()).toHaveLength(1));
      const { held, allOpen } = holdMux(16);
      const runs = Array.from({ length: 16 }, async (_, i) =>
        (await h2.get(`${base}/mux/${i}`)).text(),
      );
      await allOpen;
      // Every stream is open at once, on one server session.
      expect(new Set(held.map((stream) => stream.session)).size).toBe(1);
      expect(held.every((stream) => !stream.closed)).toBe(true);
      for (const stream of held) {
        stream.respond({ ':status': 200, 'content-type': 'text/plain' });
        stream.end(`mux ${stream.id}`);
      }
      expect(held[0]?.session).toBe(open()[0]);
      const texts = await Promise.all(runs);
      expect(new Set(texts).size).toBe(16);
    } finally {
      onMux = undefined;
      await h2.close();
    }
  });

  it('PUTs share the connection; POSTs get one each, so that a GOAWAY fails one POST, not all', async () => {
    const h2 = new Session({ logger: false, http2: true, tls: { ca: cert } });
    const before = new Set(sessions);
    try {
      expect(await (await h2.get(`${base}/warm`)).text()).toBe('h2 /warm attempt 1');
      const warm = [...sessions].find((s) => !before.has(s));
      const { held, paths, allOpen } = holdMux(16);
      const runs = Array.from({ length: 16 }, async (_, i) => {
        const send = i % 2 === 0 ? h2.put.bind(h2) : h2.post.bind(h2);
        const res = await send(`${base}/mux/${i % 2 === 0 ? 'put' : 'post'}-${i}`, {
          body: `order ${i}`,
        });
        return { text: await res.text(), attempts: res.attempts };
      });
      await allOpen;
      const puts = held.filter((stream) => paths.get(stream)?.startsWith('/mux/put-'));
      const posts = held.filter((stream) => paths.get(stream)?.startsWith('/mux/post-'));
      // undici would hold a PUT until the connection had no other stream in flight: not here.
      expect(puts).toHaveLength(8);
      expect(puts.every((stream) => stream.session === warm)).toBe(true);
      // Each POST on a connection of its own (a GOAWAY there fails that POST alone).
      expect(posts).toHaveLength(8);
      expect(new Set(posts.map((stream) => stream.session)).size).toBe(8);
      expect(posts.some((stream) => stream.session === warm)).toBe(false);
      for (const stream of held) {
        let body = '';
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => {
          body += chunk;
        });
        stream.on('end', () => {
          stream.respond({ ':status': 200, 'content-type': 'text/plain' });
          stream.end(`got ${body}`);
        });
      }
      const results = await Promise.all(runs);
      results.forEach((result, i) => {
        expect(result).toEqual({ text: `got order ${i}`, attempts: 1 });
      });
      // Closing the Session closes the POSTs' connections too.
      await h2.close();
      const opened = [...sessions].filter((s) => !before.has(s));
      expect(opened).toHaveLength(9);
      await vi.waitFor(() => expect(opened.filter((s) => !s.closed && !s.destroyed)).toEqual([]));
    } finally {
      onMux = undefined;
      await h2.close();
    }
  });

  it('a connection that fell back to HTTP/1.1 carries one request at a time: concurrent requests get one each', async () => {
    const pair = selfSignedCertificate();
    let most = 0;
    const open = new Map<Socket, number>();
    const h1 = createHttpsServer({ key: pair.key, cert: pair.cert }, (req, res) => {
      const n = (open.get(req.socket) ?? 0) + 1;
      open.set(req.socket, n);
      most = Math.max(most, n);
      // The head at once, the body 30 ms later (undici would pipeline a GET behind a head).
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.flushHeaders();
      setTimeout(() => {
        open.set(req.socket, (open.get(req.socket) ?? 1) - 1);
        res.end(`http/${req.httpVersion}`);
      }, 30);
    });
    await new Promise<void>((resolve) => h1.listen(0, '127.0.0.1', resolve));
    const origin = `https://127.0.0.1:${(h1.address() as AddressInfo).port}`;
    const session = new Session({ logger: false, http2: true, tls: { ca: pair.cert } });
    try {
      expect(await (await session.get(`${origin}/first`)).text()).toBe('http/1.1');
      const texts = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => (await session.get(`${origin}/${i}`)).text()),
      );
      expect(texts).toEqual(Array.from({ length: 8 }, () => 'http/1.1'));
      // A connection of its own for each request in flight: none queued behind another.
      expect(open.size).toBeGreaterThanOrEqual(8);
      expect(most).toBe(1);
    } finally {
      await session.close();
      h1.closeAllConnections();
      await new Promise<void>((resolve) => h1.close(() => resolve()));
    }
  });

  it('dogged get --http2 speaks h2 too', async () => {
    const { dir } = tempDir();
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, cert);
    const run = await runCli(['get', '--http2', `${base}/cli`], { NODE_EXTRA_CA_CERTS: ca });
    expect(run.stdout).toBe('h2 /cli attempt 1');
    expect(run.code).toBe(0);
  });
});
