import { once } from 'node:events';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Socket, type Server as TcpServer } from 'node:net';

/** A loopback server started by a test: its URL, what it saw, and how to stop it. */
export interface HostileServer {
  readonly url: string;
  readonly port: number;
  /** Requests received. */
  readonly requests: () => number;
  /** Body bytes written to clients (all requests together). */
  readonly bytesSent: () => number;
  /** Connections the client closed (or that ended) so far. */
  readonly closed: () => number;
  close(): Promise<void>;
}

async function listen(server: Server | TcpServer): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as { port: number }).port;
}

function tracking(server: Server | TcpServer): { closed: () => number; sockets: Set<Socket> } {
  const sockets = new Set<Socket>();
  let closed = 0;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => {
      sockets.delete(socket);
      closed++;
    });
  });
  return { closed: () => closed, sockets };
}

async function stop(server: Server | TcpServer, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Starts `server` on a loopback port and describes it. */
async function serve(
  server: Server | TcpServer,
  counts: { requests: () => number; bytesSent?: () => number },
  scheme = 'http',
): Promise<HostileServer> {
  const seen = tracking(server);
  const port = await listen(server);
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    requests: counts.requests,
    bytesSent: counts.bytesSent ?? (() => 0),
    closed: seen.closed,
    close: () => stop(server, seen.sockets),
  };
}

function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

/** 64 KiB of one byte value, written again and again: a huge body costs no memory. */
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

/**
 * Streams `size` bytes of body per request, generated chunk by chunk with backpressure, with a
 * Content-Length (`announce`) or chunked. `/GET ...?status=N` answers that status.
 */
export async function startBigBody(
  size: number,
  options: { announce?: boolean; headers?: Record<string, string> } = {},
): Promise<HostileServer> {
  let requests = 0;
  let sent = 0;
  const stream = async (res: ServerResponse, left: number): Promise<void> => {
    while (left > 0 && !res.destroyed) {
      const chunk = left >= CHUNK.length ? CHUNK : CHUNK.subarray(0, left);
      left -= chunk.length;
      sent += chunk.length;
      if (!res.write(chunk)) await drainedOrClosed(res);
    }
    if (!res.destroyed) res.end();
  };
  const server = createServer((req, res) => {
    requests++;
    const status = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('status') ?? 200);
    res.writeHead(status, {
      'content-type': 'application/octet-stream',
      ...(options.announce && { 'content-length': String(size) }),
      ...options.headers,
    });
    void stream(res, size).catch(() => res.destroy());
  });
  return serve(server, { requests: () => requests, bytesSent: () => sent });
}

/**
 * Sends the head at once, then one byte of body every `intervalMs`, `bytes` in all (a chunked
 * body that never goes quiet long enough for a read timeout).
 */
export async function startDrip(intervalMs: number, bytes = 1000): Promise<HostileServer> {
  let requests = 0;
  let sent = 0;
  const server = createServer((_req, res) => {
    requests++;
    res.writeHead(200, { 'content-type': 'text/plain' });
    let left = bytes;
    const timer = setInterval(() => {
      if (left-- <= 0) {
        clearInterval(timer);
        res.end();
        return;
      }
      sent++;
      res.write('.');
    }, intervalMs);
    res.once('close', () => clearInterval(timer));
  });
  return serve(server, { requests: () => requests, bytesSent: () => sent });
}

/**
 * Accepts TCP connections and never says a word: a TLS client waits for the ServerHello for
 * ever (until its connect timeout).
 */
export async function startSilent(): Promise<HostileServer> {
  let connections = 0;
  const server = createTcpServer((socket) => {
    connections++;
    // Read (and ignore) the ClientHello, so that the client closing is seen at once.
    socket.resume();
  });
  return serve(server, { requests: () => connections }, 'https');
}

/** Answers 200 with a short body after `delayMs`. */
export async function startSlowAnswer(delayMs: number): Promise<HostileServer> {
  let requests = 0;
  const server = createServer((_req, res) => {
    requests++;
    const timer = setTimeout(() => res.end('late but fine'), delayMs);
    res.once('close', () => clearTimeout(timer));
  });
  return serve(server, { requests: () => requests });
}
