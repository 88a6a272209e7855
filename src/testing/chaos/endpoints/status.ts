import { STATUS_CODES } from 'node:http';
import { parseInteger } from '../params.js';
import type { Route } from '../route.js';
import { RETRY_AFTER_PARAMS, retryAfterHeaders } from './retry-after.js';

/** `/status/:code`: any final status, with an optional Retry-After. */
export const statusRoute: Route = {
  path: '/status/:code',
  summary: 'Answers with the given status code and, if asked, a Retry-After header.',
  pathParams: [{ name: 'code', description: 'The status code to send, 200-599.' }],
  query: RETRY_AFTER_PARAMS,
  example: '/status/503?retry-after=2',
  handle(ctx) {
    const code = parseInteger('code', ctx.pathParams.code ?? '', { min: 200, max: 599 });
    const headers = retryAfterHeaders(ctx.query);
    ctx.json(code, { status: code, message: STATUS_CODES[code] ?? 'Unknown' }, headers);
  },
};
