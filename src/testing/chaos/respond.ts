import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';

const NO_BODY = new Set([204, 205, 304]);

/** Sends `body` as pretty JSON; a no-op once the response started or its socket closed. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: OutgoingHttpHeaders = {},
): void {
  if (res.headersSent || res.destroyed || res.writableEnded) return;
  if (NO_BODY.has(status)) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/**
 * Writes a body chunk and resolves once it was handed to the kernel (true), or when the
 * response closed first (false). On loopback, handed to the kernel means delivered to the
 * peer's receive buffer, which is what makes truncation points exact.
 */
export function writeFlushed(res: ServerResponse, chunk: Uint8Array | string): Promise<boolean> {
  return new Promise((resolve) => {
    if (res.destroyed) {
      resolve(false);
      return;
    }
    const onClose = (): void => resolve(false);
    res.once('close', onClose);
    res.write(chunk, (error) => {
      res.off('close', onClose);
      resolve(error == null);
    });
  });
}

/** Writes a chunk, waiting for `drain` when the socket buffer is full; false once closed. */
export async function writeWithBackpressure(
  res: ServerResponse,
  chunk: Uint8Array,
): Promise<boolean> {
  if (res.destroyed) return false;
  if (res.write(chunk)) return true;
  return new Promise((resolve) => {
    const done = (ok: boolean) => (): void => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = done(true);
    const onClose = done(false);
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/**
 * Aborts the connection with a TCP RST (SO_LINGER 0): the client sees ECONNRESET. Over TLS
 * (the `tls` option), the TCP socket under the TLS one is reset: a TLS socket cannot be.
 */
export function resetConnection(socket: Socket): void {
  if (socket.destroyed) return;
  if (!(socket instanceof TLSSocket)) {
    socket.resetAndDestroy();
    return;
  }
  // Node keeps the TCP socket a server's TLS socket was made from as `_parent`.
  const tcp = (socket as TLSSocket & { _parent?: unknown })._parent;
  if (tcp instanceof Socket && !tcp.destroyed) tcp.resetAndDestroy();
  socket.destroy();
}

/**
 * Closes the connection cleanly (FIN) once everything written has been flushed: the client
 * sees the end of the stream where the bytes stop.
 */
export function closeConnection(socket: Socket): void {
  if (socket.destroyed) return;
  socket.destroySoon();
}
