import { expect, it } from 'vitest';
import {
  NoProxyAvailableError,
  ProxyError,
  ProxyPool,
  type ProxyPoolOptions,
  Session,
  type SessionOptions,
  TotalTimeoutError,
} from '../../src/http/index.js';
import { type ChaosServer, FakeClock, startChaosServer } from '../../src/testing/index.js';
import { needs } from '../support/needs.js';
import {
  clientOf,
  flag,
  type ProxyFleet,
  proxiedSession,
  useProxyFleetAndChaos,
} from './proxy-support.js';
import { recordingLogger, rejectionOf } from './session-support.js';

let fleet: ProxyFleet;
let chaos: ChaosServer;
useProxyFleetAndChaos((f, c) => {
  fleet = f;
  chaos = c;
});

/** The client addresses the chaos server saw for `path`, in order. */
function clients(path: string): string[] {
  return chaos
    .log()
    .filter((a) => a.path === path)
    .map((a) => a.clientAddress);
}

needs('tinyproxy')('rotation after a ban', () => {
  it('the proxies leave through distinct source addresses that /ban tells apart', async () => {
    const seen: string[] = [];
    for (const proxy of [fleet.a, fleet.b, fleet.c, fleet.auth]) {
      const { session } = proxiedSession([proxy]);
      await using _ = session;
      seen.push(await clientOf(await session.get(`${chaos.url}/echo`)));
    }
    expect(seen).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']);
  });

  it('moves on at once through another proxy and completes every request', async () => {
    const url = `${chaos.url}/ban?after=5&window=600000`;
    await flag(fleet.a, url, 6);
    const { session, pool, clock } = proxiedSession([fleet.a, fleet.b, fleet.c]);
    await using _ = session;
    const responses = [];
    for (let i = 0; i < 6; i++) responses.push(await session.get(url));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(responses.map((r) => r.attempts)).toEqual([2, 1, 1, 1, 1, 1]);
    expect(clients('/ban').slice(6)).toEqual([
      '127.0.0.2',
      '127.0.0.3',
      '127.0.0.4',
      '127.0.0.3',
      '127.0.0.4',
      '127.0.0.3',
      '127.0.0.4',
    ]);
    expect(pool.statistics[fleet.a.publicUrl]).toMatchObject({
      requests: 1,
      bans: 1,
      successes: 0,
      state: 'benched',
      lastProblem: '403 Forbidden',
    });
    const b = pool.statistics[fleet.b.publicUrl];
    const c = pool.statistics[fleet.c.publicUrl];
    expect((b?.successes ?? 0) + (c?.successes ?? 0)).toBe(6);
    expect(clock.sleeps).toEqual([]); // a rotation never sleeps
  });

  it('a benched proxy returns after banMs, and not a moment before', async () => {
    const clock = new FakeClock();
    await using timed = await startChaosServer({ clock });
    const url = `${timed.url}/ban?after=2&window=1000`;
    await flag(fleet.a, url, 3);
    const pool = new ProxyPool([fleet.a.url, fleet.b.url, fleet.c.url], { banMs: 1000, clock });
    await using session = new Session({ proxies: pool, logger: false });
    const seen: string[] = [];
    const send = async (): Promise<void> => {
      const response = await session.get(url);
      expect(response.status).toBe(200);
      seen.push(((await response.json()) as { client: string }).client);
    };
    await send(); // A: 403, benched until t=1000; B answers
    await send(); // C
    await clock.advance(999);
    await send(); // A still benched: B
    await send(); // C
    await clock.advance(1);
    await send(); // A is back (and its requests at t=0 left the window)
    expect(seen).toEqual(['127.0.0.3', '127.0.0.4', '127.0.0.3', '127.0.0.4', '127.0.0.2']);
    expect(pool.statistics[fleet.a.publicUrl]).toMatchObject({ bans: 1, successes: 1 });
  });

  it('keeps a sticky key on its proxy until that proxy is banned, then on the next one', async () => {
    const url = `${chaos.url}/ban?after=3&window=600000`;
    const { session } = proxiedSession([fleet.a, fleet.b, fleet.c], { sticky: true });
    await using _ = session;
    const via = async (key: string): Promise<string> => {
      const response = await session.get(url, { proxyKey: key });
      expect(response.status).toBe(200);
      return ((await response.json()) as { client: string }).client;
    };
    const alice: string[] = [];
    const bob: string[] = [];
    for (let i = 0; i < 3; i++) alice.push(await via('alice'));
    bob.push(await via('bob'));
    alice.push(await via('alice')); // the 4th through A is banned: alice moves to C
    alice.push(await via('alice'));
    bob.push(await via('bob'));
    expect(alice).toEqual(['127.0.0.2', '127.0.0.2', '127.0.0.2', '127.0.0.4', '127.0.0.4']);
    expect(bob).toEqual(['127.0.0.3', '127.0.0.3']);
  });

  it('rotations do not use up the retry policy: total 0 still rotates', async () => {
    const url = `${chaos.url}/ban?after=1&window=600000`;
    await flag(fleet.a, url, 2);
    const { session } = proxiedSession([fleet.a, fleet.b], {}, { retry: { total: 0 } });
    await using _ = session;
    const response = await session.get(url);
    expect(response.status).toBe(200);
    expect(response.attempts).toBe(2);
  });

  it('when proxyRotations run out the ban status is the policy’s: a 403 comes back as it is', async () => {
    const url = `${chaos.url}/ban?after=1&window=600000`;
    await flag(fleet.a, url, 2);
    await flag(fleet.b, url, 2);
    const { session, pool } = proxiedSession(
      [fleet.a, fleet.b, fleet.c],
      {},
      { proxyRotations: 1 },
    );
    await using _ = session;
    const response = await session.get(url);
    expect(response.status).toBe(403);
    expect(response.attempts).toBe(2);
    expect(pool.statistics[fleet.c.publicUrl]?.requests).toBe(0);
  });

  it('a per-request proxyRotations: 0 turns rotation off for that request', async () => {
    const url = `${chaos.url}/ban?after=1&window=600000`;
    await flag(fleet.a, url, 2);
    const { session, pool } = proxiedSession([fleet.a, fleet.b]);
    await using _ = session;
    const response = await session.get(url, { proxyRotations: 0 });
    expect(response.status).toBe(403);
    expect(pool.statistics[fleet.a.publicUrl]?.state).toBe('benched');
  });

  it('a 429 that outlasts the rotations is retried by the policy after its Retry-After', async () => {
    const { session, clock } = proxiedSession([fleet.a], {}, { proxyRotations: 0 });
    await using _ = session;
    await using limited = await startChaosServer({ clock });
    const url = `${limited.url}/ratelimit?rps=0.5&burst=1`;
    expect((await session.get(url)).status).toBe(200);
    // The 429 benches the only proxy for its Retry-After (2 s); no rotation is left, so the
    // policy sleeps that Retry-After, and by then the proxy is back and the bucket refilled.
    const response = await session.get(url);
    expect(response.status).toBe(200);
    expect(response.attempts).toBe(2);
    expect(clock.sleeps).toEqual([2000]);
  });

  it('a POST is not rotated after a ban unless it carries an Idempotency-Key', async () => {
    const url = `${chaos.url}/ban?after=1&window=600000`;
    await flag(fleet.a, url, 2);
    const first = proxiedSession([fleet.a, fleet.b]);
    await using _first = first.session;
    const plain = await first.session.post(url, { body: 'order' });
    expect([plain.status, plain.attempts]).toEqual([403, 1]);
    const second = proxiedSession([fleet.a, fleet.b]);
    await using _second = second.session;
    const keyed = await second.session.post(url, { body: 'order', idempotencyKey: true });
    expect([keyed.status, keyed.attempts]).toEqual([200, 2]);
  });
});

