import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { needs } from '../support/needs.js';
import { curl, fetchAll, fetchJson } from './chaos-support.js';

let chaos: ChaosServer;
beforeAll(async () => {
  chaos = await startChaosServer({ seed: 5 });
});
afterAll(() => chaos.close());
beforeEach(() => chaos.reset());

describe('GET /', () => {
  it('lists every endpoint with its parameters and an example', async () => {
    const { status, json } = await fetchJson(`${chaos.url}/`);
    expect(status).toBe(200);
    const endpoints = json.endpoints as { path: string; query: unknown; example: string }[];
    const paths = endpoints.map((e) => e.path);
    for (const path of [
      '/status/:code',
      '/flaky/:key',
      '/fail-rate',
      '/delay/:ms',
      '/drip',
      '/reset',
      '/reset-mid-body',
      '/truncate',
      '/chunked-truncate',
      '/ban',
      '/ratelimit',
      '/redirect/:n',
      '/redirect-to',
      '/echo',
      '/bytes/:n',
      '/bytes-norange/:n',
      '/idempotent',
      '/idempotent/count',
      '/__log',
      '/__reset',
    ]) {
      expect(paths).toContain(path);
    }
    const flaky = endpoints.find((e) => e.path === '/flaky/:key');
    expect(flaky?.query).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'fail', default: 1 })]),
    );
    expect(json.urls).toEqual({ primary: chaos.url, secondary: chaos.secondaryUrl });
  });

  it('answers every listed example without a 4xx about its parameters', async () => {
    const { json } = await fetchJson(`${chaos.url}/`);
    const examples = (json.endpoints as { example: string }[])
      .map((e) => e.example)
      .filter(
        (e) => !/^\/(reset|truncate|chunked-truncate|reset-mid-body|delay|drip|bytes)/.test(e),
      );
    for (const example of examples) {
      const method =
        example.startsWith('/idempotent') && !example.includes('count') ? 'POST' : 'GET';
      const { status } = await fetchAll(`${chaos.url}${example}`, { method });
      expect([400, 404, 405, 413]).not.toContain(status);
    }
  });
});

describe('/status/:code', () => {
  it('answers with the requested status and a JSON body', async () => {
    const { status, json } = await fetchJson(`${chaos.url}/status/503`);
    expect(status).toBe(503);
    expect(json).toEqual({ status: 503, message: 'Service Unavailable' });
  });

  it('sends Retry-After in seconds when asked', async () => {
    const { status, headers } = await fetchAll(`${chaos.url}/status/429?retry-after=7`);
    expect(status).toBe(429);
    expect(headers['retry-after']).toBe('7');
  });

  it('sends no Retry-After unless asked', async () => {
    const { headers } = await fetchAll(`${chaos.url}/status/503`);
    expect(headers['retry-after']).toBeUndefined();
  });

  it('sends retry-after-date as an IMF-fixdate', async () => {
    const { headers } = await fetchAll(
      `${chaos.url}/status/503?retry-after-date=2030-01-02T03:04:05Z`,
    );
    expect(headers['retry-after']).toBe('Wed, 02 Jan 2030 03:04:05 GMT');
  });

  it('sends retry-after-raw verbatim, however malformed', async () => {
    const { headers } = await fetchAll(
      `${chaos.url}/status/503?retry-after-raw=${encodeURIComponent('soon, maybe')}`,
    );
    expect(headers['retry-after']).toBe('soon, maybe');
  });

  it('sends no body for 204', async () => {
    const { status, body } = await fetchAll(`${chaos.url}/status/204`);
    expect(status).toBe(204);
    expect(body.length).toBe(0);
  });

  it('refuses a code outside 200-599, naming the parameter', async () => {
    const { status, json } = await fetchJson(`${chaos.url}/status/99`);
    expect(status).toBe(400);
    expect(json).toMatchObject({ error: 'bad_parameter', parameter: 'code' });
  });

  it('refuses two Retry-After forms at once', async () => {
    const { status, json } = await fetchJson(
      `${chaos.url}/status/503?retry-after=1&retry-after-raw=x`,
    );
    expect(status).toBe(400);
    expect(String(json.message)).toContain('only one of');
  });

  it('refuses a retry-after-date that is not a date, naming the parameter', async () => {
    const { status, json } = await fetchJson(`${chaos.url}/status/503?retry-after-date=tomorrow`);
    expect(status).toBe(400);
    expect(json.parameter).toBe('retry-after-date');
  });

  needs.it('curl')('shows the Retry-After header to curl', async () => {
    const result = await curl(['--include', `${chaos.url}/status/503?retry-after=2`]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^HTTP\/1\.1 503 /);
    expect(result.stdout).toMatch(/^retry-after: 2\r?$/im);
  });
});

