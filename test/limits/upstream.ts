import { createServer as createHttpServer } from 'node:http';
import type { Socket } from 'node:net';

// The upstream: a tiny origin that can be stopped and started on the same port.

export interface Upstream {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Requests answered so far. */
  readonly requests: number;
  /** True while it listens. */
  readonly running: boolean;
  /**
   * Stops listening and destroys every open connection: a proxy in front gets "connection
   * refused" (nginx answers 502).
   */
  stop(): Promise<void>;
  /** Listens again, on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

/** An in-process HTTP server on 127.0.0.1 answering `200 ok <path>\n` to everything. */
export async function startUpstream(): Promise<Upstream> {
  let requests = 0;
  let running = false;
  let closed = false;
  const sockets = new Set<Socket>();
  const server = createHttpServer((req, res) => {
    requests++;
    req.resume();
    const body = `ok ${req.url ?? '/'}\n`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        running = true;
        resolve();
      });
    });
  await listen(0);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('unexpected address');
  const port = address.port;
  const stop = async (): Promise<void> => {
    if (!running) return;
    running = false;
    const done = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await done;
  };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get requests() {
      return requests;
    },
    get running() {
      return running;
    },
    stop,
    start: async () => {
      if (running || closed) return;
      await listen(port);
    },
    close: async () => {
      closed = true;
      await stop();
    },
  };
}
