import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  BudgetExhaustedError,
  CircuitOpenError,
  HTTPStatusError,
  Session,
} from '../../src/http/index.js';
import { StormControl } from '../../src/http/storm.js';
import { RetryBudget, seededRandom } from '../../src/retry/index.js';
import { type ChaosServer, FakeClock, startChaosServer } from '../../src/testing/index.js';
import { waitFor } from '../batch/batch-support.js';
import { rejectionOf } from './session-support.js';

let chaos: ChaosServer;
beforeAll(async () => {
  chaos = await startChaosServer();
});
afterAll(() => chaos.close());
beforeEach(() => chaos.reset());

const count = (path: string) => chaos.log().filter((a) => a.path.startsWith(path)).length;

function stormSession(
  clock: FakeClock,
  options: ConstructorParameters<typeof Session>[0] = {},
): Session {
  return new Session({
    clock,
    logger: false,
    retry: { total: 3, backoffFactor: 10, random: seededRandom(1) },
    ...options,
  });
}

describe('retry budget', () => {
  it('stops retries during a full outage, fails fast with the real cause, and recovers after', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const session = stormSession(clock, {
      budget: { percentCanRetry: 0.2, minRetriesPerSecond: 1, ttlMs: 10_000 },
    });
    const outcomes: unknown[] = [];
    for (let i = 0; i < 100; i++)
      outcomes.push(await rejectionOf(session.get(`${chaos.url}/status/503?key=o${i}`)));
    const arrivals = count('/status/503');
    // 100 requests, 20% of them in retries, plus the reserve of 10: far below the 400 of retrying blindly.
    expect(arrivals).toBeLessThanOrEqual(100 + 20 + 10 + 3);
    const exhausted = outcomes.filter(
      (o) => o instanceof BudgetExhaustedError,
    ) as BudgetExhaustedError[];
    expect(exhausted.length).toBeGreaterThan(80);
    const first = exhausted[0] as BudgetExhaustedError;
    expect(first.cause).toBeInstanceOf(HTTPStatusError);
    expect((first.cause as HTTPStatusError).status).toBe(503);
    expect(first.message).toMatch(/retry budget for http:\/\/127\.0\.0\.1:\d+ is spent/);

    // The outage ends; once the window has moved on, retries flow again.
    await clock.advance(20_000);
    for (let i = 0; i < 10; i++) {
      const res = await session.get(`${chaos.url}/flaky/rec-${i}?fail=1&status=503`);
      expect(res.status).toBe(200);
    }
    await session.close();
  });

  it('with raiseOnStatus false, an exhausted budget returns the last response', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const session = stormSession(clock, {
      retry: { total: 3, backoffFactor: 10, raiseOnStatus: false },
      budget: { percentCanRetry: 0, minRetriesPerSecond: 0.1, ttlMs: 10_000 },
    });
    const res = await session.get(`${chaos.url}/status/503`);
    expect(res.status).toBe(503);
    expect(count('/status/503')).toBe(2); // one retry from the reserve of 1, then fail fast
    await session.close();
  });

  it('a handful of requests is never starved by the default budget', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    // The default backoff (full jitter from 500 ms): the reserve of 10 retries in any second is
    // plenty for a script's few requests, even when every attempt fails.
    const session = stormSession(clock, { retry: { total: 3, random: seededRandom(1) } });
    for (let i = 0; i < 5; i++)
      await expect(session.get(`${chaos.url}/status/503?key=o${i}`)).rejects.toMatchObject({
        name: 'MaxRetryError',
      });
    expect(count('/status/503')).toBe(20);
    await session.close();
  });

  it('a retry after a throttle (429, 503 + Retry-After) draws nothing from the budget', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const budget = new RetryBudget({ percentCanRetry: 0, minRetriesPerSecond: 0, clock });
    const session = stormSession(clock, { budget, rateLimit: false });
    const throttled = await session.get(`${chaos.url}/flaky/b429?fail=2&status=429`);
    expect(throttled.status).toBe(200);
    const unavailable = await session.get(
      `${chaos.url}/flaky/b503?fail=1&status=503&retry-after=1`,
    );
    expect(unavailable.status).toBe(200);
    expect(budget.snapshot().totals).toMatchObject({ retries: 0, refused: 0 });
    // A plain 503 is a failure: the empty budget refuses its retry.
    await expect(session.get(`${chaos.url}/flaky/c503?fail=1&status=503`)).rejects.toBeInstanceOf(
      BudgetExhaustedError,
    );
    await session.close();
  });

  it('one budget can be shared by several sessions', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const budget = new RetryBudget({
      percentCanRetry: 0,
      minRetriesPerSecond: 0.2,
      ttlMs: 10_000,
      clock,
    });
    const a = stormSession(clock, { budget });
    const b = stormSession(clock, { budget });
    await expect(a.get(`${chaos.url}/status/500`)).rejects.toBeInstanceOf(BudgetExhaustedError);
    await expect(b.get(`${chaos.url}/status/500`)).rejects.toBeInstanceOf(BudgetExhaustedError);
    expect(count('/status/500')).toBe(4); // 2 retries from the shared reserve in all
    expect(budget.snapshot().totals.retries).toBe(2);
    await a.close();
    await b.close();
  });

  it('budget: false retries without limit', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const session = stormSession(clock, { budget: false });
    for (let i = 0; i < 40; i++)
      await rejectionOf(session.get(`${chaos.url}/status/503?key=o${i}`));
    expect(count('/status/503')).toBe(160);
    await session.close();
  });
});

