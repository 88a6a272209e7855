import { sendCutShort } from '../fault-actions.js';
import { resetConnection } from '../respond.js';
import type { Route } from '../route.js';
import { RETRY_AFTER_PARAMS, retryAfterHeaders } from './retry-after.js';

const MODES = ['status', 'reset', 'delay', 'truncate'] as const;

/** `/flaky/:key`: the first `fail` requests per key fail, the rest succeed. */
export const flakyRoute: Route = {
  path: '/flaky/:key',
  summary:
    'The first `fail` requests for this key fail in the given mode; later ones get 200. Counters are per key.',
  pathParams: [{ name: 'key', description: 'Any name; each key counts its own requests.' }],
  query: [
    { name: 'fail', description: 'How many requests fail before the first success.', default: 1 },
    { name: 'status', description: 'The status of a failure in `status` mode.', default: 503 },
    {
      name: 'mode',
      description:
        'status: send `status`; reset: RST before any byte; delay: answer 200 only after `delay` ms; truncate: Content-Length 1024 but only 512 bytes, then close.',
      default: 'status',
    },
    { name: 'delay', description: 'Milliseconds a failure waits in `delay` mode.', default: 1000 },
    ...RETRY_AFTER_PARAMS,
  ],
  example: '/flaky/job-1?fail=2&status=503&retry-after=1',
  async handle(ctx) {
    const key = ctx.pathParams.key ?? '';
    const fail = ctx.query.integer('fail', 1, { min: 0 });
    const status = ctx.query.integer('status', 503, { min: 200, max: 599 });
    const mode = ctx.query.oneOf('mode', MODES, 'status');
    const delay = ctx.query.integer('delay', 1000, { min: 0, max: 600_000 });
    const retryAfter = retryAfterHeaders(ctx.query);
    const attempt = ctx.state.nextFlakyAttempt(key);
    const headers = { 'x-chaos-attempt': String(attempt) };
    const success = { key, attempt, failed: false };
    if (attempt > fail) {
      ctx.json(200, success, headers);
      return;
    }
    switch (mode) {
      case 'status':
        ctx.json(status, { key, attempt, failed: true, status }, { ...headers, ...retryAfter });
        return;
      case 'reset':
        resetConnection(ctx.socket);
        return;
      case 'delay':
        ctx.later(delay, () => ctx.json(200, { ...success, delayedMs: delay }, headers));
        return;
      case 'truncate':
        ctx.res.setHeader('x-chaos-attempt', String(attempt));
        await sendCutShort(ctx, 512, 1024, 'fin');
        return;
    }
  },
};
