import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TooManyRedirectsError } from '../../src/http/index.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { fastSession, rejectionOf } from './session-support.js';

let chaos: ChaosServer;
beforeAll(async () => {
  chaos = await startChaosServer();
});
afterAll(() => chaos.close());
beforeEach(() => chaos.reset());

type Echo = {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | null;
  listener: string;
};

describe('redirects', () => {
  it('follows a chain of redirects and reports them in history', async () => {
    const { session } = fastSession();
    const res = await session.get(`${chaos.url}/redirect/3`);
    expect(res.status).toBe(200);
    expect(res.url).toBe(`${chaos.url}/redirect/0`);
    expect(res.history.map((h) => [h.status, h.redirectLocation])).toEqual([
      [302, '/redirect/2'],
      [302, '/redirect/1'],
      [302, '/redirect/0'],
    ]);
    expect(chaos.log()).toHaveLength(4);
    await session.close();
  });

  it('redirects do not spend the retry total', async () => {
    const { session } = fastSession({ retry: { total: 1 } });
    expect((await session.get(`${chaos.url}/redirect/5`)).status).toBe(200);
    await session.close();
  });

  it.each([301, 302, 303])(
    '%i turns a POST into a GET without its body or body headers',
    async (status) => {
      const { session } = fastSession();
      const res = await session.post(`${chaos.url}/redirect-to?url=/echo&status=${status}`, {
        json: { order: 1 },
      });
      const echo = await res.json<Echo>();
      expect(echo.method).toBe('GET');
      expect(echo.body ?? '').toBe('');
      expect(echo.headers['content-type']).toBeUndefined();
      await session.close();
    },
  );

  it.each([307, 308])('%i keeps the method and the body', async (status) => {
    const { session } = fastSession();
    const res = await session.post(`${chaos.url}/redirect-to?url=/echo&status=${status}`, {
      json: { order: 1 },
    });
    const echo = await res.json<Echo>();
    expect(echo.method).toBe('POST');
    expect(echo.headers['content-type']).toBe('application/json');
    expect(JSON.stringify(echo)).toContain('order');
    await session.close();
  });

  it('303 keeps HEAD a HEAD', async () => {
    const { session } = fastSession();
    const res = await session.head(`${chaos.url}/redirect-to?url=/echo&status=303`);
    expect(res.status).toBe(200);
    expect(chaos.log().map((a) => a.method)).toEqual(['HEAD', 'HEAD']);
    await session.close();
  });

  it('a cross-origin redirect strips authorization and cookies; a same-origin one keeps them', async () => {
    const { session } = fastSession({
      headers: { authorization: 'Bearer secret', cookie: 'sid=1', 'x-other': 'kept' },
    });
    const cross = await (
      await session.get(`${chaos.url}/redirect/1?cross-origin=true`)
    ).json<Echo>();
    expect(cross.listener).toBe('secondary');
    expect(cross.headers.authorization).toBeUndefined();
    expect(cross.headers.cookie).toBeUndefined();
    expect(cross.headers['x-other']).toBe('kept');
    const same = await (await session.get(`${chaos.url}/redirect/1`)).json<Echo>();
    expect(same.headers.authorization).toBe('Bearer secret');
    await session.close();
  });

  it('the policy may strip more headers on cross-origin redirects', async () => {
    const { session } = fastSession({
      retry: { removeHeadersOnRedirect: ['x-api-key'] },
      headers: { 'x-api-key': 'k' },
    });
    const echo = await (
      await session.get(`${chaos.url}/redirect/1?cross-origin=true`)
    ).json<Echo>();
    expect(echo.headers['x-api-key']).toBeUndefined();
    await session.close();
  });

  it('too many redirects throw TooManyRedirectsError with the history', async () => {
    const { session } = fastSession({ maxRedirects: 2 });
    const error = (await rejectionOf(
      session.get(`${chaos.url}/redirect/5`),
    )) as TooManyRedirectsError;
    expect(error).toBeInstanceOf(TooManyRedirectsError);
    expect(error.code).toBe('ERR_DOGGED_TOO_MANY_REDIRECTS');
    expect(error.history).toHaveLength(2);
    expect(error.response?.status).toBe(302);
    expect(chaos.log()).toHaveLength(3);
    await session.close();
  });

  it('the policy redirect counter limits too; raiseOnRedirect false returns the last 3xx', async () => {
    const { session } = fastSession({ retry: { redirect: 1, raiseOnRedirect: false } });
    const res = await session.get(`${chaos.url}/redirect/5`);
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/redirect/3');
    await session.close();
  });

  it('maxRedirects: 0 returns the 3xx as it is', async () => {
    const { session } = fastSession();
    const res = await session.get(`${chaos.url}/redirect/2`, { maxRedirects: 0 });
    expect(res.status).toBe(302);
    expect(chaos.log()).toHaveLength(1);
    await session.close();
  });

  it('rejects a bad maxRedirects', async () => {
    const { session } = fastSession();
    await expect(session.get(`${chaos.url}/redirect/2`, { maxRedirects: -1 })).rejects.toThrow(
      /maxRedirects must be a non-negative integer, got -1/,
    );
    await session.close();
  });
});
