import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { needs } from '../support/needs.js';
import {
  haproxyPath,
  nginxPath,
  startHaproxyLimiter,
  startNginxLimiter,
  startUpstream,
} from './real-limiters.js';

/** Everything a test started, closed after it (even when it fails). */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function agent(): Agent {
  const a = new Agent();
  cleanups.push(() => a.close());
  return a;
}

interface Seen {
  status: number;
  retryAfter: string | undefined;
  body: string;
}

async function get(url: string, dispatcher: Agent): Promise<Seen> {
  const res = await request(url, { dispatcher });
  const retryAfter = res.headers['retry-after'];
  return {
    status: res.statusCode,
    retryAfter: Array.isArray(retryAfter) ? retryAfter.join(',') : retryAfter,
    body: await res.body.text(),
  };
}

/** `n` GETs sent at once (one connection each); resolves with what came back and how long it took. */
async function burst(base: string, n: number): Promise<{ seen: Seen[]; ms: number }> {
  const dispatcher = agent();
  const start = performance.now();
  const seen = await Promise.all(
    Array.from({ length: n }, (_, i) => get(`${base}/item/${i}`, dispatcher)),
  );
  return { seen, ms: performance.now() - start };
}

function countBy(seen: readonly Seen[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const s of seen) counts[s.status] = (counts[s.status] ?? 0) + 1;
  return counts;
}

function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

