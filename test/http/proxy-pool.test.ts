import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ProxyPool, type ProxyPoolOptions } from '../../src/http/index.js';
import { seededRandom } from '../../src/retry/index.js';
import { FakeClock } from '../../src/testing/index.js';

const A = 'http://127.0.0.1:3001';
const B = 'http://127.0.0.1:3002';
const C = 'http://127.0.0.1:3003';

function pool(
  urls: string[] = [A, B, C],
  options: ProxyPoolOptions = {},
): { pool: ProxyPool; clock: FakeClock } {
  const clock = new FakeClock();
  return { pool: new ProxyPool(urls, { clock, random: seededRandom(3), ...options }), clock };
}

/** The URLs of `n` successive picks. */
function picks(p: ProxyPool, n: number, key?: string): (string | undefined)[] {
  return Array.from({ length: n }, () => p.pick(key === undefined ? {} : { key }).proxy?.url);
}

describe('ProxyPool options', () => {
  it.each([
    [[], /urls must be a non-empty array of proxy URLs, got an array of length 0/],
    ['http://127.0.0.1:3001', /urls must be a non-empty array/],
    [
      ['not a url'],
      /urls\[0\] must be a proxy URL such as http:\/\/127.0.0.1:3128, got "not a url"/,
    ],
    [['socks5://127.0.0.1:1080'], /urls\[0\] must be an http or https proxy URL, got socks5:/],
    [[A, 'http://127.0.0.1:3001/'], /urls\[1\] \(http:\/\/127.0.0.1:3001\) is listed twice/],
    [['http://127.0.0.1:3001/path'], /with no path/],
  ])('rejects urls %j with a TypeError that says what is wrong', (urls, message) => {
    expect(() => new ProxyPool(urls as string[])).toThrow(TypeError);
    expect(() => new ProxyPool(urls as string[])).toThrow(message);
  });

  it.each([
    [
      { strategy: 'fastest' },
      `ProxyPool: strategy must be 'round-robin', 'random', 'least-used', got "fastest"`,
    ],
    [
      { banStatuses: [403, 'x'] },
      'ProxyPool: banStatuses must be an array of HTTP statuses (100-999), got an array of length 2',
    ],
    [{ banMs: -1 }, 'ProxyPool: banMs must be a non-negative number of milliseconds, got -1'],
    [{ banMs: 1000, maxBanMs: 10 }, 'ProxyPool: maxBanMs must be at least banMs (1000), got 10'],
    [{ maxFailures: 0 }, 'ProxyPool: maxFailures (or Infinity) must be a positive integer, got 0'],
    [{ sticky: 'yes' }, 'ProxyPool: sticky must be a boolean, got "yes"'],
    [{ whenAllBenched: 'sleep' }, `ProxyPool: whenAllBenched must be 'wait', 'fail', got "sleep"`],
    [
      { maxWaitMs: Number.NaN },
      'ProxyPool: maxWaitMs must be a non-negative number of milliseconds, got NaN',
    ],
    [{ clock: {} }, 'ProxyPool: clock must have a now() method, got an object'],
    [{ banTime: 5 }, 'ProxyPool: unknown option "banTime"; use banMs'],
    [
      { proxyRotations: 5 },
      'ProxyPool: unknown option "proxyRotations"; proxyRotations is a Session, mount() or request option',
    ],
  ])('rejects %j naming the option and the value', (options, message) => {
    expect(() => new ProxyPool([A], options as ProxyPoolOptions)).toThrow(new TypeError(message));
  });

  it('never shows credentials in a validation error', () => {
    expect(() => new ProxyPool(['http://user:hunter2@127.0.0.1:3001/x'])).toThrow(
      /got "http:\/\/\*\*\*@127.0.0.1:3001\/x"/,
    );
    let message = '';
    try {
      new ProxyPool(['http://user:hunter2@127.0.0.1:3001', 'http://user:hunter2@127.0.0.1:3001']);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/listed twice/);
    expect(message).not.toContain('hunter2');
  });
});

describe('ProxyPool strategies', () => {
  it('round-robin takes each proxy in turn', () => {
    const { pool: p } = pool();
    expect(picks(p, 4)).toEqual([A, B, C, A]);
  });

  it('random draws from the pool random source, so a seed makes it repeatable', () => {
    const first = picks(pool([A, B, C], { strategy: 'random' }).pool, 12);
    const second = picks(pool([A, B, C], { strategy: 'random' }).pool, 12);
    expect(first).toEqual(second);
    expect(new Set(first)).toEqual(new Set([A, B, C]));
  });

  it('least-used picks the proxy with the fewest requests, ties in turn', () => {
    const { pool: p } = pool([A, B, C], { strategy: 'least-used' });
    expect(picks(p, 3)).toEqual([A, B, C]);
    p.pick({ exclude: p.proxies.filter((e) => e.url !== A) }); // A: 2 requests
    expect(picks(p, 2)).toEqual([B, C]);
    expect(picks(p, 3)).toEqual([A, B, C]);
  });

  it('skips excluded proxies', () => {
    const { pool: p } = pool();
    expect(p.pick({ exclude: p.proxies.slice(0, 2) }).proxy?.url).toBe(C);
  });
});

