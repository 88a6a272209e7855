import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ChaosServer, chaosBytes, startChaosServer } from '../../src/testing/index.js';
import { fetchAll, headerOf, rawExchange, rawGet } from './chaos-support.js';

let chaos: ChaosServer;
beforeAll(async () => {
  chaos = await startChaosServer({ seed: 11 });
});
afterAll(() => chaos.close());
beforeEach(() => chaos.reset());

describe('chaosBytes', () => {
  it('is deterministic per seed and differs between seeds', () => {
    expect(chaosBytes(64, 1).equals(chaosBytes(64, 1))).toBe(true);
    expect(chaosBytes(64, 1).equals(chaosBytes(64, 2))).toBe(false);
  });

  it('produces any slice without the bytes before it', () => {
    const whole = chaosBytes(1000, 9);
    expect(chaosBytes(333, 9, 501).equals(whole.subarray(501, 834))).toBe(true);
  });

  it('refuses a negative length', () => {
    expect(() => chaosBytes(-1)).toThrow(RangeError);
  });
});

describe('/bytes/:n', () => {
  it('serves n deterministic bytes with a strong ETag and Accept-Ranges', async () => {
    const { status, headers, body } = await fetchAll(`${chaos.url}/bytes/5000?seed=7`);
    expect(status).toBe(200);
    expect(body.equals(chaosBytes(5000, 7))).toBe(true);
    expect(headers.etag).toBe('"chaos-7-5000"');
    expect(headers['accept-ranges']).toBe('bytes');
    expect(headers['content-length']).toBe('5000');
  });

  it("uses the server's seed by default", async () => {
    const { body } = await fetchAll(`${chaos.url}/bytes/100`);
    expect(body.equals(chaosBytes(100, 11))).toBe(true);
  });

  it('streams large bodies intact', async () => {
    const { body } = await fetchAll(`${chaos.url}/bytes/300000?seed=2`);
    expect(body.equals(chaosBytes(300_000, 2))).toBe(true);
  });

  it('answers a Range with 206 and Content-Range', async () => {
    const { status, headers, body } = await fetchAll(`${chaos.url}/bytes/1000?seed=7`, {
      headers: { range: 'bytes=100-199' },
    });
    expect(status).toBe(206);
    expect(headers['content-range']).toBe('bytes 100-199/1000');
    expect(body.equals(chaosBytes(100, 7, 100))).toBe(true);
  });

  it('serves open-ended and suffix ranges', async () => {
    const open = await fetchAll(`${chaos.url}/bytes/1000`, { headers: { range: 'bytes=990-' } });
    expect(open.headers['content-range']).toBe('bytes 990-999/1000');
    const suffix = await fetchAll(`${chaos.url}/bytes/1000`, { headers: { range: 'bytes=-10' } });
    expect(suffix.headers['content-range']).toBe('bytes 990-999/1000');
    expect(suffix.body.equals(open.body)).toBe(true);
  });

  it('answers a range past the end with 416 and Content-Range */n', async () => {
    const { status, headers } = await fetchAll(`${chaos.url}/bytes/1000`, {
      headers: { range: 'bytes=1000-' },
    });
    expect(status).toBe(416);
    expect(headers['content-range']).toBe('bytes */1000');
  });

  it('ignores a multi-range request and sends everything', async () => {
    const { status, body } = await fetchAll(`${chaos.url}/bytes/100`, {
      headers: { range: 'bytes=0-1,5-6' },
    });
    expect(status).toBe(200);
    expect(body.length).toBe(100);
  });

  it('honours If-Match with the current strong ETag', async () => {
    const { status } = await fetchAll(`${chaos.url}/bytes/1000?seed=7`, {
      headers: { range: 'bytes=10-', 'if-match': '"chaos-7-1000"' },
    });
    expect(status).toBe(206);
  });

  it('answers 412 when If-Match does not match', async () => {
    const { status } = await fetchAll(`${chaos.url}/bytes/1000?seed=7`, {
      headers: { range: 'bytes=10-', 'if-match': '"chaos-8-1000"' },
    });
    expect(status).toBe(412);
  });

  it('answers 412 to If-Match on a weak ETag (strong comparison)', async () => {
    const { headers } = await fetchAll(`${chaos.url}/bytes/10?etag=weak`);
    expect(headers.etag).toBe('W/"chaos-11-10"');
    const { status } = await fetchAll(`${chaos.url}/bytes/10?etag=weak`, {
      headers: { 'if-match': headers.etag ?? '' },
    });
    expect(status).toBe(412);
  });

  it('sends no ETag with etag=none, and then only If-Match: * passes', async () => {
    const none = await fetchAll(`${chaos.url}/bytes/10?etag=none`);
    expect(none.headers.etag).toBeUndefined();
    const star = await fetchAll(`${chaos.url}/bytes/10?etag=none`, {
      headers: { 'if-match': '*' },
    });
    expect(star.status).toBe(200);
  });

  it('sends the whole body when If-Range does not match', async () => {
    const { status, body } = await fetchAll(`${chaos.url}/bytes/100`, {
      headers: { range: 'bytes=50-', 'if-range': '"stale"' },
    });
    expect(status).toBe(200);
    expect(body.length).toBe(100);
  });

  it('answers HEAD with the headers only', async () => {
    const { status, headers, body } = await fetchAll(`${chaos.url}/bytes/1000`, { method: 'HEAD' });
    expect(status).toBe(200);
    expect(headers['content-length']).toBe('1000');
    expect(body.length).toBe(0);
  });

  it('refuses n above 1 GiB, naming n', async () => {
    const { status, body } = await fetchAll(`${chaos.url}/bytes/${2 ** 31}`);
    expect(status).toBe(400);
    expect(JSON.parse(body.toString()).parameter).toBe('n');
  });
});

