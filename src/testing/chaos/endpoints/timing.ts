import { parseInteger } from '../params.js';
import { writeWithBackpressure } from '../respond.js';
import type { Route } from '../route.js';

/** `/delay/:ms`: the response headers come only after `ms` milliseconds. */
export const delayRoute: Route = {
  path: '/delay/:ms',
  summary: 'Sends nothing for `ms` milliseconds, then 200 (to trigger read/header timeouts).',
  pathParams: [{ name: 'ms', description: 'Milliseconds to wait before the headers, 0-600000.' }],
  example: '/delay/1500',
  handle(ctx) {
    const ms = parseInteger('ms', ctx.pathParams.ms ?? '', { min: 0, max: 600_000 });
    ctx.later(ms, () => ctx.json(200, { delayedMs: ms }));
  },
};

/** `/drip`: headers at once, then the body a few bytes at a time. */
export const dripRoute: Route = {
  path: '/drip',
  summary:
    'Sends the headers at once (Content-Length: bytes), then `chunk` bytes every `interval` ms (to trigger body timeouts).',
  query: [
    { name: 'bytes', description: 'Body length (bytes of "*"), up to 10 MiB.', default: 10 },
    { name: 'interval', description: 'Milliseconds before each chunk.', default: 100 },
    { name: 'chunk', description: 'Bytes per chunk.', default: 1 },
  ],
  example: '/drip?bytes=5&interval=500',
  handle(ctx) {
    const bytes = ctx.query.integer('bytes', 10, { min: 0, max: 10 * 1024 * 1024 });
    const interval = ctx.query.integer('interval', 100, { min: 0, max: 60_000 });
    const chunk = ctx.query.integer('chunk', 1, { min: 1, max: 1024 * 1024 });
    const { res } = ctx;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes });
    res.flushHeaders();
    if (ctx.method === 'HEAD' || bytes === 0) {
      res.end();
      return;
    }
    let remaining = bytes;
    const tick = async (): Promise<void> => {
      const size = Math.min(chunk, remaining);
      remaining -= size;
      if (!(await writeWithBackpressure(res, Buffer.alloc(size, '*')))) return;
      if (remaining === 0) res.end();
      else ctx.later(interval, tick);
    };
    ctx.later(interval, tick);
  },
};
