import { Client, request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { fetchAll, fetchJson } from './chaos-support.js';

let chaos: ChaosServer;
beforeAll(async () => {
  chaos = await startChaosServer();
});
afterAll(() => chaos.close());
beforeEach(() => chaos.reset());

async function processed(): Promise<number> {
  return Number((await fetchJson(`${chaos.url}/idempotent/count`)).json.processed);
}

function post(key: string | undefined, body = 'order #1', query = '') {
  return fetchJson(`${chaos.url}/idempotent${query}`, {
    method: 'POST',
    body,
    headers: key === undefined ? {} : { 'idempotency-key': key },
  });
}

describe('/idempotent', () => {
  it('processes a keyed POST once and replays its response', async () => {
    const first = await post('k1');
    const second = await post('k1');
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({ processed: true, sequence: 1, key: 'k1' });
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(second.status).toBe(201);
    expect(second.json).toEqual(first.json);
    expect(second.headers['idempotent-replayed']).toBe('true');
    expect(await processed()).toBe(1);
  });

  it('processes a POST without a key every time', async () => {
    await post(undefined);
    await post(undefined);
    expect(await processed()).toBe(2);
  });

  it('answers 422 when a key is reused with a different body', async () => {
    await post('k2', 'a');
    const { status, json } = await post('k2', 'b');
    expect(status).toBe(422);
    expect(json.error).toBe('idempotency_key_reused');
    expect(await processed()).toBe(1);
  });

  it('fault=reset processes, then resets; the retry with the same key gets the stored response', async () => {
    await expect(
      request(`${chaos.url}/idempotent?fault=reset`, {
        method: 'POST',
        body: 'x',
        headers: { 'idempotency-key': 'k3' },
      }),
    ).rejects.toThrow();
    const retry = await post('k3', 'x', '?fault=reset');
    expect(retry.status).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(await processed()).toBe(1);
  });

  it('fault=reset without a key duplicates the side effect on every retry', async () => {
    for (let i = 0; i < 2; i++) {
      await expect(
        request(`${chaos.url}/idempotent?fault=reset`, { method: 'POST', body: 'x' }),
      ).rejects.toThrow();
    }
    expect(await processed()).toBe(2);
  });

  it('refuses an empty Idempotency-Key', async () => {
    const { status, json } = await post(' ');
    expect(status).toBe(400);
    expect(json.parameter).toBe('Idempotency-Key');
  });

  it('counts distinct keys', async () => {
    await post('a');
    await post('b');
    await post('a');
    expect((await fetchJson(`${chaos.url}/idempotent/count`)).json).toEqual({
      processed: 2,
      keys: 2,
    });
  });
});

describe('arrival log', () => {
  it('records method, path, target, client, connection, listener and key', async () => {
    await fetchAll(`${chaos.url}/flaky/a?fail=0`);
    await fetchAll(`${chaos.url}/status/200?key=tag`);
    await post('idem');
    const log = chaos.log();
    expect(log.map((a) => [a.seq, a.method, a.path, a.key])).toEqual([
      [1, 'GET', '/flaky/a', 'a'],
      [2, 'GET', '/status/200', 'tag'],
      [3, 'POST', '/idempotent', 'idem'],
    ]);
    expect(log[1]).toMatchObject({
      target: '/status/200?key=tag',
      clientAddress: '127.0.0.1',
      listener: 'primary',
    });
    expect(log[0]?.timeMs).toBeGreaterThanOrEqual(0);
    expect(log[1]?.timeMs).toBeGreaterThanOrEqual(log[0]?.timeMs ?? 0);
  });

  it('shows keep-alive reuse as a repeated connection id', async () => {
    const client = new Client(chaos.url);
    try {
      await fetchAll(`${chaos.url}/status/200`, { dispatcher: client });
      await fetchAll(`${chaos.url}/status/200`, { dispatcher: client });
    } finally {
      await client.close();
    }
    await fetchAll(`${chaos.url}/status/200?key=other`, { reset: true });
    const [first, second, third] = chaos.log();
    expect(second?.connectionId).toBe(first?.connectionId);
    expect(third?.connectionId).not.toBe(first?.connectionId);
  });

  it('is served by GET /__log, with filters, and leaves control requests out', async () => {
    await fetchAll(`${chaos.url}/flaky/x?fail=0`);
    await fetchAll(`${chaos.url}/status/200?key=x`);
    await fetchAll(`${chaos.url}/status/200`);
    const all = await fetchJson(`${chaos.url}/__log`);
    expect((all.json.arrivals as unknown[]).length).toBe(3);
    const byKey = await fetchJson(`${chaos.url}/__log?key=x`);
    expect((byKey.json.arrivals as unknown[]).length).toBe(2);
    const byPath = await fetchJson(`${chaos.url}/__log?path=/status`);
    expect((byPath.json.arrivals as { path: string }[]).map((a) => a.path)).toEqual([
      '/status/200',
      '/status/200',
    ]);
    expect(chaos.log()).toHaveLength(3);
  });

  it('logs requests that were refused too', async () => {
    await fetchAll(`${chaos.url}/nowhere`);
    await fetchAll(`${chaos.url}/flaky/a?fail=x`);
    expect(chaos.log().map((a) => a.path)).toEqual(['/nowhere', '/flaky/a']);
  });

  it('drops the oldest arrivals past logLimit and counts them', async () => {
    const small = await startChaosServer({ logLimit: 2 });
    try {
      for (let i = 0; i < 3; i++) await fetchAll(`${small.url}/status/200?key=${i}`);
      const { json } = await fetchJson(`${small.url}/__log`);
      expect((json.arrivals as { key: string }[]).map((a) => a.key)).toEqual(['1', '2']);
      expect(json.dropped).toBe(1);
    } finally {
      await small.close();
    }
  });
});

describe('/__reset', () => {
  it('clears counters, stored responses and the log', async () => {
    await fetchAll(`${chaos.url}/flaky/r?fail=1`);
    await post('r');
    const { status } = await fetchAll(`${chaos.url}/__reset`, { method: 'POST' });
    expect(status).toBe(200);
    expect(chaos.log()).toEqual([]);
    expect((await fetchAll(`${chaos.url}/flaky/r?fail=1`)).status).toBe(503);
    expect((await post('r')).headers['idempotent-replayed']).toBeUndefined();
  });
});