describe('ProxyPool benching', () => {
  it('benches a banned proxy for banMs, then lets it back', async () => {
    const { pool: p, clock } = pool([A, B], { banMs: 1000 });
    expect(p.markBanned(A, { status: 403 })).toBe(1000);
    expect(picks(p, 3)).toEqual([B, B, B]);
    await clock.advance(999);
    expect(p.pick().proxy?.url).toBe(B);
    await clock.advance(1);
    expect(picks(p, 2)).toEqual([A, B]);
  });

  it('says how long until the first proxy returns when all are benched', async () => {
    const { pool: p, clock } = pool([A, B], { banMs: 1000 });
    p.markBanned(A);
    await clock.advance(300);
    p.markBanned(B);
    expect(p.pick()).toEqual({ proxy: undefined, availableInMs: 700 });
    expect(p.pick({ exclude: p.proxies })).toEqual({ proxy: undefined, availableInMs: undefined });
  });

  it('keeps repeat offenders out longer: full jitter between banMs and banMs * 2^(n-1), capped', async () => {
    const { pool: p, clock } = pool([A, B], { banMs: 1000, maxBanMs: 5000 });
    const benches: number[] = [];
    for (let i = 0; i < 6; i++) {
      const ms = p.markBanned(A, { status: 429 });
      benches.push(ms);
      await clock.advance(ms);
    }
    expect(benches[0]).toBe(1000);
    expect(benches[1]).toBeGreaterThanOrEqual(1000);
    expect(benches[1]).toBeLessThanOrEqual(2000);
    expect(benches[2]).toBeLessThanOrEqual(4000);
    for (const ms of benches) expect(ms).toBeLessThanOrEqual(5000);
    expect(new Set(benches.slice(1)).size).toBeGreaterThan(1); // jittered
    expect(p.statistics[A]).toMatchObject({ bans: 6, benchings: 6, strikes: 6 });
  });

  it('forgives a proxy its strikes after a success', async () => {
    const { pool: p, clock } = pool([A, B], { banMs: 1000, maxBanMs: 60_000 });
    await clock.advance(p.markBanned(A));
    await clock.advance(p.markBanned(A));
    p.markSuccess(A, 12);
    expect(p.markBanned(A)).toBe(1000);
  });

  it('a ban reported while the proxy is benched does not lengthen the bench', async () => {
    const { pool: p, clock } = pool([A, B], { banMs: 1000 });
    p.markBanned(A);
    await clock.advance(400);
    expect(p.markBanned(A)).toBe(600);
    expect(p.statistics[A]).toMatchObject({ bans: 2, benchings: 1, strikes: 1 });
  });

  it('a Retry-After on the ban sets the bench (capped at maxBanMs)', () => {
    const { pool: p } = pool([A, B], { banMs: 1000, maxBanMs: 10_000 });
    expect(p.markBanned(A, { status: 429, retryAfterMs: 3000 })).toBe(3000);
    expect(p.markBanned(B, { status: 429, retryAfterMs: 3_600_000 })).toBe(10_000);
  });

  it('benches a failing proxy after maxFailures consecutive failures', () => {
    const { pool: p } = pool([A, B], { maxFailures: 2 });
    expect(p.markFailed(A, { reason: 'ECONNREFUSED' })).toBe(false);
    expect(p.statistics[A]?.state).toBe('available');
    expect(p.markFailed(A, { reason: 'ECONNREFUSED' })).toBe(true);
    expect(p.statistics[A]).toMatchObject({ state: 'benched', failures: 2, benchings: 1 });
  });

  it('a success resets the consecutive failures', () => {
    const { pool: p } = pool([A, B], { maxFailures: 2 });
    p.markFailed(A);
    p.markSuccess(A);
    expect(p.markFailed(A)).toBe(false);
  });

  it('a fatal failure (wrong credentials) benches at once', () => {
    const { pool: p } = pool([A, B], { maxFailures: 5 });
    expect(p.markFailed(A, { fatal: true })).toBe(true);
  });

  it('maxFailures: Infinity never benches for failures', () => {
    const { pool: p } = pool([A], { maxFailures: Number.POSITIVE_INFINITY });
    for (let i = 0; i < 100; i++) expect(p.markFailed(A)).toBe(false);
  });

  it('ban detection can be turned off with banStatuses: []', () => {
    const { pool: p } = pool([A], { banStatuses: [] });
    expect(p.isBanStatus(403)).toBe(false);
    expect(pool([A]).pool.isBanStatus(429)).toBe(true);
  });
});

