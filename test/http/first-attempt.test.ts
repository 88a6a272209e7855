import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HTTPStatusError, Session, type SessionOptions } from '../../src/http/index.js';
import { closedPort, fastSession, rejectionOf } from './session-support.js';

/**
 * A Session makes the first attempt of a request that nothing stands before without its attempt
 * loop (`Exchange.send`), and hands the head or the failure to the loop whenever the answer
 * needs more than returning it. These tests hold each hand-over against a real loopback server:
 * what the loop does must happen as it did when every attempt went through it.
 */

const hits = new Map<string, number>();
const cookies: (string | undefined)[] = [];
const sockets = new Set<Socket>();
let server: Server;
let base: string;

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const n = (hits.get(url.pathname) ?? 0) + 1;
  hits.set(url.pathname, n);
  switch (url.pathname) {
    case '/ok':
      res.end('fine');
      return;
    case '/set-cookie':
      res.writeHead(200, { 'set-cookie': 'first=1; Path=/' });
      res.end('set');
      return;
    case '/echo-cookie':
      cookies.push(req.headers.cookie);
      res.end('echo');
      return;
    case '/flaky':
      if (n === 1) {
        res.writeHead(503);
        res.end('busy');
      } else res.end('recovered');
      return;
    case '/moved':
      res.writeHead(302, { location: '/ok' });
      res.end();
      return;
    case '/missing':
      res.writeHead(404);
      res.end('no such thing');
      return;
    case '/slow':
      // Never answers: the client's abort ends it.
      return;
    default:
      res.writeHead(500);
      res.end();
  }
}

beforeAll(async () => {
  server = createServer(handle);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** `use` with a fast session (see `fastSession`) of `options`, closed afterwards. */
async function withSession(
  options: SessionOptions,
  use: (session: Session) => Promise<void>,
): Promise<void> {
  const { session } = fastSession(options);
  try {
    await use(session);
  } finally {
    await session.close();
  }
}

describe('the first attempt, made without the attempt loop', () => {
  it('returns a response that needs nothing more as it is', async () => {
    await withSession({}, async (session) => {
      const response = await session.get(`${base}/ok`);
      expect(response.status).toBe(200);
      expect(response.attempts).toBe(1);
      expect(await response.text()).toBe('fine');
    });
  });

  it('hands a Set-Cookie to the loop, which stores it for the next request', async () => {
    await withSession({}, async (session) => {
      await (await session.get(`${base}/set-cookie`)).text();
      await (await session.get(`${base}/echo-cookie`)).text();
      expect(cookies.at(-1)).toBe('first=1');
    });
  });

  it('hands a status to retry to the loop', async () => {
    await withSession({}, async (session) => {
      const response = await session.get(`${base}/flaky`);
      expect(response.status).toBe(200);
      expect(response.attempts).toBe(2);
      expect(await response.text()).toBe('recovered');
    });
  });

  it('hands a redirect to the loop, which follows it', async () => {
    await withSession({}, async (session) => {
      const response = await session.get(`${base}/moved`);
      expect(response.status).toBe(200);
      expect(response.url).toBe(`${base}/ok`);
      expect(await response.text()).toBe('fine');
    });
  });

  it('hands a status error to the loop with throwOnStatus', async () => {
    await withSession({}, async (session) => {
      const error = await rejectionOf(session.get(`${base}/missing`, { throwOnStatus: true }));
      expect(error).toBeInstanceOf(HTTPStatusError);
      expect((error as HTTPStatusError).attempts).toBe(1);
    });
  });

  it('runs response hooks on the first response', async () => {
    const seen: number[] = [];
    const { session } = fastSession({
      hooks: { response: [(response) => void seen.push(response.status)] },
    });
    try {
      await (await session.get(`${base}/ok`)).text();
      expect(seen).toEqual([200]);
    } finally {
      await session.close();
    }
  });

  it.each(['dogged:attempt:end', 'dogged:request:end'])(
    'publishes %s to its only subscriber',
    async (name) => {
      const messages: { attempt: number | undefined; status: number | undefined }[] = [];
      const onMessage = (message: unknown): void => {
        // An attempt's message names its number; a request's, how many attempts it made.
        const m = message as { attempt?: number; attempts?: number; status: number | undefined };
        messages.push({ attempt: m.attempt ?? m.attempts, status: m.status });
      };
      subscribe(name, onMessage);
      const { session } = fastSession();
      try {
        await (await session.get(`${base}/ok`)).text();
      } finally {
        unsubscribe(name, onMessage);
        await session.close();
      }
      expect(messages).toEqual([{ attempt: 1, status: 200 }]);
    },
  );

  it('ends with the caller’s reason when the caller aborts while the head is awaited', async () => {
    const session = new Session({ logger: false });
    const controller = new AbortController();
    const reason = new Error('the caller gave up');
    try {
      const pending = session.get(`${base}/slow`, { signal: controller.signal });
      while ((hits.get('/slow') ?? 0) === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      controller.abort(reason);
      expect(await rejectionOf(pending)).toBe(reason);
      expect(hits.get('/slow')).toBe(1);
    } finally {
      await session.close();
    }
  });

  it('hands a connection failure to the loop, which retries it', async () => {
    await withSession({ retry: { total: 2, backoffFactor: 0 } }, async (session) => {
      const port = await closedPort();
      const error = await rejectionOf(session.get(`http://127.0.0.1:${port}/ok`));
      expect((error as { attempts?: number }).attempts).toBe(3);
    });
  });
});
