import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionResetError } from '../../src/http/index.js';
import { fastSession, rejectionOf } from './session-support.js';

/**
 * A server that closes idle keep-alive connections at the worst moment: it answers the first
 * request of each connection, and when a second request arrives on that (now idle, reused)
 * connection it closes it without a byte of response, as a server does when its idle timer
 * fires just as the client reuses the socket.
 */
let server: Server;
let base: string;
const seen: string[] = [];
let connections = 0;
/** Forget earlier tests' connections: each test counts its own from c1. */
const fresh = (): void => {
  seen.length = 0;
  connections = 0;
};
beforeAll(async () => {
  server = createServer((socket: Socket) => {
    const id = ++connections;
    let requests = 0;
    socket.on('data', (data) => {
      requests++;
      seen.push(`c${id}r${requests} ${data.toString('latin1').split(' ', 1)[0]}`);
      if (requests === 1)
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=60\r\n\r\nok');
      else socket.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  base = `http://127.0.0.1:${address.port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const idle = () => new Promise((resolve) => setTimeout(resolve, 30));

describe('the stale keep-alive race', () => {
  it('a GET that meets a closed reused socket is retried at once on a new connection, for free', async () => {
    const events: string[] = [];
    const { session, clock } = fastSession({
      hooks: { beforeRetry: (e) => void events.push(`${e.delaySource} ${e.delayMs}`) },
    });
    fresh();
    expect(await (await session.get(`${base}/a`)).text()).toBe('ok');
    await idle();
    const res = await session.get(`${base}/b`);
    expect(await res.text()).toBe('ok');
    expect(seen).toEqual(['c1r1 GET', 'c1r2 GET', 'c2r1 GET']);
    expect(clock.sleeps).toEqual([]); // no backoff
    expect(res.history).toEqual([]); // no retry spent
    expect(events).toEqual(['immediate 0']);
    await session.close();
  });

  it('the free retry does not depend on the policy: it happens with retries off', async () => {
    const { session } = fastSession({ retry: false });
    await (await session.get(`${base}/a`)).text();
    await idle();
    expect(await (await session.get(`${base}/b`)).text()).toBe('ok');
    await session.close();
  });

  it('a POST is not replayed after a reset, even on a reused socket', async () => {
    const { session } = fastSession();
    fresh();
    await (await session.get(`${base}/a`)).text();
    await idle();
    const error = await rejectionOf(session.post(`${base}/b`, { body: 'x' }));
    expect(error).toBeInstanceOf(ConnectionResetError);
    expect((error as ConnectionResetError).mayHaveReachedServer).toBe(true);
    expect(seen).toEqual(['c1r1 GET', 'c1r2 POST']);
    await session.close();
  });

  it('a POST with an idempotency key is retried at once', async () => {
    const { session, clock } = fastSession();
    fresh();
    await (await session.get(`${base}/a`)).text();
    await idle();
    const res = await session.post(`${base}/b`, { body: 'x', idempotencyKey: true });
    expect(res.status).toBe(200);
    expect(seen).toEqual(['c1r1 GET', 'c1r2 POST', 'c2r1 POST']);
    expect(clock.sleeps).toEqual([]);
    await session.close();
  });
});
