import type { ChaosContext } from '../context.js';
import { sendCutShort } from '../fault-actions.js';
import { badParameter } from '../params.js';
import { closeConnection, resetConnection, writeFlushed } from '../respond.js';
import type { Route } from '../route.js';

/** `/reset`: the connection dies before a single response byte. */
export const resetRoute: Route = {
  path: '/reset',
  summary:
    'Closes the connection before any response byte: a TCP RST (ECONNRESET) by default, or a clean FIN (tcp=fin, "socket hang up").',
  query: [
    { name: 'tcp', description: 'rst (abortive reset) or fin (orderly close).', default: 'rst' },
  ],
  example: '/reset',
  handle(ctx) {
    const tcp = ctx.query.oneOf('tcp', ['rst', 'fin'] as const, 'rst');
    if (tcp === 'rst') resetConnection(ctx.socket);
    else closeConnection(ctx.socket);
  },
};

function cutParams(ctx: ChaosContext): { sent: number; declared: number } {
  const declared = ctx.query.integer('declared', 1024, { min: 1, max: 100 * 1024 * 1024 });
  const sent = ctx.query.integer('bytes', Math.floor(declared / 2), { min: 0 });
  if (sent >= declared) {
    throw badParameter('bytes', `bytes (${sent}) must be less than declared (${declared})`);
  }
  return { sent, declared };
}

const CUT_PARAMS = [
  { name: 'bytes', description: 'Body bytes actually sent.', default: 'declared / 2' },
  { name: 'declared', description: 'The Content-Length promised.', default: 1024 },
] as const;

/** `/reset-mid-body`: part of the body, then an RST. */
export const resetMidBodyRoute: Route = {
  path: '/reset-mid-body',
  summary:
    'Promises `declared` bytes, sends exactly `bytes` of them, then resets the connection (RST).',
  query: CUT_PARAMS,
  example: '/reset-mid-body?bytes=100&declared=1000',
  async handle(ctx) {
    const { sent, declared } = cutParams(ctx);
    await sendCutShort(ctx, sent, declared, 'rst');
  },
};

/** `/truncate`: part of the body, then a clean close. */
export const truncateRoute: Route = {
  path: '/truncate',
  summary:
    'Promises Content-Length `declared`, sends exactly `bytes` body bytes (those of /bytes/<declared>), then closes the connection (FIN).',
  query: CUT_PARAMS,
  example: '/truncate?bytes=100&declared=1000',
  async handle(ctx) {
    const { sent, declared } = cutParams(ctx);
    await sendCutShort(ctx, sent, declared, 'fin');
  },
};

/** `/chunked-truncate`: a chunked body that never gets its terminating chunk. */
export const chunkedTruncateRoute: Route = {
  path: '/chunked-truncate',
  summary:
    'Sends a chunked body of `chunks` chunks of `size` bytes ("a"s, then "b"s, ...) and closes the connection without the terminating zero-length chunk.',
  query: [
    { name: 'chunks', description: 'Complete chunks sent before the close.', default: 3 },
    { name: 'size', description: 'Bytes per chunk.', default: 16 },
  ],
  example: '/chunked-truncate?chunks=2&size=8',
  async handle(ctx) {
    const chunks = ctx.query.integer('chunks', 3, { min: 0, max: 10_000 });
    const size = ctx.query.integer('size', 16, { min: 1, max: 1024 * 1024 });
    const { res, socket } = ctx;
    res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    for (let i = 0; i < chunks; i++) {
      const letter = String.fromCharCode(97 + (i % 26));
      if (!(await writeFlushed(res, letter.repeat(size)))) return;
    }
    closeConnection(socket);
  },
};
