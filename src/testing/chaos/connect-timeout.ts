import { connect, type Socket } from 'node:net';
import { Worker } from 'node:worker_threads';
import { clampTimerMs } from '../../retry/timer.js';
import { httpOrigin, isLoopbackHost } from './loopback.js';

/** Options of {@link startConnectTimeoutTarget}. */
export interface ConnectTimeoutTargetOptions {
  /**
   * Loopback address to bind (anything else is refused).
   * @default '127.0.0.1'
   * @example startConnectTimeoutTarget({ host: '::1' })
   */
  host?: string;
  /**
   * How long a probe connection may stay pending before the accept queue is considered full.
   * Loopback handshakes complete in microseconds, so this only needs to absorb event-loop lag.
   * @default 200
   * @example startConnectTimeoutTarget({ probeMs: 500 })
   */
  probeMs?: number;
}

/** An address where TCP connects neither succeed nor fail: they time out. */
export interface ConnectTimeoutTarget {
  /** `http://host:port`: a request to it fails with a connect timeout, never a refusal. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Stops the listener and its thread. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Runs in a worker thread: listen with a backlog of 1, report the port, then block the thread's
 * event loop in Atomics.wait so libuv never calls accept() until the parent raises the flag.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createServer } = require('node:net');
const server = createServer();
server.once('error', (error) => parentPort.postMessage({ error: String(error && error.message) }));
server.listen({ host: workerData.host, port: 0, backlog: 1 }, () => {
  parentPort.postMessage({ port: server.address().port });
  const flag = new Int32Array(workerData.flag);
  while (Atomics.load(flag, 0) === 0) Atomics.wait(flag, 0, 0);
  server.close();
});
`;

/** More fillers than any sane accept queue of backlog 1 holds (Linux holds 2). */
const MAX_FILLERS = 16;

/**
 * Resolves true when `socket` connects, false when it is still connecting `probeMs` later. The
 * verdict is taken in a setImmediate after the timer so that a connect completed while the event
 * loop was busy is seen first (the poll phase runs between timers and immediates).
 */
function connectsWithin(socket: Socket, probeMs: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => setImmediate(() => resolve(false)), clampTimerMs(probeMs));
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/**
 * Starts a loopback address where a TCP connect genuinely times out (SYNs go unanswered), as
 * with a firewalled or overloaded host, instead of being refused (RST) as with a closed port.
 *
 * How: a listener with a backlog of 1 runs in a worker thread whose event loop is blocked in
 * `Atomics.wait`, so it never accepts. Its accept queue is then filled with a few held
 * connections, probing until one stays pending for `probeMs`. From then on, Linux drops every
 * SYN to that port (`tcp_abort_on_overflow = 0`, the default): clients retransmit their SYN and
 * their connect timeout fires. The fillers count as connected, so nothing else should connect
 * before the target is ready.
 *
 * @example
 * const target = await startConnectTimeoutTarget();
 * const agent = new Agent({ connect: { timeout: 100 } });
 * await expect(request(target.url, { dispatcher: agent })).rejects.toMatchObject({
 *   code: 'UND_ERR_CONNECT_TIMEOUT',
 * });
 * await target.close();
 */
export async function startConnectTimeoutTarget(
  options: ConnectTimeoutTargetOptions = {},
): Promise<ConnectTimeoutTarget> {
  const host = options.host ?? '127.0.0.1';
  if (!isLoopbackHost(host)) {
    throw new Error(
      `startConnectTimeoutTarget: refusing to bind ${host}, which is not a loopback address`,
    );
  }
  const probeMs = options.probeMs ?? 200;
  if (!Number.isFinite(probeMs) || probeMs <= 0) {
    throw new TypeError(
      `startConnectTimeoutTarget: probeMs must be a positive number, got ${probeMs}`,
    );
  }
  const flag = new SharedArrayBuffer(4);
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { host, flag } });
  worker.unref();
  const fillers: Socket[] = [];

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      for (const socket of fillers) socket.destroy();
      const view = new Int32Array(flag);
      Atomics.store(view, 0, 1);
      Atomics.notify(view, 0);
      await worker.terminate();
    })();
    return closing;
  };

  try {
    const port = await new Promise<number>((resolve, reject) => {
      worker.once('error', reject);
      worker.once('message', (message: { port?: number; error?: string }) => {
        if (typeof message.port === 'number') resolve(message.port);
        else reject(new Error(`startConnectTimeoutTarget: listen failed: ${message.error}`));
      });
    });
    for (;;) {
      if (fillers.length >= MAX_FILLERS) {
        throw new Error(
          `startConnectTimeoutTarget: ${MAX_FILLERS} connections were accepted by a listener that never calls accept(); this platform does not drop SYNs when the accept queue is full`,
        );
      }
      const socket = connect({ host, port });
      socket.on('error', () => {});
      socket.unref();
      if (!(await connectsWithin(socket, probeMs))) {
        socket.destroy();
        break;
      }
      fillers.push(socket);
    }
    return {
      url: httpOrigin(host, port),
      host,
      port,
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}
