import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../../src/http/index.js';
import { seededRandom, wait } from '../../src/retry/index.js';
import { type ChaosServer, FakeClock, startChaosServer } from '../../src/testing/index.js';

const REQUESTS = 1000;
const CONCURRENCY = 8;

let chaos: ChaosServer;
beforeAll(async () => {
  chaos = await startChaosServer({ logLimit: 10 * REQUESTS });
});
afterAll(() => chaos.close());

/** Active libuv resources of this process (vitest runs each test file in its own), by type. */
function activeResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}

/** Waits (up to `ms`) until `done()` holds: the server side of closed sockets closes a tick later. */
async function settle(done: () => boolean, ms = 2000): Promise<void> {
  const until = performance.now() + ms;
  while (!done() && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
}

describe('1,000 retried requests', () => {
  it('reuse pooled connections and leave no sockets or timers behind', async () => {
    chaos.reset();
    const baseline = activeResources();
    const session = new Session({
      clock: new FakeClock({ autoAdvance: true }),
      logger: false,
      retry: { backoff: wait.none(), random: seededRandom(1) },
    });
    let next = 0;
    let attempts = 0;
    let peakSockets = 0;
    const worker = async (): Promise<void> => {
      while (next < REQUESTS) {
        const i = next++;
        const response = await session.get(`${chaos.url}/flaky/k${i}?fail=1`);
        expect(response.status).toBe(200);
        await response.text();
        attempts += response.attempts;
        peakSockets = Math.max(peakSockets, activeResources().TCPSocketWrap ?? 0);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));

    // Every request failed once (a drained 503) and succeeded on its retry.
    expect(attempts).toBe(2 * REQUESTS);
    const log = chaos.log();
    expect(log).toHaveLength(2 * REQUESTS);
    // Keep-alive reuse: a retried 503 is drained, so its socket goes back to the pool instead
    // of being destroyed. A handful of connections carry all 2,000 requests.
    const connections = new Set(log.map((a) => a.connectionId)).size;
    expect(connections).toBeLessThanOrEqual(4 * CONCURRENCY);
    // Both ends of each pooled connection live in this process: the pool, never more.
    expect(peakSockets).toBeLessThanOrEqual(2 * 4 * CONCURRENCY);

    await session.close();
    const closedSockets = () =>
      (activeResources().TCPSocketWrap ?? 0) <= (baseline.TCPSocketWrap ?? 0);
    await settle(closedSockets);
    const after = activeResources();
    expect(after.TCPSocketWrap ?? 0).toBeLessThanOrEqual(baseline.TCPSocketWrap ?? 0);
    expect(after.Timeout ?? 0).toBeLessThanOrEqual(baseline.Timeout ?? 0);
    expect(after.TCPServerWrap).toBe(baseline.TCPServerWrap);
  });
});

/**
 * A plain loopback HTTP server whose first request per path gets a 503 written by `fail`, and
 * later ones a 200. The chaos server's error bodies are a few dozen bytes, which undici reads
 * with the head: whether dogged drains or destroys them makes no difference to the socket.
 */
async function startErrorBodyServer(fail: (res: ServerResponse) => void) {
  const seen = new Set<string>();
  let connections = 0;
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    if (seen.has(path)) {
      res.writeHead(200, { 'content-length': 2 });
      res.end('ok');
      return;
    }
    seen.add(path);
    fail(res);
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe('draining retried responses', () => {
  const fastRetries = () =>
    new Session({
      clock: new FakeClock({ autoAdvance: true }),
      logger: false,
      retry: { backoff: wait.none(), random: seededRandom(1) },
    });

  it('a 48 KiB error body is drained, so one connection carries every attempt', async () => {
    const server = await startErrorBodyServer((res) => {
      res.writeHead(503, { 'content-length': 48 * 1024 });
      // Half now, half a little later: the body is still arriving when the retry decision is made.
      res.write(Buffer.alloc(24 * 1024, 'x'));
      setTimeout(() => res.end(Buffer.alloc(24 * 1024, 'y')), 20);
    });
    const session = fastRetries();
    for (let i = 0; i < 20; i++) {
      const response = await session.get(`${server.url}/d${i}`);
      expect([response.status, response.attempts, await response.text()]).toEqual([200, 2, 'ok']);
    }
    expect(server.connections).toBeLessThanOrEqual(2);
    await session.close();
    await server.close();
  });

  it('a chunked error body above the 64 KiB drain limit is discarded, with no uncaught error', async () => {
    const baseline = activeResources();
    const server = await startErrorBodyServer((res) => {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end(Buffer.alloc(256 * 1024, 'x'));
    });
    const session = fastRetries();
    for (let i = 0; i < 5; i++) {
      const response = await session.get(`${server.url}/big${i}`);
      expect([response.status, await response.text()]).toEqual([200, 'ok']);
    }
    await session.close();
    await server.close();
    await settle(() => (activeResources().TCPSocketWrap ?? 0) <= (baseline.TCPSocketWrap ?? 0));
    expect(activeResources().TCPSocketWrap ?? 0).toBeLessThanOrEqual(baseline.TCPSocketWrap ?? 0);
  });

  it('a stalled error body is abandoned after the drain time bound, with no uncaught error', async () => {
    const server = await startErrorBodyServer((res) => {
      res.writeHead(503, { 'content-length': 100 });
      res.write('0123456789'); // ...and the other 90 bytes never come.
    });
    const session = fastRetries();
    const response = await session.get(`${server.url}/stalled`);
    expect([response.status, response.attempts, await response.text()]).toEqual([200, 2, 'ok']);
    await session.close();
    await server.close();
  });
});
