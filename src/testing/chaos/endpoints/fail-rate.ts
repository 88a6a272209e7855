import type { Route } from '../route.js';
import { RETRY_AFTER_PARAMS, retryAfterHeaders } from './retry-after.js';

/** `/fail-rate`: each request fails with probability `p`, drawn from a seeded stream. */
export const failRateRoute: Route = {
  path: '/fail-rate',
  summary:
    'Fails each request with probability p. Draws come from a seeded stream per (seed, key), so a run is reproducible.',
  query: [
    { name: 'p', description: 'Failure probability, 0 to 1.', default: 0.5 },
    { name: 'status', description: 'The status of a failure.', default: 503 },
    { name: 'seed', description: "The stream's seed; the server's --seed when omitted." },
    ...RETRY_AFTER_PARAMS,
  ],
  example: '/fail-rate?p=0.3&status=503&seed=42',
  handle(ctx) {
    const p = ctx.query.decimal('p', 0.5, { min: 0, max: 1 });
    const status = ctx.query.integer('status', 503, { min: 200, max: 599 });
    const seed = ctx.query.integer('seed', ctx.seed, { min: 0, max: 0xffff_ffff });
    const retryAfter = retryAfterHeaders(ctx.query);
    const { value, draw } = ctx.state.nextDraw(seed, ctx.query.string('key') ?? '');
    const failed = value < p;
    const headers = { 'x-chaos-draw': String(draw) };
    if (failed) ctx.json(status, { draw, failed, status }, { ...headers, ...retryAfter });
    else ctx.json(200, { draw, failed }, headers);
  },
};
