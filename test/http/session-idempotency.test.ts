import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ConnectionResetError,
  MaxRetryError,
  ReadTimeoutError,
  type Session,
  UnreplayableBodyError,
} from '../../src/http/index.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { arrivals, fastSession, rejectionOf } from './session-support.js';

let chaos: ChaosServer;
let session: Session;

beforeAll(async () => {
  chaos = await startChaosServer();
  ({ session } = fastSession({ timeout: { read: 200 } }));
});
afterAll(async () => {
  await session.close();
  await chaos.close();
});
beforeEach(() => chaos.reset());

/** How many POSTs /idempotent really processed (its side effects). */
async function sideEffects(): Promise<number> {
  const count = await (await session.get(`${chaos.url}/idempotent/count`)).json();
  return (count as { processed: number }).processed;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('POST without an idempotency key', () => {
  it('is not retried when the response is lost after processing (reset instead of an answer)', async () => {
    const error = await rejectionOf(
      session.post(`${chaos.url}/idempotent?fault=reset`, { json: { order: 1 } }),
    );
    expect(error).toBeInstanceOf(ConnectionResetError);
    expect((error as ConnectionResetError).mayHaveReachedServer).toBe(true);
    expect(arrivals(chaos, '/idempotent')).toHaveLength(1);
    expect(await sideEffects()).toBe(1);
  });

  it('is not retried after a read timeout (the server processed it, then answered late)', async () => {
    const error = await rejectionOf(
      session.post(`${chaos.url}/idempotent?delay=5000`, { json: { order: 2 } }),
    );
    expect(error).toBeInstanceOf(ReadTimeoutError);
    expect(arrivals(chaos, '/idempotent')).toHaveLength(1);
    expect(await sideEffects()).toBe(1);
  });

  it('PATCH behaves like POST', async () => {
    const error = await rejectionOf(session.patch(`${chaos.url}/reset`, { body: 'x' }));
    expect(error).toBeInstanceOf(ConnectionResetError);
    expect(arrivals(chaos)).toHaveLength(1);
  });

  it('PUT (idempotent by definition) is retried after the same failure', async () => {
    const error = await rejectionOf(session.put(`${chaos.url}/reset`, { body: 'x' }));
    expect(error).toBeInstanceOf(MaxRetryError);
    expect(arrivals(chaos)).toHaveLength(4);
  });
});

describe('POST with idempotencyKey: true', () => {
  it('is retried when the response is lost, and the side effect happens exactly once', async () => {
    const response = await session.post(`${chaos.url}/idempotent?fault=reset`, {
      json: { order: 3 },
      idempotencyKey: true,
    });
    expect(response.status).toBe(201);
    expect(response.attempts).toBe(2);
    expect(response.headers.get('idempotent-replayed')).toBe('true');
    const body = (await response.json()) as { key: string; sequence: number };
    expect(body.key).toMatch(UUID);
    expect(body.sequence).toBe(1);
    const posts = arrivals(chaos, '/idempotent');
    expect(posts).toHaveLength(2);
    expect(posts.map((a) => a.key)).toEqual([body.key, body.key]);
    expect(await sideEffects()).toBe(1);
  });

  it('is retried after a read timeout, and the side effect happens exactly once', async () => {
    const response = await session.post(`${chaos.url}/idempotent?delay=5000`, {
      json: { order: 4 },
      idempotencyKey: true,
    });
    expect(response.status).toBe(201);
    expect(response.attempts).toBe(2);
    expect(response.history[0]?.error).toBeInstanceOf(ReadTimeoutError);
    expect(await sideEffects()).toBe(1);
  });

  it('sends the same key on every attempt (the arrival log records each one)', async () => {
    await expect(
      session.post(`${chaos.url}/status/503`, { body: 'x', idempotencyKey: true }),
    ).rejects.toBeInstanceOf(MaxRetryError);
    const keys = arrivals(chaos).map((a) => a.key);
    expect(keys).toHaveLength(4);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(UUID);
  });

  it('generates a fresh key per logical request', async () => {
    const first = await session.post(`${chaos.url}/echo`, { body: 'a', idempotencyKey: true });
    const second = await session.post(`${chaos.url}/echo`, { body: 'a', idempotencyKey: true });
    const keyOf = async (r: typeof first) =>
      ((await r.json()) as { headers: Record<string, string> }).headers['idempotency-key'];
    const [a, b] = [await keyOf(first), await keyOf(second)];
    expect(a).toMatch(UUID);
    expect(b).toMatch(UUID);
    expect(a).not.toBe(b);
  });

  it('a string key is sent as given', async () => {
    const response = await session.post(`${chaos.url}/idempotent?fault=reset`, {
      json: { order: 5 },
      idempotencyKey: 'order-5',
    });
    expect(((await response.json()) as { key: string }).key).toBe('order-5');
    expect(arrivals(chaos, '/idempotent').map((a) => a.key)).toEqual(['order-5', 'order-5']);
    expect(await sideEffects()).toBe(1);
  });

  it('replays a function body on each attempt: the server sees the same bytes again', async () => {
    // /idempotent answers 422 when a repeat of a key carries a different body.
    const response = await session.post(`${chaos.url}/idempotent?fault=reset`, {
      body: () => Readable.from(['line 1\n', 'line 2\n']),
      idempotencyKey: true,
    });
    expect(response.status).toBe(201);
    expect(response.attempts).toBe(2);
    expect(await response.json()).toMatchObject({ bodyBytes: 14 });
    expect(await sideEffects()).toBe(1);
  });

  it('does not replay a consumed stream: UnreplayableBodyError, one side effect', async () => {
    const error = await rejectionOf(
      session.post(`${chaos.url}/idempotent?fault=reset`, {
        body: Readable.from(['line 1\n', 'line 2\n']),
        idempotencyKey: true,
      }),
    );
    expect(error).toBeInstanceOf(UnreplayableBodyError);
    expect((error as UnreplayableBodyError).cause).toBeInstanceOf(ConnectionResetError);
    expect((error as UnreplayableBodyError).message).toMatch(/function returning a fresh stream/);
    expect(arrivals(chaos, '/idempotent')).toHaveLength(1);
    expect(await sideEffects()).toBe(1);
  });
});
