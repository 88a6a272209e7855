import type { Route } from '../route.js';

/** `/ban`: per client IP, 403 once more than `after` requests fall in the sliding window. */
export const banRoute: Route = {
  path: '/ban',
  summary:
    'Per client IP (the socket remote address): 200 for the first `after` requests in any `window` ms, 403 beyond. Refused requests count too, as a real firewall would.',
  query: [
    { name: 'after', description: 'Requests allowed per window.', default: 5 },
    { name: 'window', description: 'Sliding window, milliseconds.', default: 60_000 },
  ],
  example: '/ban?after=3&window=10000',
  handle(ctx) {
    const after = ctx.query.integer('after', 5, { min: 0 });
    const windowMs = ctx.query.integer('window', 60_000, { min: 1 });
    const counter = ctx.state.banCounter(ctx.client.address, after, windowMs);
    const requests = counter.hit(ctx.now());
    const body = { client: ctx.client.address, requests, after, windowMs };
    const headers = { 'x-chaos-requests': String(requests) };
    if (requests > after) ctx.json(403, { error: 'banned', ...body }, headers);
    else ctx.json(200, body, headers);
  },
};

/** `/ratelimit`: per client IP token bucket; 429 + Retry-After when it is empty. */
export const rateLimitRoute: Route = {
  path: '/ratelimit',
  summary:
    'Per client IP token bucket holding `burst` tokens, refilled at `rps` per second. Empty: 429 with Retry-After in whole seconds (rounded up). RateLimit-Limit/-Remaining/-Reset on every answer.',
  query: [
    { name: 'rps', description: 'Refill rate, tokens per second (may be fractional).', default: 1 },
    { name: 'burst', description: 'Bucket capacity.', default: 1 },
  ],
  example: '/ratelimit?rps=2&burst=5',
  handle(ctx) {
    const rps = ctx.query.decimal('rps', 1, { min: 0.000_001 });
    const burst = ctx.query.integer('burst', 1, { min: 1 });
    const now = ctx.now();
    const decision = ctx.state.bucket(ctx.client.address, rps, burst, now).take(now);
    const resetSeconds = Math.ceil(decision.retryAfterMs / 1000);
    const headers = {
      'ratelimit-limit': String(burst),
      'ratelimit-remaining': String(decision.remaining),
      'ratelimit-reset': String(resetSeconds),
    };
    const body = { client: ctx.client.address, rps, burst, remaining: decision.remaining };
    if (decision.allowed) {
      ctx.json(200, body, headers);
      return;
    }
    const retryAfter = Math.max(1, resetSeconds);
    ctx.json(
      429,
      { error: 'rate_limited', retryAfterSeconds: retryAfter, ...body },
      { ...headers, 'retry-after': String(retryAfter) },
    );
  },
};
