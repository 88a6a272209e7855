import type { ChaosListenerName } from '../arrival-log.js';
import { badParameter, parseInteger } from '../params.js';
import type { Route } from '../route.js';
import { echoPayload } from './echo.js';
import { headerValue } from './retry-after.js';

const REDIRECT_STATUSES = [301, 302, 303, 307, 308];

/** `/redirect/:n`: a chain of `n` redirects ending at an echo. */
export const redirectRoute: Route = {
  path: '/redirect/:n',
  summary:
    'Redirects to /redirect/<n-1> (query kept) until /redirect/0, which answers like /echo, so the final request can be inspected.',
  pathParams: [{ name: 'n', description: 'Redirects left, 0-100.' }],
  query: [
    { name: 'status', description: '301, 302, 303, 307 or 308.', default: 302 },
    { name: 'absolute', description: 'Send an absolute Location URL.', default: false },
    {
      name: 'cross-origin',
      description:
        'Each hop goes to the other listener (another port: another origin); implies absolute.',
      default: false,
    },
  ],
  example: '/redirect/3',
  handle(ctx) {
    const n = parseInteger('n', ctx.pathParams.n ?? '', { min: 0, max: 100 });
    const status = ctx.query.integer('status', 302, { min: 300, max: 399 });
    if (!REDIRECT_STATUSES.includes(status)) {
      throw badParameter(
        'status',
        `status must be one of ${REDIRECT_STATUSES.join(', ')}, got ${status}`,
      );
    }
    const absolute = ctx.query.boolean('absolute', false);
    const crossOrigin = ctx.query.boolean('cross-origin', false);
    if (n === 0) {
      ctx.json(200, echoPayload(ctx));
      return;
    }
    const queryStart = ctx.target.indexOf('?');
    const search = queryStart >= 0 ? ctx.target.slice(queryStart) : '';
    const next: ChaosListenerName = ctx.listener === 'primary' ? 'secondary' : 'primary';
    const origin = crossOrigin ? ctx.origins[next] : absolute ? ctx.origins[ctx.listener] : '';
    const location = `${origin}/redirect/${n - 1}${search}`;
    ctx.json(status, { redirectsLeft: n - 1, location }, { location });
  },
};

/** `/redirect-to`: one redirect to any URL. */
export const redirectToRoute: Route = {
  path: '/redirect-to',
  summary: 'Redirects to `url` with the given 3xx status.',
  query: [
    { name: 'url', description: 'The Location to send (required).' },
    { name: 'status', description: 'Any 3xx status.', default: 302 },
  ],
  example: '/redirect-to?url=/echo&status=307',
  handle(ctx) {
    const location = headerValue('url', ctx.query.requiredString('url'));
    const status = ctx.query.integer('status', 302, { min: 300, max: 399 });
    ctx.json(status, { location }, { location });
  },
};
