import { Agent, request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ChaosServer, chaosBytes, startChaosServer } from '../../src/testing/index.js';
import { needs } from '../support/needs.js';
import { curl, fetchAll, headerOf, rawExchange, rawGet } from './chaos-support.js';

let chaos: ChaosServer;
beforeAll(async () => {
  chaos = await startChaosServer({ seed: 3 });
});
afterAll(() => chaos.close());
beforeEach(() => chaos.reset());

describe('/reset', () => {
  it('resets the connection (RST) before any response byte', async () => {
    const exchange = await rawExchange(chaos.port, rawGet('/reset'));
    expect(exchange.head).toBe('');
    expect(exchange.body.length).toBe(0);
    expect(exchange.ending).toBe('rst');
  });

  it('closes cleanly (FIN) before any response byte with tcp=fin', async () => {
    const exchange = await rawExchange(chaos.port, rawGet('/reset?tcp=fin'));
    expect(exchange.head).toBe('');
    expect(exchange.ending).toBe('fin');
  });

  it('makes an HTTP client fail with a socket error, not a response', async () => {
    await expect(request(`${chaos.url}/reset`)).rejects.toMatchObject({
      code: expect.stringMatching(/ECONNRESET|UND_ERR_SOCKET/),
    });
  });
});

describe('/truncate', () => {
  it('promises `declared` bytes, sends exactly `bytes`, then closes with a FIN', async () => {
    const exchange = await rawExchange(chaos.port, rawGet('/truncate?bytes=100&declared=1000'));
    expect(exchange.head).toMatch(/^HTTP\/1\.1 200 /);
    expect(headerOf(exchange.head, 'content-length')).toBe('1000');
    expect(exchange.body.equals(chaosBytes(100, 3))).toBe(true);
    expect(exchange.ending).toBe('fin');
  });

  it('defaults to half of declared', async () => {
    const exchange = await rawExchange(chaos.port, rawGet('/truncate?declared=10'));
    expect(exchange.body.length).toBe(5);
  });

  it('can send the headers and no body byte at all', async () => {
    const exchange = await rawExchange(chaos.port, rawGet('/truncate?bytes=0&declared=10'));
    expect(headerOf(exchange.head, 'content-length')).toBe('10');
    expect(exchange.body.length).toBe(0);
    expect(exchange.ending).toBe('fin');
  });

  it('refuses bytes >= declared, naming bytes', async () => {
    const { status, body } = await fetchAll(`${chaos.url}/truncate?bytes=10&declared=10`);
    expect(status).toBe(400);
    expect(JSON.parse(body.toString()).parameter).toBe('bytes');
  });

  needs.it('curl')('makes curl report a partial transfer (exit 18)', async () => {
    const result = await curl([
      '--output',
      '/dev/null',
      `${chaos.url}/truncate?bytes=10&declared=100`,
    ]);
    expect(result.code).toBe(18);
  });

  it('makes an HTTP client fail while reading the body', async () => {
    const response = await request(`${chaos.url}/truncate?bytes=10&declared=100`);
    expect(response.statusCode).toBe(200);
    await expect(response.body.arrayBuffer()).rejects.toThrow();
  });
});

describe('/reset-mid-body', () => {
  it('sends exactly `bytes` body bytes, then resets (RST)', async () => {
    const exchange = await rawExchange(
      chaos.port,
      rawGet('/reset-mid-body?bytes=100&declared=1000'),
    );
    expect(headerOf(exchange.head, 'content-length')).toBe('1000');
    expect(exchange.body.equals(chaosBytes(100, 3))).toBe(true);
    expect(exchange.ending).toBe('rst');
  });

  needs.it('curl')(
    'makes curl report a receive error (exit 56), not a clean partial transfer',
    async () => {
      const result = await curl(['--output', '/dev/null', `${chaos.url}/reset-mid-body`]);
      expect(result.code).toBe(56);
    },
  );
});