describe('shared per-origin cooldown', () => {
  it('a Retry-After seen by one request holds the other requests to that origin', async () => {
    const clock = new FakeClock();
    // The hold alone (the default adaptive pacing after it has its own test below).
    const session = stormSession(clock, { rateLimit: false });
    const first = session.get(`${chaos.url}/flaky/cool?fail=1&status=429&retry-after=2`);
    await clock.advance(0);
    // The 429 is in: its retry sleeps on the clock until the Retry-After.
    await waitFor(() => clock.pending === 1, 'the first request to sleep until its retry');
    expect(count('/flaky/cool')).toBe(1);
    const other = session.get(`${chaos.url}/echo?who=other`);
    // Held by the cooldown: it sleeps on the clock too, and nothing reached the server.
    await waitFor(() => clock.pending === 2, 'the other request to be held');
    expect(count('/echo')).toBe(0);
    await clock.advance(1999);
    // Nothing was due before 2 s: both still sleep, so nothing can have been sent.
    expect(clock.pending).toBe(2);
    expect(count('/echo')).toBe(0);
    await clock.advance(1);
    expect((await other).status).toBe(200);
    expect((await first).status).toBe(200);
    expect(count('/echo')).toBe(1);
    await session.close();
  });

  it('answers to requests in flight when the hold began do not extend it: no chain of holds', async () => {
    const clock = new FakeClock();
    const guard = new StormControl({}, clock, 'test').forOrigin('http://a.test');
    guard.holdFor(1000, 0); // a 429 + Retry-After: 1 to a request sent at 0
    await clock.advance(500);
    guard.holdFor(1000, 0); // another request sent at 0, answered now: the same news
    guard.holdFor(1000, -5);
    expect(guard.cooldownMs).toBe(500);
    await clock.advance(100);
    guard.holdFor(1000, 600); // sent after the hold began: a new hold
    expect(guard.cooldownMs).toBe(1000);
    guard.holdFor(200, 600); // shorter: the hold stays
    expect(guard.cooldownMs).toBe(1000);
  });

  it('after a 429, the default adaptive pacing lets requests out one pacing step apart, not at once', async () => {
    const clock = new FakeClock();
    const session = stormSession(clock, { retry: false });
    // Ten answers 100 ms apart, then a 429: the origin took 11 requests in 1 s; pace 9.9/s.
    for (let i = 0; i < 10; i++) {
      await session.get(`${chaos.url}/echo?warm=${i}`);
      await clock.advance(100);
    }
    expect((await session.get(`${chaos.url}/status/429`)).status).toBe(429);
    const waiting = Array.from({ length: 5 }, (_, i) => session.get(`${chaos.url}/echo?w=${i}`));
    const out = () => count('/echo') - 10;
    const outAt: number[] = [];
    for (let step = 0; step < 100 && out() < 5; step++) {
      await new Promise((resolve) => setTimeout(resolve, 15));
      while (outAt.length < out()) outAt.push(clock.now());
      await clock.advance(10);
    }
    expect(out()).toBe(5);
    // One step is 1000 / 9.9 ≈ 101 ms, a little less as the pace searches upward.
    const gaps = outAt.slice(1).map((t, i) => t - (outAt[i] as number));
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(80);
    await Promise.all(waiting);
    await session.close();
  });

  it('a Retry-After longer than maxRetryAfter fails that request only: it holds nothing', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const session = stormSession(clock);
    await expect(session.get(`${chaos.url}/status/503?retry-after=3600`)).rejects.toMatchObject({
      name: 'RetryAfterTooLongError',
      retryAfterMs: 3_600_000,
    });
    const before = clock.now();
    expect((await session.get(`${chaos.url}/echo`)).status).toBe(200);
    expect(clock.now()).toBe(before);
    expect(count('/echo')).toBe(1);
    await session.close();
  });

  it('cooldown: false keeps requests independent', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const session = stormSession(clock, { cooldown: false });
    await rejectionOf(session.get(`${chaos.url}/status/503?retry-after=3600`));
    expect((await session.get(`${chaos.url}/echo`)).status).toBe(200);
    await session.close();
  });
});

