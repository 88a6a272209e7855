import { Agent } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ChaosServer, FakeClock, startChaosServer } from '../../src/testing/index.js';
import { fetchAll, fetchJson } from './chaos-support.js';

let chaos: ChaosServer;
let clock: FakeClock;
// A second client address: all of 127.0.0.0/8 is loopback on Linux.
const otherClient = new Agent({ localAddress: '127.0.0.2' });

beforeAll(async () => {
  clock = new FakeClock({ now: 1_000_000 });
  chaos = await startChaosServer({ clock });
});
afterAll(async () => {
  await otherClient.close();
  await chaos.close();
});
beforeEach(() => chaos.reset());

async function statuses(path: string, count: number, dispatcher?: Agent): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push((await fetchAll(`${chaos.url}${path}`, dispatcher ? { dispatcher } : {})).status);
  }
  return out;
}

describe('/ban', () => {
  it('allows `after` requests in the window, then answers 403', async () => {
    expect(await statuses('/ban?after=3&window=10000', 5)).toEqual([200, 200, 200, 403, 403]);
  });

  it('names the client and the count in the answer', async () => {
    await statuses('/ban?after=1&window=10000', 1);
    const { status, json, headers } = await fetchJson(`${chaos.url}/ban?after=1&window=10000`);
    expect(status).toBe(403);
    expect(json).toMatchObject({ error: 'banned', client: '127.0.0.1', requests: 2, after: 1 });
    expect(headers['x-chaos-requests']).toBe('2');
  });

  it('lifts the ban once the window has slid past the requests', async () => {
    await statuses('/ban?after=2&window=1000', 3);
    await clock.advance(1000);
    expect(await statuses('/ban?after=2&window=1000', 1)).toEqual([200]);
  });

  it('counts per client IP: another address is not banned', async () => {
    await statuses('/ban?after=1&window=10000', 2);
    const other = await fetchJson(`${chaos.url}/ban?after=1&window=10000`, {
      dispatcher: otherClient,
    });
    expect(other.status).toBe(200);
    expect(other.json.client).toBe('127.0.0.2');
  });

  it('refuses a non-numeric window, naming the parameter', async () => {
    const { status, json } = await fetchJson(`${chaos.url}/ban?window=long`);
    expect(status).toBe(400);
    expect(json.parameter).toBe('window');
  });
});

describe('/ratelimit', () => {
  it('lets a burst through, then answers 429 with Retry-After', async () => {
    expect(await statuses('/ratelimit?rps=1&burst=3', 4)).toEqual([200, 200, 200, 429]);
    const { status, headers, json } = await fetchJson(`${chaos.url}/ratelimit?rps=1&burst=3`);
    expect(status).toBe(429);
    expect(headers['retry-after']).toBe('1');
    expect(json).toMatchObject({ error: 'rate_limited', retryAfterSeconds: 1 });
  });

  it('rounds Retry-After up to whole seconds', async () => {
    await statuses('/ratelimit?rps=0.4&burst=1', 1);
    const { headers } = await fetchAll(`${chaos.url}/ratelimit?rps=0.4&burst=1`);
    expect(headers['retry-after']).toBe('3'); // 2.5 s until the next token
    await clock.advance(1000);
    const later = await fetchAll(`${chaos.url}/ratelimit?rps=0.4&burst=1`);
    expect(later.headers['retry-after']).toBe('2'); // 1.5 s
  });

  it('refills at rps tokens per second', async () => {
    await statuses('/ratelimit?rps=2&burst=2', 2);
    expect(await statuses('/ratelimit?rps=2&burst=2', 1)).toEqual([429]);
    await clock.advance(500);
    expect(await statuses('/ratelimit?rps=2&burst=2', 2)).toEqual([200, 429]);
    await clock.advance(5000);
    expect(await statuses('/ratelimit?rps=2&burst=2', 3)).toEqual([200, 200, 429]);
  });

  it('sends RateLimit-Limit, -Remaining and -Reset', async () => {
    const { headers } = await fetchAll(`${chaos.url}/ratelimit?rps=1&burst=5`);
    expect(headers['ratelimit-limit']).toBe('5');
    expect(headers['ratelimit-remaining']).toBe('4');
    expect(headers['ratelimit-reset']).toBe('0');
  });

  it('keeps one bucket per client IP', async () => {
    await statuses('/ratelimit?rps=1&burst=1', 2);
    expect(await statuses('/ratelimit?rps=1&burst=1', 1, otherClient)).toEqual([200]);
  });

  it('refuses rps=0, naming the parameter', async () => {
    const { status, json } = await fetchJson(`${chaos.url}/ratelimit?rps=0`);
    expect(status).toBe(400);
    expect(json.parameter).toBe('rps');
  });
});
