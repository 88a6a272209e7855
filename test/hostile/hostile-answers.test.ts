import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DoggedError,
  HeadersTooLargeError,
  InvalidResponseError,
  InvalidURLError,
  Session,
} from '../../src/http/index.js';
import { runCli } from '../batch/batch-support.js';

/**
 * Issue 14, row 10: what a hostile server answers ends as a dogged error with a code and an
 * exit code, never a raw URIError / HeadersOverflowError / EINVAL, and long values are cut in
 * messages.
 */

const LONG_HOST = `${'a'.repeat(300)}.example`;

let http: Server;
let raw: TcpServer;
let base: string;
let rawBase: string;
beforeAll(async () => {
  http = createHttpServer((req, res) => {
    if (req.url === '/bad-encoding') {
      // `%zz` is not percent-encoding: decoding the credentials threw a bare URIError.
      res.writeHead(302, { location: `http://%zz:pw@127.0.0.1:${port(http)}/ok` });
      res.end();
    } else if (req.url === '/long-host') {
      res.writeHead(302, { location: `http://${LONG_HOST}/` });
      res.end();
    } else if (req.url === '/loop') {
      res.writeHead(302, { location: '/loop' });
      res.end();
    } else if (req.url === '/absurd') {
      res.writeHead(503, { 'retry-after': '1000000000000' });
      res.end();
    } else {
      res.writeHead(200);
      res.end('ok');
    }
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${port(http)}`;
  // A response head of 100 KB (a header flood): more than undici's 16 KiB.
  raw = createTcpServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', () => {
      socket.end(
        `HTTP/1.1 200 OK\r\nx-flood: ${'f'.repeat(100_000)}\r\ncontent-length: 2\r\n\r\nok`,
      );
    });
  });
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  rawBase = `http://127.0.0.1:${port(raw)}`;
});
afterAll(async () => {
  http.closeAllConnections();
  await new Promise((resolve) => http.close(() => resolve(undefined)));
  await new Promise((resolve) => raw.close(() => resolve(undefined)));
});

function port(server: Server | TcpServer): number {
  return (server.address() as { port: number }).port;
}

/** Every line of a message is short: long values were cut (200 characters and their length). */
function expectShort(message: string): void {
  expect(message.length).toBeLessThan(1200);
  expect(message).not.toMatch(/\S{260,}/);
}

describe('hostile answers become dogged errors (Session)', () => {
  const session = new Session({ logger: false, retry: { total: 2, backoffFactor: 1 } });
  afterAll(() => session.close());

  it('a Location with bad percent-encoding: InvalidResponseError, not a URIError; not retried', async () => {
    const error = await session.get(`${base}/bad-encoding`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidResponseError);
    expect(error).toMatchObject({
      code: 'ERR_DOGGED_INVALID_RESPONSE',
      retriable: false,
      attempts: 1,
    });
    expect((error as Error).message).toMatch(/not valid percent-encoding/);
    expect((error as Error).message).not.toMatch(/pw@/);
  });

  it('a Location whose host is longer than DNS allows: InvalidResponseError, cut in the message', async () => {
    const error = await session.get(`${base}/long-host`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidResponseError);
    expect((error as Error).message).toMatch(/host name is 308 characters long \(DNS allows 253\)/);
    expectShort((error as Error).message);
    expect((error as Error).message).toMatch(/… \(\d+ chars\)/);
  });

  it('an oversized response head: HeadersTooLargeError, not undici HeadersOverflowError; not retried', async () => {
    const error = await session.get(`${rawBase}/`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HeadersTooLargeError);
    expect(error).toBeInstanceOf(DoggedError);
    expect(error).toMatchObject({
      code: 'ERR_DOGGED_HEADERS_TOO_LARGE',
      retriable: false,
      attempts: 1,
    });
  });

  it('a 1 MB host name: InvalidURLError before any connection, not a raw EINVAL quoting the host', async () => {
    const host = `${'h'.repeat(1_048_576)}.example`;
    const error = await session.get(`http://${host}/`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidURLError);
    expect((error as InvalidURLError).code).toBe('ERR_DOGGED_INVALID_URL');
    expect((error as Error).message).toMatch(/1048584 characters long/);
    expectShort((error as Error).message);
  });
});

describe('hostile answers through `dogged get`: exit code, one line, no stack', () => {
  const cases: [string, () => string, number, RegExp][] = [
    [
      'bad percent-encoding in Location',
      () => `${base}/bad-encoding`,
      8,
      /not valid percent-encoding/,
    ],
    ['a Location host longer than DNS allows', () => `${base}/long-host`, 8, /DNS allows 253/],
    ['an oversized response head', () => `${rawBase}/`, 100, /larger than the client accepts/],
    // argv holds at most 128 KiB per argument: a 100,000-character host stands for the 1 MB one.
    [
      'a 100 KB host name',
      () => `http://${'h'.repeat(100_000)}.example/`,
      3,
      /100008 characters long/,
    ],
    // Dogged errors that used to exit 1 ("a bug"): a redirect loop and an absurd Retry-After.
    ['a redirect loop', () => `${base}/loop`, 47, /redirected more than/],
    ['Retry-After: 1000000000000', () => `${base}/absurd`, 75, /exceeds maxRetryAfter/],
  ];
  for (const [what, url, code, words] of cases) {
    it(`${what}: exit ${code}`, async () => {
      const run = await runCli(['get', url(), '--retries', '2']);
      expect(run.code).toBe(code);
      const lines = run.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^dogged get: /);
      expect(lines[0]).toMatch(words);
      expect(run.stderr).not.toMatch(/unexpected error|\n\s+at /);
      expectShort(run.stderr);
    }, 30_000);
  }
});