describe('/chunked-truncate', () => {
  it('sends complete chunks and closes without the terminating chunk', async () => {
    const exchange = await rawExchange(chaos.port, rawGet('/chunked-truncate?chunks=2&size=8'));
    expect(headerOf(exchange.head, 'transfer-encoding')).toBe('chunked');
    expect(exchange.body.toString('latin1')).toBe('8\r\naaaaaaaa\r\n8\r\nbbbbbbbb\r\n');
    expect(exchange.ending).toBe('fin');
  });

  needs.it('curl')('makes curl report a partial transfer (exit 18)', async () => {
    const result = await curl(['--output', '/dev/null', `${chaos.url}/chunked-truncate`]);
    expect(result.code).toBe(18);
  });
});

describe('/flaky/:key failure modes', () => {
  it('mode=reset resets the failing requests before any byte, then succeeds', async () => {
    const first = await rawExchange(chaos.port, rawGet('/flaky/rst?fail=1&mode=reset'));
    expect(first.head).toBe('');
    expect(first.ending).toBe('rst');
    const second = await fetchAll(`${chaos.url}/flaky/rst?fail=1&mode=reset`);
    expect(second.status).toBe(200);
  });

  it('mode=truncate sends 512 of 1024 promised bytes, then succeeds', async () => {
    const first = await rawExchange(chaos.port, rawGet('/flaky/cut?mode=truncate'));
    expect(headerOf(first.head, 'content-length')).toBe('1024');
    expect(headerOf(first.head, 'x-chaos-attempt')).toBe('1');
    expect(first.body.length).toBe(512);
    expect(first.ending).toBe('fin');
    expect((await fetchAll(`${chaos.url}/flaky/cut?mode=truncate`)).status).toBe(200);
  });

  it('mode=delay holds the headers back for `delay` ms', async () => {
    const impatient = new Agent({ headersTimeout: 50 });
    try {
      await expect(
        request(`${chaos.url}/flaky/slow?mode=delay&delay=10000`, { dispatcher: impatient }),
      ).rejects.toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
      const second = await fetchAll(`${chaos.url}/flaky/slow?mode=delay&delay=10000`, {
        dispatcher: impatient,
      });
      expect(second.status).toBe(200);
    } finally {
      await impatient.close();
    }
  });
});

describe('/delay/:ms', () => {
  it('sends nothing before `ms`: a shorter headers timeout fires', async () => {
    const impatient = new Agent({ headersTimeout: 50 });
    try {
      await expect(
        request(`${chaos.url}/delay/10000`, { dispatcher: impatient }),
      ).rejects.toMatchObject({ code: 'UND_ERR_HEADERS_TIMEOUT' });
    } finally {
      await impatient.close();
    }
  });

  it('answers 200 once `ms` have passed', async () => {
    const started = performance.now();
    const { status, body } = await fetchAll(`${chaos.url}/delay/100`);
    expect(status).toBe(200);
    expect(JSON.parse(body.toString())).toEqual({ delayedMs: 100 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);
  });

  it('refuses a non-numeric delay, naming ms', async () => {
    const { status, body } = await fetchAll(`${chaos.url}/delay/soon`);
    expect(status).toBe(400);
    expect(JSON.parse(body.toString()).parameter).toBe('ms');
  });
});

describe('/drip', () => {
  it('sends the headers at once and the body slowly: a body timeout fires after the status', async () => {
    const impatient = new Agent({ bodyTimeout: 50 });
    try {
      const response = await request(`${chaos.url}/drip?bytes=3&interval=10000`, {
        dispatcher: impatient,
      });
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-length']).toBe('3');
      await expect(response.body.arrayBuffer()).rejects.toMatchObject({
        code: 'UND_ERR_BODY_TIMEOUT',
      });
    } finally {
      await impatient.close();
    }
  });

  it('delivers exactly `bytes` bytes in `chunk`-sized pieces', async () => {
    const exchange = await rawExchange(
      chaos.port,
      rawGet('/drip?bytes=6&interval=10&chunk=4', { connection: 'close' }),
    );
    expect(exchange.body.toString()).toBe('******');
    expect(exchange.ending).toBe('fin');
  });
});