describe('circuit breaker', () => {
  it('opens after consecutive failures, fails fast, and a half-open probe closes it on success', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const session = stormSession(clock, {
      retry: false,
      breaker: { mode: 'consecutive', threshold: 2, halfOpenAfterMs: 1000 },
    });
    expect((await session.get(`${chaos.url}/status/500`)).status).toBe(500);
    expect((await session.get(`${chaos.url}/status/500`)).status).toBe(500);
    const open = (await rejectionOf(session.get(`${chaos.url}/status/200`))) as CircuitOpenError;
    expect(open).toBeInstanceOf(CircuitOpenError);
    expect(open.message).toMatch(/is open: failing fast; it lets a request through in 1 s/);
    expect(count('/status/200')).toBe(0);
    await clock.advance(1000);
    expect((await session.get(`${chaos.url}/status/200`)).status).toBe(200); // the probe
    expect((await session.get(`${chaos.url}/status/200`)).status).toBe(200); // closed again
    expect(count('/status/200')).toBe(2);
    await session.close();
  });

  it('is per origin: another origin is not affected', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const session = stormSession(clock, {
      retry: false,
      breaker: { mode: 'consecutive', threshold: 1 },
    });
    await session.get(`${chaos.url}/status/502`);
    await expect(session.get(`${chaos.url}/echo`)).rejects.toBeInstanceOf(CircuitOpenError);
    expect((await session.get(`${chaos.secondaryUrl}/echo`)).status).toBe(200);
    await session.close();
  });

  it('a mount can have a breaker of its own', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const session = stormSession(clock, { retry: false });
    session.mount(`${chaos.url}/status/`, { breaker: { mode: 'consecutive', threshold: 1 } });
    await session.get(`${chaos.url}/status/500`);
    await expect(session.get(`${chaos.url}/status/200`)).rejects.toBeInstanceOf(CircuitOpenError);
    expect((await session.get(`${chaos.url}/echo`)).status).toBe(200);
    await session.close();
  });
});

describe('client-side rate limit', () => {
  it('a fixed limit spaces requests to an origin', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const session = stormSession(clock, { rateLimit: { perSecond: 10, burst: 1 } });
    const started = clock.now();
    for (let i = 0; i < 5; i++) await session.get(`${chaos.url}/echo?i=${i}`);
    expect(clock.now() - started).toBeGreaterThanOrEqual(400);
    await session.close();
  });

  it('adaptive limiting (the default) slows down after a 429', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const session = stormSession(clock, { retry: false });
    for (let i = 0; i < 20; i++) await session.get(`${chaos.url}/echo?i=${i}`);
    const before = clock.now();
    await session.get(`${chaos.url}/status/429`);
    for (let i = 0; i < 5; i++) await session.get(`${chaos.url}/echo?j=${i}`);
    expect(clock.now() - before).toBeGreaterThan(0); // after the throttle, requests wait their turn
    await session.close();
  });

  it('rejects a malformed rate limit', () => {
    // @ts-expect-error: wrong type on purpose
    expect(() => new Session({ rateLimit: 5 })).toThrow(/rateLimit must be/);
    expect(() => new Session({ rateLimit: { perSecond: -1 } })).toThrow(TypeError);
    // @ts-expect-error: wrong type on purpose
    expect(() => new Session({ budget: { percent: 0.2 } })).toThrow(/unknown option "percent"/);
  });
});
