import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { fetchAll, fetchJson } from './chaos-support.js';

let chaos: ChaosServer;
beforeAll(async () => {
  chaos = await startChaosServer();
});
afterAll(() => chaos.close());
beforeEach(() => chaos.reset());

describe('/redirect/:n', () => {
  it('redirects n times with relative Locations, then answers like /echo', async () => {
    const locations: string[] = [];
    let url = `${chaos.url}/redirect/3?key=chain`;
    for (;;) {
      const { status, headers, body } = await fetchAll(url);
      if (status === 200) {
        expect(JSON.parse(body.toString())).toMatchObject({ method: 'GET', path: '/redirect/0' });
        break;
      }
      expect(status).toBe(302);
      const location = headers.location ?? '';
      locations.push(location);
      url = new URL(location, url).href;
    }
    expect(locations).toEqual([
      '/redirect/2?key=chain',
      '/redirect/1?key=chain',
      '/redirect/0?key=chain',
    ]);
  });

  it('uses the requested status', async () => {
    const { status } = await fetchAll(`${chaos.url}/redirect/1?status=307`);
    expect(status).toBe(307);
  });

  it('sends absolute Locations on request', async () => {
    const { headers } = await fetchAll(`${chaos.url}/redirect/2?absolute=true`);
    expect(headers.location).toBe(`${chaos.url}/redirect/1?absolute=true`);
  });

  it('alternates between the two origins with cross-origin=true', async () => {
    expect(new URL(chaos.secondaryUrl).port).not.toBe(new URL(chaos.url).port);
    const first = await fetchAll(`${chaos.url}/redirect/2?cross-origin=true`);
    expect(first.headers.location).toBe(`${chaos.secondaryUrl}/redirect/1?cross-origin=true`);
    const second = await fetchAll(first.headers.location ?? '');
    expect(second.headers.location).toBe(`${chaos.url}/redirect/0?cross-origin=true`);
    expect(chaos.log().map((a) => a.listener)).toEqual(['primary', 'secondary']);
  });

  it('refuses a status that is not a redirect, naming it', async () => {
    const { status, json } = await fetchJson(`${chaos.url}/redirect/1?status=304`);
    expect(status).toBe(400);
    expect(json.parameter).toBe('status');
  });
});

describe('/redirect-to', () => {
  it('redirects to any URL with the given status', async () => {
    const target = `${chaos.secondaryUrl}/echo`;
    const { status, headers } = await fetchAll(
      `${chaos.url}/redirect-to?url=${encodeURIComponent(target)}&status=308`,
    );
    expect(status).toBe(308);
    expect(headers.location).toBe(target);
  });

  it('requires url', async () => {
    const { status, json } = await fetchJson(`${chaos.url}/redirect-to`);
    expect(status).toBe(400);
    expect(json.parameter).toBe('url');
  });
});

describe('/echo', () => {
  it('reflects method, path, query, headers and a text body', async () => {
    const { status, json } = await fetchJson(`${chaos.url}/echo?a=1&b=2&b=3`, {
      method: 'PUT',
      headers: { 'x-test': 'yes', 'content-type': 'text/plain' },
      body: 'hello',
    });
    expect(status).toBe(200);
    expect(json).toMatchObject({
      method: 'PUT',
      path: '/echo',
      query: { a: '1', b: ['2', '3'] },
      body: 'hello',
      bodyEncoding: 'utf8',
      bodyBytes: 5,
      listener: 'primary',
    });
    expect((json.headers as Record<string, string>)['x-test']).toBe('yes');
    expect(json.client).toMatchObject({ address: '127.0.0.1' });
  });

  it('base64-encodes a binary body', async () => {
    const binary = Buffer.from([0, 1, 2, 255, 254]);
    const { json } = await fetchJson(`${chaos.url}/echo`, { method: 'POST', body: binary });
    expect(json.bodyEncoding).toBe('base64');
    expect(Buffer.from(String(json.body), 'base64').equals(binary)).toBe(true);
  });

  it('parses a JSON body', async () => {
    const { json } = await fetchJson(`${chaos.url}/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"n":1}',
    });
    expect(json.json).toEqual({ n: 1 });
  });

  it('is served on the secondary listener too', async () => {
    const { json } = await fetchJson(`${chaos.secondaryUrl}/echo`);
    expect(json.listener).toBe('secondary');
  });
});
