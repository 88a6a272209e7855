import { chaosBytes } from './bytes.js';
import type { ChaosContext } from './context.js';
import { closeConnection, resetConnection, writeFlushed } from './respond.js';

/** How a connection ends: `fin` is an orderly close, `rst` an abortive reset. */
export type ConnectionEnding = 'fin' | 'rst';

/**
 * Promises `declared` bytes (Content-Length), sends exactly the first `sent` bytes of
 * `/bytes/<declared>` (the server's seed), then ends the connection: the client sees a body
 * cut short at that exact byte.
 */
export async function sendCutShort(
  ctx: ChaosContext,
  sent: number,
  declared: number,
  ending: ConnectionEnding,
): Promise<void> {
  const { res, socket } = ctx;
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': declared,
  });
  res.flushHeaders();
  const body = chaosBytes(sent, ctx.seed);
  const delivered = await writeFlushed(res, body.length > 0 ? body : '');
  if (!delivered) return;
  if (ending === 'rst') {
    // An empty write completes only after every earlier write: the headers and bytes are in
    // the kernel (on loopback: in the client's receive buffer) before the RST is sent.
    await new Promise<void>((resolve) => socket.write('', () => resolve()));
    resetConnection(socket);
  } else {
    closeConnection(socket);
  }
}
