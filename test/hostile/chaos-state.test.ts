import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ChaosServer,
  MAX_STATE_KEY_LENGTH,
  MAX_STATE_KEYS,
  startChaosServer,
} from '../../src/testing/index.js';

/** Issue 14, row 11: the chaos server's per-key state stays bounded whatever keys clients send. */

let chaos: ChaosServer;
let pool: Pool;
beforeAll(async () => {
  chaos = await startChaosServer({ logLimit: 1000 });
  pool = new Pool(chaos.url, { connections: 16 });
});
afterAll(async () => {
  await pool.close();
  await chaos.close();
});

/** A distinct 8 KB key: its number, padded with a letter. */
function bigKey(i: number): string {
  const head = `k${i}-`;
  return head + 'x'.repeat(8192 - head.length);
}

/** Sends `count` requests made by `make(i)`, 64 at a time; resolves with the statuses seen. */
async function flood(
  count: number,
  make: (i: number) => { path: string; method: 'GET' | 'POST'; headers?: Record<string, string> },
): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      const { path, method, headers } = make(i);
      const res = await pool.request({
        path,
        method,
        ...(headers && { headers }),
        ...(method === 'POST' && { body: '{}' }),
      });
      await res.body.dump();
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  return statuses;
}

describe('the chaos server bounds its per-key state', () => {
  it('40,000 distinct 8 KB Idempotency-Keys: at most 10,000 kept, each key short', async () => {
    const statuses = await flood(40_000, (i) => ({
      path: '/idempotent',
      method: 'POST',
      headers: { 'idempotency-key': bigKey(i), 'content-type': 'application/json' },
    }));
    expect(statuses.get(201)).toBe(40_000);
    const sizes = chaos.stateSizes();
    expect(sizes.idempotent).toBe(MAX_STATE_KEYS);
    // Without the cap, 40,000 keys of 8 KB: 328 million characters held.
    expect(sizes.keyChars).toBeLessThanOrEqual(MAX_STATE_KEYS * MAX_STATE_KEY_LENGTH);
    const count = (await (
      await pool.request({ path: '/idempotent/count', method: 'GET' })
    ).body.json()) as {
      processed: number;
      keys: number;
    };
    expect(count).toEqual({ processed: 40_000, keys: MAX_STATE_KEYS });
    // The arrival log keeps a digest of a long key, not the key.
    for (const arrival of chaos.log())
      expect((arrival.key ?? '').length).toBeLessThanOrEqual(MAX_STATE_KEY_LENGTH);
  }, 180_000);

  it('a recent long key is still replayed (and named in the answer), the oldest forgotten', async () => {
    const recent = bigKey(39_999);
    const replay = await pool.request({
      path: '/idempotent',
      method: 'POST',
      headers: { 'idempotency-key': recent, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(replay.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(((await replay.body.json()) as { key: string }).key).toBe(recent);
    const forgotten = await pool.request({
      path: '/idempotent',
      method: 'POST',
      headers: { 'idempotency-key': bigKey(0), 'content-type': 'application/json' },
      body: '{}',
    });
    expect(forgotten.headers['idempotent-replayed']).toBeUndefined();
    await forgotten.body.dump();
  });

  it('/flaky keys are bounded the same way (12,000 distinct 8 KB keys)', async () => {
    chaos.reset();
    await flood(12_000, (i) => ({ path: `/flaky/${bigKey(i)}?fail=0`, method: 'GET' }));
    const sizes = chaos.stateSizes();
    expect(sizes.flaky).toBe(MAX_STATE_KEYS);
    expect(sizes.keyChars).toBeLessThanOrEqual(MAX_STATE_KEYS * MAX_STATE_KEY_LENGTH);
  }, 120_000);
});
