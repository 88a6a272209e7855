import { createServer, type Server } from 'node:http';
import { createServer as createSecureServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { ChaosArrival, ChaosListenerName } from './arrival-log.js';
import { httpOrigin } from './loopback.js';
import { type ChaosServerOptions, resolveChaosOptions } from './options.js';
import { type ChaosRuntime, createRequestListener } from './router.js';
import { CHAOS_ROUTES } from './routes.js';
import { ChaosState, type ChaosStateSizes } from './state.js';

/** A running chaos server: two listeners (two origins) sharing one set of endpoints and state. */
export interface ChaosServer {
  /** `http://127.0.0.1:<port>` of the main listener (`https://` with the `tls` option). */
  readonly url: string;
  readonly port: number;
  /** The address actually bound, e.g. `127.0.0.1` or `::1`. */
  readonly host: string;
  /** The secondary listener: another port, hence another origin, for cross-origin redirects. */
  readonly secondaryUrl: string;
  readonly secondaryPort: number;
  /** The default seed of `/fail-rate` and `/bytes`. */
  readonly seed: number;
  /** A copy of the arrival log (what `GET /__log` returns), oldest first. */
  log(): ChaosArrival[];
  /** Clears every counter, ban, bucket, stored response and the log (like `/__reset`). */
  reset(): void;
  /**
   * How many keys each endpoint family remembers now (at most 10,000 each, least recently used
   * dropped; keys over 256 characters kept as their SHA-256), and their characters.
   */
  stateSizes(): ChaosStateSizes;
  /**
   * Stops both listeners and destroys every open connection, pending delays included.
   * Idempotent.
   */
  close(): Promise<void>;
  /** `await using chaos = await startChaosServer()` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    // A deep accept queue: 1,000 simultaneous connects must not have SYNs dropped.
    server.listen({ port, host, backlog: 4096 }, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Starts the chaos server: a real HTTP/1.1 server on loopback with deterministic fault
 * endpoints (`GET /` lists them). Every test should start its own on port 0.
 *
 * @example
 * const chaos = await startChaosServer();
 * try {
 *   const res = await fetch(`${chaos.url}/flaky/a?fail=2&status=503`);
 *   // 503, 503, then 200 for key "a"
 * } finally {
 *   await chaos.close();
 * }
 */
export async function startChaosServer(options: ChaosServerOptions = {}): Promise<ChaosServer> {
  const resolved = resolveChaosOptions(options);
  const { clock } = resolved;
  const startedAt = clock.now();
  const state = new ChaosState(resolved.logLimit);
  const sockets = new Set<Socket>();
  const connectionIds = new WeakMap<Socket, number>();
  let connections = 0;
  const runtime: ChaosRuntime = {
    routes: CHAOS_ROUTES,
    state,
    seed: resolved.seed,
    maxBodyBytes: resolved.maxBodyBytes,
    origins: { primary: '', secondary: '' },
    connectionIds,
    now: () => clock.now() - startedAt,
    onArrival: resolved.onArrival,
  };

  const createListener = (name: ChaosListenerName): Server => {
    const listener = createRequestListener(runtime, name);
    const tls = resolved.tls;
    const server: Server = tls
      ? createSecureServer({ key: tls.key, cert: tls.cert, requireHostHeader: false }, listener)
      : createServer({ requireHostHeader: false }, listener);
    server.keepAliveTimeout = resolved.keepAliveTimeoutMs;
    server.on('connection', (socket: Socket) => {
      if (!tls) connectionIds.set(socket, ++connections);
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    // Over TLS, requests see the TLS socket: that is the one to number.
    if (tls)
      server.on('secureConnection', (socket: Socket) => connectionIds.set(socket, ++connections));
    return server;
  };
  const primary = createListener('primary');
  const secondary = createListener('secondary');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const stopped = Promise.all([closeServer(primary), closeServer(secondary)]);
      for (const socket of sockets) socket.destroy();
      await stopped;
    })();
    return closing;
  };

  let primaryAddress: AddressInfo;
  let secondaryAddress: AddressInfo;
  try {
    primaryAddress = await listen(primary, resolved.port, resolved.host);
    secondaryAddress = await listen(secondary, resolved.secondaryPort, resolved.host);
  } catch (error) {
    await close();
    throw error;
  }
  const scheme = resolved.tls ? 'https' : 'http';
  runtime.origins.primary = httpOrigin(primaryAddress.address, primaryAddress.port, scheme);
  runtime.origins.secondary = httpOrigin(secondaryAddress.address, secondaryAddress.port, scheme);

  return {
    url: runtime.origins.primary,
    port: primaryAddress.port,
    host: primaryAddress.address,
    secondaryUrl: runtime.origins.secondary,
    secondaryPort: secondaryAddress.port,
    seed: resolved.seed,
    log: () => state.log.entries(),
    reset: () => state.reset(),
    stateSizes: () => state.sizes(),
    close,
    [Symbol.asyncDispose]: close,
  };
}
