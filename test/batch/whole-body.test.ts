/**
 * The runner reads a small body announced by its Content-Length (1 MiB at most, not encoded)
 * whole, and any other as a stream. Both ways record the same: the size, the body kept with
 * `--bodies db`, the limit of `maxBodySize`, a cut body as a retried failure.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runBatch, seededRandom } from '../../src/index.js';
import { journalRecords, tempDir } from './batch-support.js';

/** `n` bytes that differ from one position to the next (a shifted copy would not match). */
function payload(n: number): Buffer {
  const data = Buffer.alloc(n);
  for (let i = 0; i < n; i++) data[i] = (i * 31 + 7) % 251;
  return data;
}

let server: Server;
let base: string;
/** Requests per path. */
const seen = new Map<string, number>();

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const n = Number(url.searchParams.get('n') ?? 0);
    const data = payload(n);
    const count = (seen.get(url.pathname + url.search) ?? 0) + 1;
    seen.set(url.pathname + url.search, count);
    if (url.pathname === '/length') {
      res.writeHead(200, { 'content-length': n });
      res.end(data);
    } else if (url.pathname === '/chunked') {
      // No Content-Length: read as a stream.
      res.writeHead(200, { 'transfer-encoding': 'chunked' });
      res.write(data.subarray(0, n >> 1));
      res.end(data.subarray(n >> 1));
    } else if (url.pathname === '/cut-once') {
      // The first answer announces n bytes and stops after half of them.
      res.writeHead(200, { 'content-length': n });
      if (count === 1) {
        res.write(data.subarray(0, n >> 1), () => res.socket?.destroy());
      } else {
        res.end(data);
      }
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  seen.clear();
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

const records = journalRecords;

/** A record's body as bytes (export gives text as UTF-8, anything else as base64). */
function bytesOf(record: ReturnType<typeof records>[number] | undefined): Buffer {
  return Buffer.from(record?.body ?? '', record?.bodyEncoding === 'base64' ? 'base64' : 'utf8');
}

const fast = { retry: { backoff: () => 5 }, random: seededRandom(1) };

describe('a body read whole or as a stream', () => {
  it.each(['db', 'none'] as const)(
    'records the same size, and with bodies %s the same bytes',
    async (bodies) => {
      const input = [
        `${base}/length?n=3000`, // read whole
        `${base}/chunked?n=3000`, // streamed: no Content-Length
        `${base}/length?n=${2 * 1024 * 1024}`, // streamed: over 1 MiB
        `${base}/length?n=0`,
      ];
      const db = join(dir, 'run.sqlite');
      const result = await runBatch({ db, input, bodies, ...fast });
      expect(result.counts).toMatchObject({ done: 4, failed: 0 });
      const byLine = new Map(records(db).map((r) => [r.line, r]));
      const sizes = [1, 2, 3, 4].map((line) => byLine.get(line)?.bodySize);
      expect(sizes).toEqual([3000, 3000, 2 * 1024 * 1024, 0]);
      for (const [line, n] of [
        [1, 3000],
        [2, 3000],
        [3, 2 * 1024 * 1024],
      ] as const) {
        if (bodies === 'db') expect(bytesOf(byLine.get(line)).equals(payload(n))).toBe(true);
        else expect(byLine.get(line)?.body ?? null).toBeNull();
      }
    },
  );

  it.each(['db', 'none'] as const)(
    'with bodies %s, a small body over maxBodySize fails as body-too-large at once, not retried',
    async (bodies) => {
      const db = join(dir, 'run.sqlite');
      const result = await runBatch({
        db,
        input: [`${base}/length?n=2048`, `${base}/length?n=1024`],
        bodies,
        maxBodySize: 1024,
        ...fast,
      });
      expect(result.counts).toMatchObject({ done: 1, failed: 1 });
      expect(seen.get('/length?n=2048')).toBe(1);
      expect(result.summary.failures).toEqual([
        { reason: 'body-too-large', status: 200, errorCode: 'ERR_DOGGED_BODY_TOO_LARGE', count: 1 },
      ]);
    },
  );

  it.each(['db', 'none'] as const)(
    'with bodies %s, a small body cut short of its Content-Length is an incomplete body, retried',
    async (bodies) => {
      const db = join(dir, 'run.sqlite');
      const result = await runBatch({ db, input: [`${base}/cut-once?n=4000`], bodies, ...fast });
      expect(result.counts).toMatchObject({ done: 1, failed: 0 });
      const [record] = records(db);
      expect(record).toMatchObject({ state: 'done', attempts: 2, bodySize: 4000 });
      expect(record?.history.map((h) => h.code)).toEqual(['ERR_DOGGED_INCOMPLETE_BODY']);
      if (bodies === 'db') expect(bytesOf(record).equals(payload(4000))).toBe(true);
      expect(seen.get('/cut-once?n=4000')).toBe(2);
    },
  );
});
