import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeWhole } from '../../src/http/decompress.js';
import {
  BodyTooLargeError,
  DecompressionError,
  HTTPStatusError,
  IncompleteBodyError,
} from '../../src/http/index.js';
import { exportRecords, Journal, runBatch } from '../../src/index.js';
import { tempDir } from '../batch/batch-support.js';
import { fastSession, rejectionOf } from './session-support.js';

// Text that does not compress to nothing: a cut halfway through its gzip is a real cut.
const TEXT = Array.from({ length: 400 }, (_, i) => `line ${i * 7919} of the body`).join('\n');
const encoders: Record<string, (data: Buffer) => Buffer> = {
  gzip: (d) => gzipSync(d),
  deflate: (d) => deflateSync(d),
  'deflate-raw': (d) => deflateRawSync(d),
  br: (d) => brotliCompressSync(d),
};

// Bodies on either side of the one-shot decoding of a small body read whole: 2 MiB of zeros
// (about 2 KiB of gzip, decoding past the one-shot output bound) and 256 KiB that do not
// compress (more encoded bytes than one shot takes), sent in chunks without a Content-Length.
const ZEROS = Buffer.alloc(2 * 1024 * 1024);
const NOISE = randomBytes(256 * 1024);
const gzipped = { zeros: gzipSync(ZEROS), noise: gzipSync(NOISE) };

