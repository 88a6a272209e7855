import { writeFileSync } from 'node:fs';
import {
  constants,
  createSecureServer,
  type Http2SecureServer,
  type ServerHttp2Session,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Session } from '../../src/http/index.js';
import { runCli, tempDir } from '../batch/batch-support.js';
import { available, needs } from '../support/needs.js';
import { selfSignedCertificate } from './proxy-support.js';

const describe = needs('openssl');

let server: Http2SecureServer;
let base = '';
let cert = '';
const seen = new Map<string, number>();
const sessions = new Set<ServerHttp2Session>();

beforeAll(async () => {
  if (!available('openssl')) return;
  const pair = selfSignedCertificate();
  cert = pair.cert;
  server = createSecureServer({ key: pair.key, cert: pair.cert, allowHTTP1: true });
  server.on('session', (session) => sessions.add(session));
  server.on('stream', (stream, headers) => {
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

  it('dogged get --http2 speaks h2 too', async () => {
    const { dir } = tempDir();
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, cert);
    const run = await runCli(['get', '--http2', `${base}/cli`], { NODE_EXTRA_CA_CERTS: ca });
    expect(run.stdout).toBe('h2 /cli attempt 1');
    expect(run.code).toBe(0);
  });
});
