import type { ChaosContext } from '../context.js';
import { KEY_PARAM, type ParamSpec, type Route } from '../route.js';

function withKey(params: readonly ParamSpec[]): readonly ParamSpec[] {
  return params.some((p) => p.name === KEY_PARAM.name) ? params : [...params, KEY_PARAM];
}

function describeRoutes(ctx: ChaosContext): unknown[] {
  return ctx.routes.map((route) => ({
    path: route.path,
    methods: route.methods ?? ['*'],
    summary: route.summary,
    ...(route.pathParams ? { pathParams: route.pathParams } : {}),
    query: route.anyQuery ? 'any' : withKey(route.query ?? []),
    example: route.example,
  }));
}

/** `GET /`: the index of every endpoint and its parameters. */
export const indexRoute: Route = {
  path: '/',
  methods: ['GET'],
  summary: 'This index: every endpoint, its parameters and an example.',
  example: '/',
  handle(ctx) {
    ctx.json(200, {
      name: 'dogged chaos server',
      seed: ctx.seed,
      urls: ctx.origins,
      notes: [
        'Unknown endpoints, unknown query parameters and malformed values get a 4xx JSON error naming the parameter.',
        'Every endpoint accepts `key`, a label recorded in the arrival log (GET /__log).',
        'Per-client state (ban, ratelimit) is keyed by the socket remote address: bind clients to 127.0.0.2, 127.0.0.3, ... to act as different clients.',
      ],
      endpoints: describeRoutes(ctx),
    });
  },
};

/** `GET /__log`: the arrival log. */
export const logRoute: Route = {
  path: '/__log',
  methods: ['GET'],
  isControl: true,
  summary:
    'Requests in arrival order: seq, timeMs (monotonic), method, path, target, client address and port, connection id, listener, key. Control endpoints are not logged.',
  query: [
    { name: 'key', description: 'Only arrivals with this key.' },
    { name: 'path', description: 'Only arrivals whose path starts with this prefix.' },
  ],
  example: '/__log?path=/flaky',
  handle(ctx) {
    const key = ctx.query.string('key');
    const prefix = ctx.query.string('path');
    const arrivals = ctx.state.log
      .entries()
      .filter(
        (a) =>
          (key === undefined || a.key === key) &&
          (prefix === undefined || a.path.startsWith(prefix)),
      );
    ctx.json(200, { arrivals, dropped: ctx.state.log.dropped });
  },
};

/** `/__reset`: forget everything. */
export const resetStateRoute: Route = {
  path: '/__reset',
  methods: ['POST', 'GET'],
  isControl: true,
  summary:
    'Clears all state: flaky counters, fail-rate streams, bans, rate-limit buckets, cut keys, idempotency store and the arrival log.',
  example: '/__reset',
  handle(ctx) {
    ctx.state.reset();
    ctx.json(200, { reset: true });
  },
};
