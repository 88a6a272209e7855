/**
 * Small loopback servers for the hostile tests: a target that sets cookies and tokens, fails
 * once per key, answers formulas; and an HTTP proxy (CONNECT) that requires a password.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';

export interface Target {
  readonly url: string;
  /** The request headers each request arrived with, in order. */
  readonly seen: IncomingMessage['headers'][];
  close(): Promise<void>;
}

/**
 * `/flaky/KEY`: 503 the first time for each key, then 200. `/cookie`: 200 with `Set-Cookie` and
 * `X-Session-Token` carrying `secrets.cookie` and `secrets.token`. `/body?text=...`: that text.
 * `/later`: 503 with `Retry-After: 3600`. `/slow`: 200 after 1.5 s. Anything else: 404.
 */
export async function startTarget(
  secrets: { cookie?: string; token?: string } = {},
): Promise<Target> {
  const failed = new Set<string>();
  const seen: IncomingMessage['headers'][] = [];
  const server: Server = createServer((req, res) => {
    seen.push(req.headers);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const [, what, key = ''] = url.pathname.split('/');
    if (what === 'flaky') {
      if (!failed.has(key)) {
        failed.add(key);
        res.writeHead(503).end('try again');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`ok ${key}`);
    } else if (what === 'cookie') {
      res
        .writeHead(200, {
          'set-cookie': `sid=${secrets.cookie ?? 'none'}; HttpOnly`,
          'x-session-token': secrets.token ?? 'none',
          'content-type': 'text/plain',
        })
        .end('cookie set');
    } else if (what === 'body') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(url.searchParams.get('text') ?? '');
    } else if (what === 'later') {
      res.writeHead(503, { 'retry-after': '3600' }).end('later');
    } else if (what === 'slow') {
      setTimeout(() => res.writeHead(200).end('slow'), 1500);
    } else {
      res.writeHead(404).end('not found');
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface AuthProxy {
  /** `http://127.0.0.1:PORT`, without credentials. */
  readonly url: string;
  /** CONNECTs accepted (with the right credentials). */
  readonly tunnels: () => number;
  close(): Promise<void>;
}

/** An HTTP proxy that tunnels CONNECT when `Proxy-Authorization` carries `user:password`. */
export async function startAuthProxy(user: string, password: string): Promise<AuthProxy> {
  const expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  let tunnels = 0;
  const sockets = new Set<Socket>();
  const server = createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    sockets.add(client);
    client.on('error', () => {});
    if (req.headers['proxy-authorization'] !== expected) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      tunnels++;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    tunnels: () => tunnels,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
