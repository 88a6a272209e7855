import { createHash } from 'node:crypto';
import { ChaosRequestError } from '../params.js';
import { resetConnection } from '../respond.js';
import type { Route } from '../route.js';

/** `POST /idempotent`: processes each Idempotency-Key once and replays its response. */
export const idempotentRoute: Route = {
  path: '/idempotent',
  methods: ['POST'],
  summary:
    'A POST with an Idempotency-Key is processed once; repeats replay the stored response (Idempotent-Replayed: true; 422 if the body differs). A POST without a key is processed every time.',
  query: [
    {
      name: 'delay',
      description: 'Milliseconds between processing and answering (to trigger read timeouts).',
      default: 0,
    },
    {
      name: 'fault',
      description:
        'none, or reset: process the request, then reset the connection instead of answering (replays are answered normally).',
      default: 'none',
    },
  ],
  example: '/idempotent',
  handle(ctx) {
    const delay = ctx.query.integer('delay', 0, { min: 0, max: 600_000 });
    const fault = ctx.query.oneOf('fault', ['none', 'reset'] as const, 'none');
    const rawKey = ctx.req.headers['idempotency-key'];
    const key = typeof rawKey === 'string' ? rawKey.trim() : undefined;
    if (key === '') {
      throw new ChaosRequestError(
        400,
        'bad_header',
        'the Idempotency-Key header is empty; send a unique value or omit it',
        'Idempotency-Key',
      );
    }
    const fingerprint = createHash('sha256').update(ctx.body).digest('hex');
    const stored = key === undefined ? undefined : ctx.state.storedResponse(key);
    if (stored) {
      if (stored.fingerprint !== fingerprint) {
        throw new ChaosRequestError(
          422,
          'idempotency_key_reused',
          `Idempotency-Key ${JSON.stringify(key)} was already used with a different body`,
          'Idempotency-Key',
        );
      }
      // The key itself is not stored (it may be 8 KB): the replayed request carries it.
      ctx.json(
        stored.status,
        { ...(JSON.parse(stored.body) as object), key },
        { 'idempotent-replayed': 'true' },
      );
      return;
    }
    const sequence = ctx.state.process();
    const payload = { processed: true, sequence, key: key ?? null, bodyBytes: ctx.body.length };
    if (key !== undefined) {
      ctx.state.store(key, {
        fingerprint,
        status: 201,
        body: JSON.stringify({ ...payload, key: null }),
      });
    }
    if (fault === 'reset') {
      resetConnection(ctx.socket);
      return;
    }
    ctx.later(delay, () => ctx.json(201, payload));
  },
};

/** `GET /idempotent/count`: how many POSTs were really processed. */
export const idempotentCountRoute: Route = {
  path: '/idempotent/count',
  methods: ['GET'],
  summary: 'How many /idempotent POSTs were processed, and how many distinct keys are stored.',
  example: '/idempotent/count',
  handle(ctx) {
    ctx.json(200, {
      processed: ctx.state.processedCount,
      keys: ctx.state.idempotencyKeyCount,
    });
  },
};
