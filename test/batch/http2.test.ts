import { writeFileSync } from 'node:fs';
import {
  constants,
  createSecureServer,
  type Http2SecureServer,
  type Http2Session,
  type ServerHttp2Session,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { exportRecords, Journal, runBatch, seededRandom } from '../../src/index.js';
import { selfSignedCertificate } from '../http/proxy-support.js';
import { available, needs } from '../support/needs.js';
import { runCli, tempDir, writeLines } from './batch-support.js';

const describe = needs('openssl');

let server: Http2SecureServer;
let base = '';
let cert = '';
/** Requests by protocol, and per path how many arrived. */
const protocols = { h2: 0, 'http/1.1': 0 };
const arrivals = new Map<string, number>();
const sessions = new Set<ServerHttp2Session>();
/** Requests each session carried. */
const carried = new Map<Http2Session, number>();

beforeAll(async () => {
  if (!available('openssl')) return;
  const pair = selfSignedCertificate();
  cert = pair.cert;
  server = createSecureServer({ key: pair.key, cert: pair.cert, allowHTTP1: true });
  server.on('session', (session) => sessions.add(session));
  server.on('request', (req, res) => {
    const path = req.url;
    const n = (arrivals.get(path) ?? 0) + 1;
    arrivals.set(path, n);
    if (req.httpVersion !== '2.0') {
      protocols['http/1.1']++;
      res.end(`http/1.1 ${path}`);
      return;
    }
    protocols.h2++;
    const session = req.stream.session;
    if (session) carried.set(session, (carried.get(session) ?? 0) + 1);
    // The server refuses some streams once (it processed nothing): always safe to retry.
    if (path.includes('refuse') && n === 1) {
      req.stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    res.end(`h2 ${path}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const session of sessions) session.destroy();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
});
beforeEach(() => {
  protocols.h2 = 0;
  protocols['http/1.1'] = 0;
  arrivals.clear();
  carried.clear();
});

function bodies(db: string): string[] {
  const journal = Journal.open(db, { readonly: true });
  try {
    return [...exportRecords(journal, { bodies: true })].map((r) => `${r.state} ${r.body}`);
  } finally {
    journal.close();
  }
}

describe('batch over HTTP/2 (http2: true, --http2)', () => {
  it('fetches every line over h2, retrying refused streams (even POSTs)', async () => {
    const { dir } = tempDir();
    const db = join(dir, 'run.sqlite');
    const input = [
      ...Array.from({ length: 30 }, (_, i) => `${base}/${i % 5 === 0 ? 'refuse' : 'page'}/${i}`),
      JSON.stringify({ url: `${base}/refuse/post`, method: 'POST', body: 'x' }),
    ];
    const result = await runBatch({
      db,
      input,
      http2: true,
      tls: { ca: cert },
      retry: { backoff: () => 5 },
      random: seededRandom(2),
    });
    expect(result.counts.done).toBe(31);
    expect(protocols).toEqual({ h2: 31 + 7, 'http/1.1': 0 });
    expect(bodies(db)).toEqual(
      input.map((line, i) => `done h2 ${new URL(i < 30 ? line : `${base}/refuse/post`).pathname}`),
    );
  });

  it("a host's lines share one connection: 300 lines, 8 in flight", async () => {
    const { dir } = tempDir();
    const result = await runBatch({
      db: join(dir, 'run.sqlite'),
      input: Array.from({ length: 300 }, (_, i) => `${base}/many/${i}`),
      http2: true,
      tls: { ca: cert },
      concurrency: 8,
      perHost: 8,
    });
    expect(result.counts.done).toBe(300);
    // The first lines, sent before a connection was up, may each have opened one; then every
    // line went on the connection that spoke h2 first.
    expect(carried.size).toBeLessThanOrEqual(8);
    expect(Math.max(...carried.values())).toBeGreaterThanOrEqual(300 - 8);
  });

  it('without it, HTTP/1.1; a bad option is refused', async () => {
    const { dir } = tempDir();
    const result = await runBatch({
      db: join(dir, 'run.sqlite'),
      input: [`${base}/one`],
      tls: { ca: cert },
    });
    expect(result.counts.done).toBe(1);
    expect(protocols).toEqual({ h2: 0, 'http/1.1': 1 });
    await expect(
      runBatch({ db: join(dir, 'x.sqlite'), input: [], http2: 1 as unknown as boolean }),
    ).rejects.toThrow('runBatch: http2 must be true or false, got 1');
  });

  it('dogged batch --http2', async () => {
    const { dir } = tempDir();
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, cert);
    const db = join(dir, 'run.sqlite');
    const input = writeLines(dir, 'urls.txt', [`${base}/a`, `${base}/refuse/b`]);
    const run = await runCli(['batch', input, '--db', db, '--http2', '-q'], {
      NODE_EXTRA_CA_CERTS: ca,
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(bodies(db)).toEqual(['done h2 /a', 'done h2 /refuse/b']);
  });
});