describe('ProxyPool sticky keys', () => {
  it('keeps one proxy per key', () => {
    const { pool: p } = pool([A, B, C], { sticky: true });
    expect(picks(p, 3, 'alice')).toEqual([A, A, A]);
    expect(picks(p, 2, 'bob')).toEqual([B, B]);
    expect(p.pick().proxy?.url).toBe(C);
    expect(p.pick({ key: 'alice' }).proxy?.url).toBe(A);
  });

  it('moves a key to another proxy when its proxy is benched, and keeps it there', async () => {
    const { pool: p, clock } = pool([A, B, C], { sticky: true, banMs: 1000 });
    expect(p.pick({ key: 'alice' }).proxy?.url).toBe(A);
    p.markBanned(A);
    expect(picks(p, 2, 'alice')).toEqual([B, B]);
    await clock.advance(1000);
    expect(p.pick({ key: 'alice' }).proxy?.url).toBe(B);
  });

  it('an excluded (failed) proxy is avoided for the request without moving the key', () => {
    const { pool: p } = pool([A, B], { sticky: true });
    const a = p.pick({ key: 'alice' }).proxy;
    expect(p.pick({ key: 'alice', exclude: a ? [a] : [] }).proxy?.url).toBe(B);
    expect(p.pick({ key: 'alice' }).proxy?.url).toBe(A);
  });

  it('forgets the least recently used key beyond maxStickyKeys', () => {
    const { pool: p } = pool([A, B, C], { sticky: true, maxStickyKeys: 2 });
    p.pick({ key: 'k1' }); // A
    p.pick({ key: 'k2' }); // B
    p.pick({ key: 'k3' }); // C; k1 forgotten
    expect(p.pick({ key: 'k2' }).proxy?.url).toBe(B);
    expect(p.pick({ key: 'k1' }).proxy?.url).toBe(A); // assigned afresh, in turn
  });

  it('refuses a key on a pool that is not sticky', () => {
    expect(() => pool().pool.pick({ key: 'alice' })).toThrow(
      new TypeError('proxyKey needs a sticky pool: new ProxyPool(urls, { sticky: true })'),
    );
  });
});

describe('ProxyPool statistics and credentials', () => {
  it('counts requests, successes, bans, failures and latency per proxy', () => {
    const { pool: p } = pool([A, B]);
    p.pick();
    p.markSuccess(A, 10);
    p.pick();
    p.markBanned(B, { status: 403, reason: '403 Forbidden' });
    p.pick();
    p.markSuccess(A, 30);
    expect(p.statistics[A]).toMatchObject({
      url: A,
      state: 'available',
      requests: 2,
      successes: 2,
      bans: 0,
      lastLatencyMs: 30,
      meanLatencyMs: 20,
      minLatencyMs: 10,
      maxLatencyMs: 30,
    });
    expect(p.statistics[B]).toMatchObject({
      requests: 1,
      bans: 1,
      state: 'benched',
      benchedForMs: 60_000,
      lastProblem: '403 Forbidden',
    });
    expect(Object.isFrozen(p.statistics)).toBe(true);
  });

  it('keys statistics by the URL without credentials, and numbers accounts of one gateway', () => {
    const p = new ProxyPool([
      'http://alice:pw-one@127.0.0.1:7000',
      'http://bob:pw-two@127.0.0.1:7000',
      B,
    ]);
    expect(Object.keys(p.statistics)).toEqual([
      'http://127.0.0.1:7000',
      'http://127.0.0.1:7000#2',
      B,
    ]);
    expect(p.proxies.map((e) => e.hasCredentials)).toEqual([true, true, false]);
  });

  it('never shows credentials: inspect, JSON, statistics, entries and problems', () => {
    const p = new ProxyPool(['http://alice:pw-one@127.0.0.1:7000']);
    p.markFailed('http://127.0.0.1:7000', {
      reason: 'proxy http://alice:pw-one@127.0.0.1:7000 refused',
    });
    const shown = [
      inspect(p, { depth: 10, showHidden: true }),
      JSON.stringify(p),
      JSON.stringify(p.statistics),
      inspect(p.proxies, { depth: 10, showHidden: true }),
      inspect(p.pick(), { depth: 10, showHidden: true }),
    ].join('\n');
    expect(shown).toContain('http://127.0.0.1:7000');
    expect(shown).not.toMatch(/alice|pw-one/);
  });
});