/** Per path: how many times it was asked for, and the Accept-Encoding of each request. */
const seen = new Map<string, (string | undefined)[]>();
/** Per bomb request (its `r` query): the members written, and whether the last one was. */
const bombs = new Map<string, { members: number; ended: boolean }>();
const resumeRanges: (string | undefined)[] = [];
let server: Server;
let base: string;

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const key = url.pathname + url.search;
  const list = seen.get(key) ?? [];
  list.push(req.headers['accept-encoding']);
  seen.set(key, list);
  const attempt = list.length;
  const path = url.pathname;
  if (path === '/plain') {
    res.end(TEXT);
    return;
  }
  if (path.startsWith('/enc/')) {
    // /enc/<coding>[,<coding>...]: applied in the order listed, as Content-Encoding says.
    const codings = decodeURIComponent(path.slice(5)).split(',');
    let data: Buffer = Buffer.from(TEXT);
    for (const c of codings) data = (encoders[c] as (d: Buffer) => Buffer)(data);
    const header = codings.map((c) => (c === 'deflate-raw' ? 'deflate' : c)).join(', ');
    res.writeHead(200, { 'content-encoding': header, 'content-length': data.length });
    res.end(data);
    return;
  }
  if (path === '/zeros' || path === '/noise') {
    const whole = gzipped[path === '/zeros' ? 'zeros' : 'noise'];
    res.writeHead(200, { 'content-encoding': 'gzip' });
    for (let at = 0; at < whole.length; at += 16 * 1024)
      res.write(whole.subarray(at, at + 16 * 1024));
    res.end();
    return;
  }
  if (path === '/members') {
    // Two gzip members: the trailer at the end gives the size of the short last one only.
    res.writeHead(200, { 'content-encoding': 'gzip' });
    res.end(Buffer.concat([gzipSync(TEXT), gzipSync('and the last member')]));
    return;
  }
  if (path === '/unknown') {
    res.writeHead(200, { 'content-encoding': 'zstd-fancy' });
    res.end('not really compressed');
    return;
  }
  if (path === '/corrupt-once') {
    // The first attempt's body is not gzip at all; the second one is.
    res.writeHead(200, { 'content-encoding': 'gzip' });
    res.end(
      attempt === 1 ? Buffer.from('this is not gzip, whatever the header says') : gzipSync(TEXT),
    );
    return;
  }
  if (path === '/truncated') {
    // A gzip stream that stops halfway, with a clean end of the response.
    const whole = gzipSync(Buffer.from(TEXT));
    res.writeHead(200, { 'content-encoding': 'gzip' });
    res.end(whole.subarray(0, Math.floor(whole.length / 2)));
    return;
  }
  if (path === '/cut-once') {
    // The first attempt announces the whole gzip and the connection drops halfway.
    const whole = gzipSync(Buffer.from(TEXT));
    res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': whole.length });
    if (attempt === 1) {
      res.write(whole.subarray(0, Math.floor(whole.length / 2)));
      setImmediate(() => res.socket?.destroy());
    } else res.end(whole);
    return;
  }
  if (path === '/resumable') {
    // A stored gzip file (strong ETag, ranges): cut halfway once; a Range continues the bytes.
    const whole = gzipSync(Buffer.from(TEXT));
    const common = { 'content-encoding': 'gzip', etag: '"v1"', 'accept-ranges': 'bytes' };
    resumeRanges.push(req.headers.range);
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    if (range) {
      const start = Number(range[1]);
      res.writeHead(206, {
        ...common,
        'content-range': `bytes ${start}-${whole.length - 1}/${whole.length}`,
        'content-length': whole.length - start,
      });
      res.end(whole.subarray(start));
      return;
    }
    res.writeHead(200, { ...common, 'content-length': whole.length });
    if (attempt === 1) {
      res.write(whole.subarray(0, Math.floor(whole.length / 2)));
      setImmediate(() => res.socket?.destroy());
    } else res.end(whole);
    return;
  }
  if (path === '/missing') {
    res.writeHead(404, { 'content-encoding': 'gzip' });
    res.end(gzipSync('no such thing'));
    return;
  }
  if (path === '/bomb') {
    // 10 GiB of zeros, gzip: 160 members of 64 MiB each (a gzip stream may hold several), each
    // one compressed once; sent as the client reads, never held whole.
    const member = gzipSync(Buffer.alloc(64 * 1024 * 1024), { level: 9 });
    res.writeHead(200, { 'content-encoding': 'gzip' });
    const sent = { members: 0, ended: false };
    bombs.set(new URL(req.url ?? '/', 'http://x').searchParams.get('r') ?? '', sent);
    let left = 160;
    const more = (): void => {
      while (left > 0) {
        left--;
        sent.members++;
        if (!res.write(member)) {
          res.once('drain', more);
          return;
        }
      }
      sent.ended = true;
      res.end();
    };
    res.on('close', () => {
      left = 0;
    });
    more();
    return;
  }
  res.writeHead(404).end();
}

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function streamed(body: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('compression', () => {
  it('sends Accept-Encoding: gzip, deflate, br by default; a request header of its own wins', async () => {
    const { session } = fastSession();
    await (await session.get(`${base}/plain?h=default`)).text();
    await (
      await session.get(`${base}/plain?h=own`, { headers: { 'accept-encoding': 'gzip' } })
    ).text();
    expect(seen.get('/plain?h=default')).toEqual(['gzip, deflate, br']);
    expect(seen.get('/plain?h=own')).toEqual(['gzip']);
    await session.close();
  });

  it('decompress: false (Session or request) sends no Accept-Encoding and gives the raw bytes', async () => {
    const { session } = fastSession({ decompress: false });
    const raw = await (await session.get(`${base}/enc/gzip?h=off`)).bytes();
    expect(raw.equals(gzipSync(Buffer.from(TEXT)))).toBe(true);
    expect(seen.get('/enc/gzip?h=off')).toEqual([undefined]);
    await session.close();
    const { session: on } = fastSession();
    const res = await on.get(`${base}/enc/gzip?h=req-off`, { decompress: false });
    expect((await res.bytes()).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(seen.get('/enc/gzip?h=req-off')).toEqual([undefined]);
    await on.close();
  });

  it('rejects a decompress option that is not a boolean', () => {
    expect(() => fastSession({ decompress: 'yes' as unknown as boolean })).toThrow(
      /Session: decompress must be true or false/,
    );
  });

  for (const coding of ['gzip', 'deflate', 'deflate-raw', 'br', 'gzip,br', 'deflate,gzip']) {
    it(`decodes ${coding} read whole and streamed; the headers stay as received`, async () => {
      const { session } = fastSession();
      const res = await session.get(`${base}/enc/${coding}?read=whole`);
      expect(await res.text()).toBe(TEXT);
      expect(res.headers.get('content-encoding')).toBe(
        coding.replace('deflate-raw', 'deflate').replace(',', ', '),
      );
      const s = await session.get(`${base}/enc/${coding}?read=stream`);
      expect((await streamed(s.body)).toString()).toBe(TEXT);
      await session.close();
    });
  }

  it('hands over a body with an unknown coding as it was sent', async () => {
    const { session } = fastSession();
    const res = await session.get(`${base}/unknown`);
    expect(await res.text()).toBe('not really compressed');
    expect(res.headers.get('content-encoding')).toBe('zstd-fancy');
    await session.close();
  });

  it('a body that is not what Content-Encoding says is a retriable DecompressionError, and is retried', async () => {
    const { session } = fastSession();
    const res = await session.get(`${base}/corrupt-once?k=retried`);
    expect(await res.text()).toBe(TEXT);
    expect(res.attempts).toBe(2);
    const { session: once } = fastSession({ retry: false });
    const error = await rejectionOf((await once.get(`${base}/corrupt-once?k=final`)).text());
    expect(error).toBeInstanceOf(DecompressionError);
    expect(error).toBeInstanceOf(IncompleteBodyError);
    expect((error as DecompressionError).retriable).toBe(true);
    expect((error as DecompressionError).code).toBe('ERR_DOGGED_DECOMPRESSION');
    expect((error as Error).message).toMatch(/could not be decoded \(Content-Encoding gzip\)/);
    await session.close();
    await once.close();
  });

  it('a gzip stream that stops halfway is a DecompressionError, streamed too', async () => {
    const { session } = fastSession({ retry: false });
    const error = await rejectionOf((await session.get(`${base}/truncated?r=1`)).text());
    expect(error).toBeInstanceOf(DecompressionError);
    const s = await session.get(`${base}/truncated?r=2`);
    expect(await rejectionOf(streamed(s.body))).toBeInstanceOf(DecompressionError);
    await session.close();
  });

  it('a compressed body cut mid-way is fetched again whole and decoded', async () => {
    const { session } = fastSession();
    const res = await session.get(`${base}/cut-once`);
    expect(await res.text()).toBe(TEXT);
    expect(res.attempts).toBe(2);
    await session.close();
  });

  it('a streamed compressed download cut mid-way resumes with Range on the encoded bytes', async () => {
    const { session } = fastSession();
    const res = await session.get(`${base}/resumable`);
    expect((await streamed(res.body)).toString()).toBe(TEXT);
    expect(resumeRanges).toEqual([undefined, expect.stringMatching(/^bytes=\d+-$/)]);
    await session.close();
  });

  it('an error response drained by throwOnStatus keeps its decoded body', async () => {
    const { session } = fastSession();
    const error = await rejectionOf(session.get(`${base}/missing`, { throwOnStatus: true }));
    expect(error).toBeInstanceOf(HTTPStatusError);
    const response = (error as HTTPStatusError).response as unknown as { text(): Promise<string> };
    expect(await response.text()).toBe('no such thing');
    await session.close();
  });

  it('a 10 GiB gzip bomb fails with BodyTooLargeError after the limit, in bounded memory', async () => {
    const limit = 32 * 1024 * 1024;
    const before = process.memoryUsage().rss;
    const { session } = fastSession({ maxBodySize: limit });
    const whole = await rejectionOf((await session.get(`${base}/bomb?r=whole`)).bytes());
    expect(whole).toBeInstanceOf(BodyTooLargeError);
    expect((whole as BodyTooLargeError).received).toBeGreaterThan(limit);
    expect((whole as BodyTooLargeError).received).toBeLessThan(limit + 2 * 1024 * 1024);
    const s = await session.get(`${base}/bomb?r=stream`);
    expect(await rejectionOf(streamed(s.body))).toBeInstanceOf(BodyTooLargeError);
    // Of the 10 GiB the server would send (160 members, about 10 MB on the wire), the client
    // hung up before the end: the server wrote only what the connection's buffers took before
    // reading stopped (how much depends on the kernel's TCP buffer sizes, up to a few MB).
    for (const r of ['whole', 'stream']) {
      expect(bombs.get(r)?.ended).toBe(false);
      expect(bombs.get(r)?.members).toBeLessThan(160);
    }
    // The limit plus buffers; not gigabytes.
    expect(process.memoryUsage().rss - before).toBeLessThan(400 * 1024 * 1024);
    await session.close();
  });

  it('a small body is decoded in one call, a larger one as a stream, with the same results', async () => {
    const { session } = fastSession();
    expect((await (await session.get(`${base}/enc/gzip?k=whole`)).text()) === TEXT).toBe(true);
    expect((await (await session.get(`${base}/zeros`)).bytes()).equals(ZEROS)).toBe(true);
    expect((await (await session.get(`${base}/noise`)).bytes()).equals(NOISE)).toBe(true);
    // maxBodySize counts decoded bytes whichever way: a few KiB on the wire over the limit too.
    const { session: small } = fastSession({ maxBodySize: 1000 });
    const tooLarge = await rejectionOf((await small.get(`${base}/enc/gzip?k=limit`)).text());
    expect(tooLarge).toBeInstanceOf(BodyTooLargeError);
    expect((tooLarge as BodyTooLargeError).received).toBeGreaterThan(1000);
    const { session: mib } = fastSession({ maxBodySize: 1024 * 1024 + 1 });
    const zeros = await rejectionOf((await mib.get(`${base}/zeros?k=limit`)).bytes());
    expect(zeros).toBeInstanceOf(BodyTooLargeError);
    expect((zeros as BodyTooLargeError).received).toBeGreaterThan(1024 * 1024 + 1);
    const { session: kib } = fastSession({ maxBodySize: 100_000 });
    const noise = await rejectionOf((await kib.get(`${base}/noise?k=limit`)).bytes());
    expect(noise).toBeInstanceOf(BodyTooLargeError);
    await Promise.all([session.close(), small.close(), mib.close(), kib.close()]);
  });

  it('json() of a compressed body that is not JSON rejects with the parse error, read whole or streamed', async () => {
    const { session } = fastSession();
    const small = await session.get(`${base}/enc/gzip?k=json`);
    const error = await rejectionOf(small.json());
    expect(error).toBeInstanceOf(SyntaxError);
    // The body was read and decoded all the same.
    expect(await small.text()).toBe(TEXT);
    const large = await session.get(`${base}/noise?k=json`);
    expect(await rejectionOf(large.json())).toBeInstanceOf(SyntaxError);
    expect((await large.bytes()).equals(NOISE)).toBe(true);
    await session.close();
  });

  it('a gzip of several members read whole decodes whole: its trailer gives the last one only', async () => {
    const { session } = fastSession();
    expect(await (await session.get(`${base}/members`)).text()).toBe(`${TEXT}and the last member`);
    // In one call too (the trailer sizes zlib's output buffer, never bounds the output).
    const members = Buffer.concat([gzipSync(TEXT), gzipSync('tail')]);
    expect(decodeWhole(members, ['gzip'], 1024 * 1024)?.toString()).toBe(`${TEXT}tail`);
    expect(decodeWhole(members, ['gzip'], TEXT.length + 4)?.toString()).toBe(`${TEXT}tail`);
    expect(decodeWhole(members, ['gzip'], TEXT.length + 3)).toBeUndefined();
    expect(decodeWhole(gzipSync(TEXT), ['gzip'], TEXT.length)?.toString()).toBe(TEXT);
    expect(decodeWhole(gzipSync(TEXT), ['gzip'], TEXT.length - 1)).toBeUndefined();
    // Over a limit between the last member and the whole, read from a Session: the whole counts.
    const { session: limited } = fastSession({ maxBodySize: TEXT.length + 5 });
    const error = await rejectionOf((await limited.get(`${base}/members?k=limit`)).text());
    expect(error).toBeInstanceOf(BodyTooLargeError);
    await Promise.all([session.close(), limited.close()]);
  });

  it('the batch runner stores the decoded body; body_size counts decoded bytes', async () => {
    const { dir, cleanup } = tempDir();
    const db = join(dir, 'run.sqlite');
    await runBatch({ db, input: [`${base}/enc/gzip?k=batch`, `${base}/enc/br?k=batch`] });
    const journal = Journal.open(db, { readonly: true });
    try {
      const stored = [...exportRecords(journal, { bodies: true })];
      expect(stored).toHaveLength(2);
      for (const record of stored) {
        expect(record.bodySize).toBe(Buffer.byteLength(TEXT));
        expect(record.body).toBe(TEXT);
      }
    } finally {
      journal.close();
      cleanup();
    }
  });
});