describe('binaries', () => {
  it('say what to install when nginx or haproxy is missing', () => {
    const saved = { nginx: process.env.DOGGED_NGINX, haproxy: process.env.DOGGED_HAPROXY };
    try {
      process.env.DOGGED_NGINX = '/nonexistent/nginx';
      process.env.DOGGED_HAPROXY = '/nonexistent/haproxy';
      expect(() => nginxPath()).toThrow('apt-get install -y nginx-light');
      expect(() => haproxyPath()).toThrow('apt-get install -y haproxy');
    } finally {
      for (const [name, value] of [
        ['DOGGED_NGINX', saved.nginx],
        ['DOGGED_HAPROXY', saved.haproxy],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  // The preflight (test/global-setup.ts) says when they are not: skipped, or failing on CI.
  needs.it('nginx', 'haproxy')('are found when installed', () => {
    expect(nginxPath()).toMatch(/nginx$/);
    expect(haproxyPath()).toMatch(/haproxy$/);
  });
});

needs('nginx')('nginx limit_req', () => {
  it('lets burst + 1 of 30 simultaneous requests through and answers the rest 429; its log agrees', async () => {
    const nginx = await startNginxLimiter({ rate: 20, burst: 5 });
    cleanups.push(() => nginx.close());
    const { seen, ms } = await burst(nginx.url, 30);
    const counts = countBy(seen);
    expect(Object.keys(counts).sort()).toEqual(['200', '429']);
    // burst + 1 at once from a fresh zone; a slow machine spreads the 30 over time, and the
    // bucket drains 20 a second meanwhile.
    expect(counts[200]).toBeGreaterThanOrEqual(6);
    expect(counts[200]).toBeLessThanOrEqual(6 + Math.ceil((ms / 1000) * 20) + 1);
    expect(seen.filter((s) => s.status === 200).every((s) => s.body === 'ok\n')).toBe(true);
    const limited = seen.filter((s) => s.status === 429);
    expect(limited.every((s) => s.body === 'rate limited\n' && s.retryAfter === undefined)).toBe(
      true,
    );
    const stats = await nginx.stats();
    expect(stats.total).toBe(30);
    expect(stats.byStatus).toEqual(counts);
    expect(stats.lastMs).toBeGreaterThanOrEqual(stats.firstMs);
    expect(stats.firstMs).toBeGreaterThan(Date.now() - 60_000);
    const arrivals = await nginx.arrivals();
    expect(arrivals.map((a) => a.uri).sort()).toEqual(
      Array.from({ length: 30 }, (_, i) => `/item/${i}`).sort(),
    );
  });

  it('puts Retry-After on every 429 when asked', async () => {
    const nginx = await startNginxLimiter({ rate: 20, burst: 5, retryAfter: 1 });
    cleanups.push(() => nginx.close());
    const { seen } = await burst(nginx.url, 30);
    const limited = seen.filter((s) => s.status === 429);
    expect(limited.length).toBeGreaterThan(10);
    expect(limited.every((s) => s.retryAfter === '1')).toBe(true);
    expect(seen.filter((s) => s.status === 200).every((s) => s.retryAfter === undefined)).toBe(
      true,
    );
    expect((await nginx.stats()).byStatus[429]).toBe(limited.length);
  });

  it('setRate reloads nginx: after a raise, the whole sequence passes', async () => {
    const nginx = await startNginxLimiter({ rate: 2, burst: 5 });
    cleanups.push(() => nginx.close());
    // nginx drains the bucket by whole milliseconds of its cached clock: at any rate, burst + 2
    // requests read within one millisecond overflow it (an idle machine sends 3-4 per ms here).
    // `gapMs` keeps each request in a later millisecond than the one before.
    const sequence = async (
      dispatcher: Agent,
      tag: string,
      gapMs = 0,
    ): Promise<Record<number, number>> => {
      const seen: Seen[] = [];
      for (let i = 0; i < 30; i++) {
        if (gapMs > 0 && i > 0) await sleep(gapMs);
        seen.push(await get(`${nginx.url}/${tag}/${i}`, dispatcher));
      }
      return countBy(seen);
    };
    const before = await sequence(agent(), 'before');
    expect(before[200]).toBeGreaterThanOrEqual(6);
    expect(before[200]).toBeLessThanOrEqual(12);
    await nginx.setRate(100_000);
    expect(nginx.options.rate).toBe(100_000);
    // A fresh pool: the old workers closed their keep-alive connections.
    expect(await sequence(agent(), 'after', 2)).toEqual({ 200: 30 });
    const stats = await nginx.stats();
    expect(stats.total).toBe(60);
    expect(stats.byStatus[200]).toBe((before[200] ?? 0) + 30);
  });

  it('keeps the zone across a reload: a full bucket stays full under the new rate', async () => {
    const nginx = await startNginxLimiter({ rate: 1, burst: 5 });
    cleanups.push(() => nginx.close());
    const { seen } = await burst(nginx.url, 6);
    expect(countBy(seen)).toEqual({ 200: 6 });
    await nginx.setRate(1 / 60); // 1r/m: one more request needs a minute of drain
    expect((await get(`${nginx.url}/next`, agent())).status).toBe(429);
  });

  it('in front of an upstream: 502 while it is down, 200 again once it is back', async () => {
    const upstream = await startUpstream();
    cleanups.push(() => upstream.close());
    const nginx = await startNginxLimiter({ rate: 1000, burst: 100, upstream: upstream.url });
    cleanups.push(() => nginx.close());
    const dispatcher = agent();
    expect(await get(`${nginx.url}/a?x=1`, dispatcher)).toMatchObject({
      status: 200,
      body: 'ok /a?x=1\n',
    });
    await upstream.stop();
    expect(upstream.running).toBe(false);
    expect((await get(`${nginx.url}/b`, dispatcher)).status).toBe(502);
    await upstream.start();
    expect(await get(`${nginx.url}/c`, dispatcher)).toMatchObject({ status: 200, body: 'ok /c\n' });
    expect(upstream.requests).toBe(2);
    expect((await nginx.stats()).byStatus).toEqual({ 200: 2, 502: 1 });
  });

  it('close() stops nginx and can be called twice', async () => {
    const nginx = await startNginxLimiter({ rate: 10 });
    expect((await get(`${nginx.url}/x`, agent())).status).toBe(200);
    await nginx.close();
    await nginx.close();
    expect(await refuses(nginx.port)).toBe(true);
  });
});

needs('haproxy')('HAProxy stick table', () => {
  it('refuses requests above the rate with 429; its log and its counters agree', async () => {
    const haproxy = await startHaproxyLimiter({ rate: 10 });
    cleanups.push(() => haproxy.close());
    const { seen } = await burst(haproxy.url, 30);
    const counts = countBy(seen);
    expect(Object.keys(counts).sort()).toEqual(['200', '429']);
    // 30 requests within a second, refused ones counted too: the first 10 pass.
    expect(counts[200]).toBeGreaterThanOrEqual(10);
    expect(counts[200]).toBeLessThanOrEqual(12);
    expect(seen.filter((s) => s.status === 429).every((s) => s.retryAfter === undefined)).toBe(
      true,
    );
    const stats = await haproxy.stats();
    expect(stats.total).toBe(30);
    expect(stats.byStatus).toEqual(counts);
    const counters = await haproxy.counters();
    expect(counters.requests).toBe(30);
    expect(counters.responses['2xx']).toBe(counts[200]);
    expect(counters.responses['4xx']).toBe(counts[429]);
    expect(counters.denied).toBe(counts[429]);
  });

  it('puts Retry-After on every 429 when asked', async () => {
    const haproxy = await startHaproxyLimiter({ rate: 10, retryAfter: 1 });
    cleanups.push(() => haproxy.close());
    const { seen } = await burst(haproxy.url, 30);
    const limited = seen.filter((s) => s.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(18);
    expect(limited.every((s) => s.retryAfter === '1' && s.body === 'rate limited')).toBe(true);
    expect((await haproxy.stats()).byStatus[429]).toBe(limited.length);
  });

  it('proxies to an upstream and close() is idempotent', async () => {
    const upstream = await startUpstream();
    cleanups.push(() => upstream.close());
    const haproxy = await startHaproxyLimiter({ rate: 100, upstream: upstream.url });
    expect(await get(`${haproxy.url}/p`, agent())).toMatchObject({ status: 200, body: 'ok /p\n' });
    expect(upstream.requests).toBe(1);
    await haproxy.close();
    await haproxy.close();
    expect(await refuses(haproxy.port)).toBe(true);
  });
});
