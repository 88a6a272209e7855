import { createServer, type Socket } from 'node:net';
import { httpOrigin, isLoopbackHost } from './loopback.js';

/** Options of {@link startBlackhole}. */
export interface BlackholeOptions {
  /**
   * Loopback address to bind (anything else is refused).
   * @default '127.0.0.1'
   * @example startBlackhole({ host: '::1' })
   */
  host?: string;
  /**
   * Port to bind; 0 picks a free one.
   * @default 0
   * @example startBlackhole({ port: 9999 })
   */
  port?: number;
}

/** A listener that accepts connections and never answers. */
export interface Blackhole {
  /** `http://host:port`: requests to it connect, are sent, and never get a byte back. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Bytes received so far, across all connections (the requests it swallowed). */
  readonly bytesReceived: number;
  /** Stops listening and destroys every accepted connection. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a TCP listener that accepts every connection, reads (and discards) whatever the client
 * sends, and never writes a byte: the connect succeeds, then the client waits forever. Use it to
 * prove read/header timeouts fire. (For a connect that never completes, see
 * {@link startConnectTimeoutTarget}.)
 *
 * @example
 * const hole = await startBlackhole();
 * const agent = new Agent({ headersTimeout: 100 }); // undici
 * await expect(request(hole.url, { dispatcher: agent })).rejects.toMatchObject({
 *   code: 'UND_ERR_HEADERS_TIMEOUT',
 * });
 * await hole.close();
 */
export async function startBlackhole(options: BlackholeOptions = {}): Promise<Blackhole> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopbackHost(host)) {
    throw new Error(`startBlackhole: refusing to bind ${host}, which is not a loopback address`);
  }
  const sockets = new Set<Socket>();
  let connections = 0;
  let bytesReceived = 0;
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('data', (chunk: Buffer) => {
      bytesReceived += chunk.length;
    });
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: options.port ?? 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('unexpected address');
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const socket of sockets) socket.destroy();
    });
    return closing;
  };
  return {
    url: httpOrigin(address.address, address.port),
    host: address.address,
    port: address.port,
    get connections() {
      return connections;
    },
    get bytesReceived() {
      return bytesReceived;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
