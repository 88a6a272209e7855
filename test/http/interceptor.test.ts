import {
  Agent,
  type Dispatcher,
  getGlobalDispatcher,
  request,
  setGlobalDispatcher,
  fetch as undiciFetch,
} from 'undici';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RetryPolicy, retryInterceptor } from '../../src/http/index.js';
import { type ChaosServer, FakeClock, startChaosServer } from '../../src/testing/index.js';

let chaos: ChaosServer;
let previous: Dispatcher;
let agent: Dispatcher;
beforeAll(async () => {
  chaos = await startChaosServer();
});
afterAll(() => chaos.close());
beforeEach(() => {
  chaos.reset();
  previous = getGlobalDispatcher();
  agent = new Agent().compose(
    retryInterceptor({ policy: { backoffFactor: 0 }, clock: new FakeClock({ autoAdvance: true }) }),
  );
  setGlobalDispatcher(agent);
});
afterEach(async () => {
  setGlobalDispatcher(previous);
  await agent.close();
});

describe('retryInterceptor: retries for code that uses undici directly', () => {
  it("gives Node's global fetch dogged's retries without changing the call", async () => {
    const res = await globalThis.fetch(`${chaos.url}/flaky/g1?fail=2&status=503`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ attempt: 3 });
    expect(chaos.log()).toHaveLength(3);
  });

  it('gives undici.request the same retries', async () => {
    const res = await request(`${chaos.url}/flaky/g2?fail=1&mode=reset`);
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toMatchObject({ attempt: 2 });
  });

  it("and undici's own fetch", async () => {
    const res = await undiciFetch(`${chaos.url}/flaky/g3?fail=1&status=429&retry-after=0`);
    expect(res.status).toBe(200);
  });

  it('retried responses are drained and their connections reused', async () => {
    for (let i = 0; i < 20; i++)
      await (await request(`${chaos.url}/flaky/g4-${i}?fail=1&status=500`)).body.text();
    const connections = new Set(chaos.log().map((a) => a.connectionId));
    expect(chaos.log()).toHaveLength(40);
    expect(connections.size).toBeLessThanOrEqual(2);
  });

  it('delivers the last response when retries run out, and does not retry a POST', async () => {
    const res = await request(`${chaos.url}/status/503`);
    expect(res.statusCode).toBe(503);
    await res.body.text();
    expect(chaos.log()).toHaveLength(4);
    chaos.reset();
    const post = await request(`${chaos.url}/status/503`, { method: 'POST', body: 'x' });
    expect(post.statusCode).toBe(503);
    await post.body.text();
    expect(chaos.log()).toHaveLength(1);
  });

  it('a POST with an Idempotency-Key is retried', async () => {
    const res = await request(`${chaos.url}/flaky/g5?fail=1&mode=reset`, {
      method: 'POST',
      body: 'x',
      headers: { 'idempotency-key': 'k-1' },
    });
    expect(res.statusCode).toBe(200);
    await res.body.text();
    expect(chaos.log()).toHaveLength(2);
  });

  it('a POST that failed after sending is not retried: the error reaches the caller', async () => {
    await expect(
      request(`${chaos.url}/flaky/g6?fail=1&mode=reset`, { method: 'POST', body: 'x' }),
    ).rejects.toMatchObject({
      name: 'ConnectionResetError',
    });
    expect(chaos.log()).toHaveLength(1);
  });

  it('an abort during a retry sleep ends the request at once', async () => {
    const slow = new Agent().compose(retryInterceptor(new RetryPolicy({ backoffFactor: 60_000 })));
    const controller = new AbortController();
    const pending = request(`${chaos.url}/status/503`, {
      dispatcher: slow,
      signal: controller.signal,
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    controller.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
    await slow.close();
  });
});
