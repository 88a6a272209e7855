import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ConnectError,
  ConnectionResetError,
  closeDefaultSession,
  fetch as doggedFetch,
  Session,
} from '../../src/http/index.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { closedPort, fastSession, rejectionOf } from './session-support.js';

let chaos: ChaosServer;
beforeAll(async () => {
  chaos = await startChaosServer();
});
afterAll(async () => {
  await closeDefaultSession();
  await chaos.close();
});
beforeEach(() => chaos.reset());

describe('session.fetch: a drop-in WHATWG fetch with retries', () => {
  it('returns a real Response after retrying a flaky endpoint', async () => {
    const { session } = fastSession();
    const res = await session.fetch(`${chaos.url}/flaky/f1?fail=2&status=503`);
    expect(res).toBeInstanceOf(Response);
    expect(res.status).toBe(200);
    expect(res.ok).toBe(true);
    expect(res.headers.get('content-type')).toMatch(/json/);
    expect(await res.json()).toMatchObject({ attempt: 3, failed: false });
    expect(res.url).toBe(`${chaos.url}/flaky/f1?fail=2&status=503`);
    expect(chaos.log()).toHaveLength(3);
    await session.close();
  });

  it('a status is never an error: exhausted retries return the last response', async () => {
    const { session } = fastSession();
    const res = await session.fetch(`${chaos.url}/status/503`);
    expect(res.status).toBe(503);
    expect(chaos.log()).toHaveLength(4);
    const tooLong = await session.fetch(`${chaos.url}/status/429?retry-after=3600`);
    expect(tooLong.status).toBe(429);
    expect(tooLong.headers.get('retry-after')).toBe('3600');
    await session.close();
  });

  it('takes a Request, and replays its buffered body on every retry', async () => {
    const { session } = fastSession();
    const request = new Request(`${chaos.url}/flaky/f2?fail=1&mode=reset`, {
      method: 'PUT',
      body: JSON.stringify({ n: 1 }),
      headers: { 'content-type': 'application/json', 'x-trace': 't1' },
    });
    const res = await session.fetch(request);
    expect(res.status).toBe(200);
    expect(chaos.log().map((a) => a.method)).toEqual(['PUT', 'PUT']);
    const echoed = await (
      await session.fetch(
        new Request(`${chaos.url}/echo`, {
          method: 'POST',
          body: 'hello',
          headers: { 'x-trace': 't2' },
        }),
      )
    ).json();
    expect(echoed).toMatchObject({ method: 'POST', headers: { 'x-trace': 't2' } });
    expect(JSON.stringify(echoed)).toContain('hello');
    await session.close();
  });

  it('init overrides the Request: method, headers, body', async () => {
    const { session } = fastSession();
    const echoed = (await (
      await session.fetch(`${chaos.url}/echo`, {
        method: 'PATCH',
        headers: [['x-a', '1']],
        body: new URLSearchParams({ q: 'x' }),
      })
    ).json()) as {
      method: string;
      headers: Record<string, string>;
    };
    expect(echoed.method).toBe('PATCH');
    expect(echoed.headers['x-a']).toBe('1');
    expect(echoed.headers['content-type']).toMatch(/x-www-form-urlencoded/);
    await session.close();
  });

  it('network failures reject with TypeError: fetch failed, whose cause is the dogged error', async () => {
    const { session } = fastSession();
    const refused = (await rejectionOf(
      session.fetch(`http://127.0.0.1:${await closedPort()}/`),
    )) as TypeError;
    expect(refused).toBeInstanceOf(TypeError);
    expect(refused.message).toBe('fetch failed');
    expect((refused.cause as Error).name).toBe('MaxRetryError');
    expect((refused.cause as { reason: unknown }).reason).toBeInstanceOf(ConnectError);
    const post = (await rejectionOf(
      session.fetch(`${chaos.url}/flaky/f3?fail=1&mode=reset`, { method: 'POST', body: 'x' }),
    )) as TypeError;
    expect(post.cause).toBeInstanceOf(ConnectionResetError);
    await session.close();
  });

  it('an abort rejects with the AbortError, as fetch does', async () => {
    const { session } = fastSession();
    const error = (await rejectionOf(
      session.fetch(`${chaos.url}/delay/5000`, { signal: AbortSignal.timeout(50) }),
    )) as Error;
    expect(error.name).toBe('TimeoutError');
    await session.close();
  });

  it('follows redirects, reports redirected, and honours redirect: manual and error', async () => {
    const { session } = fastSession();
    const followed = await session.fetch(`${chaos.url}/redirect/2`);
    expect(followed.status).toBe(200);
    expect(followed.redirected).toBe(true);
    expect(followed.url).toBe(`${chaos.url}/redirect/0`);
    const manual = await session.fetch(`${chaos.url}/redirect/2`, { redirect: 'manual' });
    expect(manual.status).toBe(302);
    expect(manual.redirected).toBe(false);
    const error = (await rejectionOf(
      session.fetch(`${chaos.url}/redirect/2`, { redirect: 'error' }),
    )) as TypeError;
    expect(error).toBeInstanceOf(TypeError);
    expect((error.cause as Error).name).toBe('TooManyRedirectsError');
    await session.close();
  });

  it('HEAD and 204 responses have a null body', async () => {
    const { session } = fastSession();
    expect((await session.fetch(`${chaos.url}/status/204`)).body).toBeNull();
    expect((await session.fetch(`${chaos.url}/status/200`, { method: 'HEAD' })).body).toBeNull();
    await session.close();
  });

  it('streams the body, resuming a cut download', async () => {
    const { session } = fastSession();
    const res = await session.fetch(`${chaos.url}/bytes/200000?seed=3&cut=70000&key=fs`);
    const data = new Uint8Array(await res.arrayBuffer());
    expect(data.length).toBe(200_000);
    expect(chaos.log()).toHaveLength(2);
    await session.close();
  });

  it('the module-level fetch uses the default session', async () => {
    const res = await doggedFetch(`${chaos.url}/flaky/f4?fail=1&status=500&retry-after=0`);
    expect(res.status).toBe(200);
    expect(chaos.log()).toHaveLength(2);
  });

  it('fetch hooks and logs are the session ones', async () => {
    const seen: number[] = [];
    const session = new Session({
      logger: false,
      retry: { backoffFactor: 0 },
      hooks: { response: (r) => void seen.push(r.status) },
    });
    await (await session.fetch(`${chaos.url}/flaky/f5?fail=1&status=502`)).text();
    expect(seen).toEqual([502, 200]);
    await session.close();
  });
});