describe('/bytes/:n?cut=K', () => {
  it('drops the connection after exactly K body bytes', async () => {
    const exchange = await rawExchange(chaos.port, rawGet('/bytes/1000?seed=7&cut=300'));
    expect(headerOf(exchange.head, 'content-length')).toBe('1000');
    expect(exchange.body.equals(chaosBytes(300, 7))).toBe(true);
    expect(exchange.ending).toBe('fin');
  });

  it('cuts only the first response for a key, so a resumed download completes', async () => {
    const path = '/bytes/1000?seed=7&cut=300&key=dl';
    const first = await rawExchange(chaos.port, rawGet(path));
    expect(first.body.length).toBe(300);
    const etag = headerOf(first.head, 'etag') ?? '';
    const rest = await rawExchange(
      chaos.port,
      rawGet(path, { range: 'bytes=300-', 'if-match': etag, connection: 'close' }),
    );
    expect(rest.head).toMatch(/^HTTP\/1\.1 206 /);
    expect(headerOf(rest.head, 'content-range')).toBe('bytes 300-999/1000');
    expect(Buffer.concat([first.body, rest.body]).equals(chaosBytes(1000, 7))).toBe(true);
  });

  it('cuts every response when no key is given (each resume gains K bytes)', async () => {
    const first = await rawExchange(chaos.port, rawGet('/bytes/1000?cut=300'));
    const second = await rawExchange(
      chaos.port,
      rawGet('/bytes/1000?cut=300', { range: 'bytes=300-' }),
    );
    expect(first.body.length).toBe(300);
    expect(second.body.equals(chaosBytes(300, 11, 300))).toBe(true);
    expect(second.ending).toBe('fin');
  });

  it('cuts a large body exactly too', async () => {
    const exchange = await rawExchange(chaos.port, rawGet('/bytes/500000?seed=4&cut=200001'));
    expect(exchange.body.equals(chaosBytes(200_001, 4))).toBe(true);
  });
});

describe('/bytes-norange/:n', () => {
  it('ignores Range and If-Match and always sends everything', async () => {
    const { status, headers, body } = await fetchAll(`${chaos.url}/bytes-norange/1000?seed=7`, {
      headers: { range: 'bytes=100-199', 'if-match': '"nope"' },
    });
    expect(status).toBe(200);
    expect(headers['accept-ranges']).toBe('none');
    expect(headers['content-range']).toBeUndefined();
    expect(body.equals(chaosBytes(1000, 7))).toBe(true);
  });
});
