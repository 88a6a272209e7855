import { createServer, type Server } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../../src/http/index.js';
import { seededRandom, wait } from '../../src/retry/index.js';
import { waitFor } from '../batch/batch-support.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** 20% of requests get 503 with Retry-After: 0, 5% have their connection reset before any byte. */
let server: Server;
let base: string;
let served = 0;
beforeAll(async () => {
  const random = seededRandom(2026);
  server = createServer((req, res) => {
    served++;
    const draw = random();
    req.resume();
    if (draw < 0.05) {
      req.socket.resetAndDestroy();
      return;
    }
    if (draw < 0.25) {
      res.writeHead(503, { 'retry-after': '0', 'content-type': 'text/plain' });
      res.end('try again');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('x'.repeat(1024));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  base = `http://127.0.0.1:${address.port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('under load', () => {
  it('10,000 requests at concurrency 200 with 20% 503 and 5% resets all succeed, and nothing leaks', async () => {
    gc();
    const baselineHeap = process.memoryUsage().heapUsed;
    const baselineSockets = sockets();
    const baselineTimers = timers();
    const session = new Session({
      logger: false,
      retry: { total: 10, backoff: wait.none(), random: seededRandom(1) },
    });
    let next = 0;
    let ok = 0;
    let attempts = 0;
    const worker = async (): Promise<void> => {
      while (next < 10_000) {
        next++;
        const res = await session.get(`${base}/item/${next}`);
        if ((await res.text()).length === 1024 && res.status === 200) ok++;
        attempts += res.attempts;
      }
    };
    await Promise.all(Array.from({ length: 200 }, worker));
    expect(ok).toBe(10_000);
    // About 1 / (1 − 0.25) attempts per request.
    expect(attempts / 10_000).toBeGreaterThan(1.2);
    expect(attempts / 10_000).toBeLessThan(1.45);
    expect(served).toBeGreaterThanOrEqual(attempts);
    await session.close();
    // Closed sockets leave the handle list once their close callbacks have run.
    await waitFor(() => sockets() <= baselineSockets, 'the sockets to close', 5000);
    gc();
    expect(sockets()).toBeLessThanOrEqual(baselineSockets);
    expect(timers()).toBeLessThanOrEqual(baselineTimers + 1);
    // Generous: the heap returns to within 32 MiB of where it started.
    expect(process.memoryUsage().heapUsed - baselineHeap).toBeLessThan(32 * 1024 * 1024);
  }, 120_000);
});