describe('bad requests', () => {
  it('answers an unknown endpoint with a 404 JSON error', async () => {
    const { status, json } = await fetchJson(`${chaos.url}/no/such/thing`);
    expect(status).toBe(404);
    expect(json).toMatchObject({ error: 'not_found' });
  });

  it('answers a non-numeric value with a 400 naming the parameter', async () => {
    const { status, json } = await fetchJson(`${chaos.url}/flaky/a?fail=lots`);
    expect(status).toBe(400);
    expect(json).toMatchObject({ error: 'bad_parameter', parameter: 'fail' });
    expect(String(json.message)).toContain('"lots"');
  });

  it('answers an unknown query parameter with a 400 naming it', async () => {
    const { status, json } = await fetchJson(`${chaos.url}/status/503?retry_after=2`);
    expect(status).toBe(400);
    expect(json).toMatchObject({ error: 'unknown_parameter', parameter: 'retry_after' });
  });

  it('answers a parameter given twice with a 400 naming it', async () => {
    const { status, json } = await fetchJson(`${chaos.url}/flaky/a?fail=1&fail=2`);
    expect(status).toBe(400);
    expect(json.parameter).toBe('fail');
  });

  it('answers a wrong method with 405 and Allow', async () => {
    const { status, headers } = await fetchAll(`${chaos.url}/idempotent`);
    expect(status).toBe(405);
    expect(headers.allow).toBe('POST');
  });

  it('answers a body above maxBodyBytes with 413', async () => {
    const small = await startChaosServer({ maxBodyBytes: 10 });
    try {
      const { status, json } = await fetchJson(`${small.url}/echo`, {
        method: 'POST',
        body: 'x'.repeat(100),
      });
      expect(status).toBe(413);
      expect(json.error).toBe('body_too_large');
    } finally {
      await small.close();
    }
  });
});

describe('/flaky/:key', () => {
  it('fails the first `fail` requests with `status`, then succeeds', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await fetchAll(`${chaos.url}/flaky/job?fail=2&status=502`)).status);
    }
    expect(statuses).toEqual([502, 502, 200, 200]);
  });

  it('counts each key separately', async () => {
    await fetchAll(`${chaos.url}/flaky/a?fail=1`);
    const b = await fetchAll(`${chaos.url}/flaky/b?fail=1`);
    const a = await fetchJson(`${chaos.url}/flaky/a?fail=1`);
    expect(b.status).toBe(503);
    expect(a.status).toBe(200);
    expect(a.json).toEqual({ key: 'a', attempt: 2, failed: false });
    expect(a.headers['x-chaos-attempt']).toBe('2');
  });

  it('adds Retry-After to failures only', async () => {
    const first = await fetchAll(`${chaos.url}/flaky/r?fail=1&retry-after=3`);
    const second = await fetchAll(`${chaos.url}/flaky/r?fail=1&retry-after=3`);
    expect(first.headers['retry-after']).toBe('3');
    expect(second.headers['retry-after']).toBeUndefined();
  });

  it('fail=0 never fails', async () => {
    expect((await fetchAll(`${chaos.url}/flaky/z?fail=0`)).status).toBe(200);
  });

  it('starts counting again after a reset', async () => {
    await fetchAll(`${chaos.url}/flaky/again?fail=1`);
    chaos.reset();
    expect((await fetchAll(`${chaos.url}/flaky/again?fail=1`)).status).toBe(503);
  });

  it('refuses an unknown mode, naming the parameter', async () => {
    const { status, json } = await fetchJson(`${chaos.url}/flaky/a?mode=explode`);
    expect(status).toBe(400);
    expect(json.parameter).toBe('mode');
  });
});

describe('/fail-rate', () => {
  async function outcomes(query: string, count: number): Promise<number[]> {
    const statuses: number[] = [];
    for (let i = 0; i < count; i++) {
      statuses.push((await fetchAll(`${chaos.url}/fail-rate?${query}`)).status);
    }
    return statuses;
  }

  it('produces the same sequence for the same seed', async () => {
    const first = await outcomes('p=0.5&seed=42', 20);
    chaos.reset();
    const second = await outcomes('p=0.5&seed=42', 20);
    expect(second).toEqual(first);
    expect(first).toContain(200);
    expect(first).toContain(503);
    chaos.reset();
    // Another seed, another sequence (a server ignoring the seed would repeat the first one).
    expect(await outcomes('p=0.5&seed=43', 20)).not.toEqual(first);
  });

  it('fails about p of the requests', async () => {
    const statuses = await outcomes('p=0.3&status=500&seed=7', 200);
    const failures = statuses.filter((s) => s === 500).length;
    expect(failures).toBeGreaterThan(30);
    expect(failures).toBeLessThan(90);
    expect(statuses.every((s) => s === 200 || s === 500)).toBe(true);
  });

  it('never fails with p=0 and always fails with p=1', async () => {
    expect(new Set(await outcomes('p=0', 10))).toEqual(new Set([200]));
    expect(new Set(await outcomes('p=1', 10))).toEqual(new Set([503]));
  });

  it("uses the server's seed when the request names none", async () => {
    const other = await startChaosServer({ seed: 5 });
    try {
      const mine = await outcomes('p=0.5', 12);
      const theirs: number[] = [];
      for (let i = 0; i < 12; i++)
        theirs.push((await fetchAll(`${other.url}/fail-rate?p=0.5`)).status);
      expect(theirs).toEqual(mine);
    } finally {
      await other.close();
    }
  });

  it('refuses p outside [0, 1], naming the parameter', async () => {
    const { status, json } = await fetchJson(`${chaos.url}/fail-rate?p=1.5`);
    expect(status).toBe(400);
    expect(json.parameter).toBe('p');
  });
});