needs('tinyproxy')('every proxy benched', () => {
  interface Benched {
    session: Session;
    clock: FakeClock;
    logger: ReturnType<typeof recordingLogger>;
    url: string;
    [Symbol.asyncDispose](): Promise<void>;
  }

  /** A and B each served /ban once (after=1): the next request through either is banned. */
  async function benchBoth(
    poolOptions: ProxyPoolOptions,
    options: SessionOptions = {},
    clock = new FakeClock({ autoAdvance: true }),
  ): Promise<Benched> {
    const timed = await startChaosServer({ clock });
    const url = `${timed.url}/ban?after=1&window=1000`;
    const logger = recordingLogger();
    const pool = new ProxyPool([fleet.a.url, fleet.b.url], { banMs: 1000, clock, ...poolOptions });
    const session = new Session({ proxies: pool, clock, logger, ...options });
    expect((await session.get(url)).status).toBe(200); // A
    expect((await session.get(url)).status).toBe(200); // B
    return {
      session,
      clock,
      logger,
      url,
      [Symbol.asyncDispose]: async () => {
        await session.close();
        await timed.close();
      },
    };
  }

  it('waits for the earliest return, then completes', async () => {
    await using benched = await benchBoth({});
    const { session, clock, logger, url } = benched;
    const response = await session.get(url); // A 403, B 403, wait 1 s, A again
    expect(response.status).toBe(200);
    expect(response.attempts).toBe(3);
    expect(clock.sleeps).toEqual([1000]);
    expect(logger.lines.map((l) => l.message)).toContainEqual(
      `GET ${url}: every proxy is benched; waiting 1 s for the first to return`,
    );
  });

  it("fails with NoProxyAvailableError when the pool's whenAllBenched is 'fail'", async () => {
    await using benched = await benchBoth({ whenAllBenched: 'fail' });
    const error = await rejectionOf(benched.session.get(benched.url));
    expect(error).toBeInstanceOf(NoProxyAvailableError);
    expect(error).toBeInstanceOf(ProxyError);
    expect(error).toMatchObject({
      code: 'ERR_DOGGED_NO_PROXY_AVAILABLE',
      availableInMs: 1000,
      attempts: 2,
    });
    expect((error as Error).message).toMatch(
      /every proxy is benched; the first returns in 1 s and the pool's whenAllBenched is 'fail'/,
    );
    expect(benched.clock.sleeps).toEqual([]);
  });

  it('fails at once when the return is further away than maxWaitMs', async () => {
    await using benched = await benchBoth({ maxWaitMs: 999 });
    const error = await rejectionOf(benched.session.get(benched.url));
    expect(error).toBeInstanceOf(NoProxyAvailableError);
    expect((error as Error).message).toMatch(/would exceed the pool's maxWaitMs of 999 ms/);
  });

  it('never waits past the total timeout', async () => {
    await using benched = await benchBoth({}, { timeout: { total: 500 } });
    const error = await rejectionOf(benched.session.get(benched.url));
    expect(error).toBeInstanceOf(TotalTimeoutError);
    expect(benched.clock.sleeps).toEqual([]);
  });

  it('an abort ends the wait at once', async () => {
    const clock = new FakeClock();
    await using benched = await benchBoth({ banMs: 60_000 }, {}, clock);
    const controller = new AbortController();
    const pending = rejectionOf(benched.session.get(benched.url, { signal: controller.signal }));
    while (clock.pending === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort(new Error('shutting down'));
    expect(((await pending) as Error).message).toBe('shutting down');
  });
});

needs('tinyproxy')('Session wiring', () => {
  it('accepts proxy URLs directly: they become a pool with default settings', async () => {
    await using session = new Session({ proxies: [fleet.a.url, fleet.b.url], logger: false });
    const seen = [];
    for (let i = 0; i < 3; i++) seen.push(await clientOf(await session.get(`${chaos.url}/echo`)));
    expect(seen).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.2']);
  });

  it('mount() gives a prefix its own proxies, or none with proxies: false', async () => {
    await using session = new Session({ proxies: [fleet.a.url], logger: false });
    session.mount(`${chaos.url}/echo?via=b`, { proxies: [fleet.b.url] });
    session.mount(`${chaos.url}/echo?via=none`, { proxies: false });
    expect(await clientOf(await session.get(`${chaos.url}/echo`))).toBe('127.0.0.2');
    expect(await clientOf(await session.get(`${chaos.url}/echo?via=b`))).toBe('127.0.0.3');
    expect(await clientOf(await session.get(`${chaos.url}/echo?via=none`))).toBe('127.0.0.1');
  });

  it('noProxy sends matching hosts direct', async () => {
    await using session = new Session({
      proxies: [fleet.a.url],
      noProxy: [`127.0.0.1:${chaos.secondaryPort}`],
      logger: false,
    });
    expect(await clientOf(await session.get(`${chaos.url}/echo`))).toBe('127.0.0.2');
    expect(await clientOf(await session.get(`${chaos.secondaryUrl}/echo`))).toBe('127.0.0.1');
  });

  it('session.fetch rotates too', async () => {
    const url = `${chaos.url}/ban?after=1&window=600000`;
    await flag(fleet.a, url, 2);
    await using session = new Session({ proxies: [fleet.a.url, fleet.b.url], logger: false });
    const response = await session.fetch(url);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { client: string }).client).toBe('127.0.0.3');
  });

  it('close() closes every proxy connection: no sockets are left behind', async () => {
    const sockets = (): number =>
      process.getActiveResourcesInfo().filter((t) => t === 'TCPSocketWrap').length;
    const before = sockets();
    const session = new Session({ proxies: [fleet.a.url, fleet.b.url], logger: false });
    for (let i = 0; i < 4; i++) await (await session.get(`${chaos.url}/echo`)).text();
    expect(sockets()).toBeGreaterThan(before);
    await session.close();
    const until = performance.now() + 2000;
    while (sockets() > before && performance.now() < until)
      await new Promise((resolve) => setTimeout(resolve, 10));
    expect(sockets()).toBeLessThanOrEqual(before);
  });

  it('keeps the tunnel alive: successive requests through a proxy reuse one connection', async () => {
    await using session = new Session({ proxies: [fleet.a.url], logger: false });
    for (let i = 0; i < 4; i++) {
      await (await session.get(`${chaos.url}/echo`)).text();
      // undici hands the socket back to its pool a moment after the body ends.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const ids = new Set(
      chaos
        .log()
        .filter((a) => a.path === '/echo')
        .map((a) => a.connectionId),
    );
    expect(ids.size).toBe(1);
  });
});
