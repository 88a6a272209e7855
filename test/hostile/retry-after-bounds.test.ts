import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  configureDefaultSession,
  get,
  ProxyPool,
  parseRetryAfter,
  RetryAfterTooLongError,
  Session,
} from '../../src/http/index.js';
import { seededRandom } from '../../src/retry/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { startTinyproxy, type Tinyproxy } from '../http/proxy-support.js';
import { needs } from '../support/needs.js';

/** Issue 14, row 3: one Retry-After must not shut an origin, and a proxy's answer cools that proxy only. */

const ABSURD = '1000000000000'; // 1e12 seconds: 31,700 years

/** A server that answers its first request 503 + `Retry-After: 1e12`, then 200s; counts requests. */
async function startOneHostile(): Promise<{
  url: string;
  hits: () => number;
  close(): Promise<void>;
}> {
  let hits = 0;
  const server: Server = createHttpServer((_req, res) => {
    hits++;
    if (hits === 1) {
      res.writeHead(503, { 'retry-after': ABSURD, 'content-length': '0' });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/`,
    hits: () => hits,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * A hostile "proxy": it accepts CONNECT, then answers every request in the tunnel itself with
 * `status` and `Retry-After: retryAfter`. The target is never reached through it.
 */
async function startAnsweringProxy(
  status: number,
  retryAfter: string,
): Promise<{ url: string; answered: () => number; close(): Promise<void> }> {
  let answered = 0;
  const server: TcpServer = createTcpServer((socket) => {
    let buffer = '';
    let tunnel = false;
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      for (;;) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        buffer = buffer.slice(end + 4);
        if (!tunnel) {
          tunnel = true;
          socket.write('HTTP/1.1 200 Connection established\r\n\r\n');
          continue;
        }
        answered++;
        socket.write(
          `HTTP/1.1 ${status} Busy\r\nretry-after: ${retryAfter}\r\ncontent-length: 0\r\n\r\n`,
        );
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    answered: () => answered,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('a Retry-After beyond maxRetryAfter fails that request only', () => {
  it('sets no cooldown: requests 2..4 to the origin succeed at once', async () => {
    const server = await startOneHostile();
    const clock = new FakeClock({ autoAdvance: true });
    await using session = new Session({ clock, logger: false, retry: { total: 3 } });
    try {
      const first = await session.get(server.url).catch((error: unknown) => error);
      expect(first).toBeInstanceOf(RetryAfterTooLongError);
      expect((first as RetryAfterTooLongError).retryAfterMs).toBe(1e15);
      const started = clock.now();
      for (let i = 2; i <= 4; i++) {
        const res = await session.get(server.url);
        expect(res.status).toBe(200);
        expect(await res.text()).toBe('ok');
      }
      // At once: no sleep on the session's clock (a cooldown, capped or not, would show here).
      expect(clock.now() - started).toBe(0);
      expect(server.hits()).toBe(4);
    } finally {
      await server.close();
    }
  });

  it('holds nothing even with maxRetryAfter at a day', async () => {
    const server = await startOneHostile();
    const clock = new FakeClock({ autoAdvance: true });
    await using session = new Session({
      clock,
      logger: false,
      retry: { total: 3, maxRetryAfter: 86_400_000 },
    });
    try {
      await expect(session.get(server.url)).rejects.toBeInstanceOf(RetryAfterTooLongError);
      const started = clock.now();
      const res = await session.get(server.url);
      expect(res.status).toBe(200);
      expect(clock.now() - started).toBe(0);
      expect(server.hits()).toBe(2);
    } finally {
      await server.close();
    }
  });

  it('covers the module-level get() (the default session)', async () => {
    const server = await startOneHostile();
    configureDefaultSession({ logger: false });
    try {
      await expect(get(server.url)).rejects.toBeInstanceOf(RetryAfterTooLongError);
      for (let i = 2; i <= 4; i++) expect((await get(server.url)).status).toBe(200);
      expect(server.hits()).toBe(4);
    } finally {
      configureDefaultSession();
      await server.close();
    }
  });

  it('reads absurd values without overflow: 400 digits and far dates are too long, not malformed', () => {
    expect(parseRetryAfter('9'.repeat(400))).toBe(Number.MAX_SAFE_INTEGER);
    expect(parseRetryAfter(ABSURD)).toBe(1e15);
    expect(parseRetryAfter('Fri, 31 Dec 9999 23:59:59 GMT', 0)).toBe(253402300799000);
  });
});

needs('tinyproxy')('through a ProxyPool, a proxy answer cools that proxy, not the target', () => {
  let tinyproxy: Tinyproxy;
  let target: Server;
  let targetUrl: string;
  let reached = 0;
  beforeAll(async () => {
    tinyproxy = await startTinyproxy({ bind: '127.0.0.2' });
    target = createHttpServer((_req, res) => {
      reached++;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('target');
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    targetUrl = `http://127.0.0.1:${(target.address() as { port: number }).port}/`;
  });
  afterAll(async () => {
    await tinyproxy?.close();
    await new Promise((resolve) => target?.close(() => resolve(undefined)));
  });
  afterEach(() => {
    reached = 0;
  });

  for (const [status, retryAfter] of [
    [503, ABSURD],
    [503, '60'],
    [429, ABSURD],
  ] as const) {
    it(`${status} + Retry-After: ${retryAfter} from one proxy: the target is reached through the other`, async () => {
      const hostile = await startAnsweringProxy(status, retryAfter);
      const clock = new FakeClock({ autoAdvance: true });
      // No ban statuses: the Retry-After alone must steer requests away from the hostile proxy.
      const pool = new ProxyPool([hostile.url, tinyproxy.url], {
        clock,
        random: seededRandom(3),
        banStatuses: [],
      });
      const session = new Session({
        proxies: pool,
        clock,
        logger: false,
        retry: { total: 2, random: seededRandom(1) },
      });
      try {
        for (let i = 0; i < 4; i++) {
          const res = await session.get(targetUrl);
          expect(res.status).toBe(200);
          expect(await res.text()).toBe('target');
        }
        expect(reached).toBe(4);
        // The hostile proxy was asked once: its answer held it for this origin, not the target.
        expect(hostile.answered()).toBe(1);
        // Nobody slept the Retry-After (60 s, or 31,700 years).
        expect(clock.now()).toBeLessThan(1000);
      } finally {
        await session.close();
        await hostile.close();
      }
    });
  }

  it('the held proxy still serves other origins', async () => {
    const hostile = await startAnsweringProxy(503, '60');
    const clock = new FakeClock({ autoAdvance: true });
    const pool = new ProxyPool([hostile.url, tinyproxy.url], { clock, banStatuses: [] });
    pool.hold(pool.proxies[0] as (typeof pool.proxies)[number], 'http://127.0.0.1:1', 60_000);
    expect(pool.available([], 'http://127.0.0.1:1')).toEqual([pool.proxies[1]]);
    expect(pool.available([], targetUrl.slice(0, -1))).toEqual(pool.proxies);
    expect(pool.available()).toEqual(pool.proxies);
    await clock.advance(60_000);
    expect(pool.available([], 'http://127.0.0.1:1')).toEqual(pool.proxies);
    await hostile.close();
  });
});
