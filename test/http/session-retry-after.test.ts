import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type DoggedResponse,
  MaxRetryError,
  RetryAfterTooLongError,
  type RetryEvent,
  Session,
} from '../../src/http/index.js';
import { seededRandom } from '../../src/retry/index.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { arrivals, fastSession, rejectionOf } from './session-support.js';

let chaos: ChaosServer;
beforeAll(async () => {
  chaos = await startChaosServer();
});
afterAll(() => chaos.close());
beforeEach(() => chaos.reset());

/** Milliseconds between consecutive arrivals, on the chaos server's monotonic clock. */
function gaps(): number[] {
  const log = arrivals(chaos);
  return log.slice(1).map((a, i) => a.timeMs - (log[i]?.timeMs ?? 0));
}

describe('Retry-After, on the real clock (gaps measured in the arrival log)', () => {
  // Real sleeping is the point here: no FakeClock. A backoff that would retry at once shows
  // that any gap comes from the header.
  const realSession = (events: RetryEvent[]): Session =>
    new Session({
      logger: false,
      retry: { total: 1, backoffFactor: 0 },
      hooks: {
        beforeRetry: (event) => {
          events.push(event);
          return undefined;
        },
      },
    });

  it('waits at least the delay-seconds it asks for (Retry-After: 1)', async () => {
    const events: RetryEvent[] = [];
    await using session = realSession(events);
    const response = await session.get(`${chaos.url}/flaky/ra1?fail=1&status=503&retry-after=1`);
    expect(response.status).toBe(200);
    expect(response.attempts).toBe(2);
    expect(events.map((e) => [e.delayMs, e.delaySource])).toEqual([[1000, 'retry-after']]);
    expect(gaps()).toHaveLength(1);
    expect(gaps()[0]).toBeGreaterThanOrEqual(1000);
  });

  it('waits until the HTTP-date it names (Retry-After as an IMF-fixdate)', async () => {
    const events: RetryEvent[] = [];
    await using session = realSession(events);
    // A whole second at least 1.5 s ahead: the header has one-second resolution.
    const until = Math.ceil((Date.now() + 1500) / 1000) * 1000;
    const date = new Date(until).toISOString();
    const url = `${chaos.url}/flaky/ra2?fail=1&status=429&retry-after-date=${date}`;
    const response = await session.get(url);
    expect(response.status).toBe(200);
    expect(events).toHaveLength(1);
    expect(events[0]?.delaySource).toBe('retry-after');
    // The client asked for what was left until the date when the 429 arrived: over 1 s.
    expect(events[0]?.delayMs).toBeGreaterThan(1000);
    expect(gaps()[0]).toBeGreaterThanOrEqual(1000);
    // The retry came no earlier than the date itself.
    expect(Date.now()).toBeGreaterThanOrEqual(until);
  });
});

describe('Retry-After, on a fake clock', () => {
  it('sleeps exactly the Retry-After instead of the backoff, on every retry', async () => {
    const { session, clock } = fastSession({ retry: { backoffFactor: 100 } });
    await using _ = session;
    await expect(session.get(`${chaos.url}/status/503?retry-after=2`)).rejects.toBeInstanceOf(
      MaxRetryError,
    );
    expect(clock.sleeps).toEqual([2000, 2000, 2000]);
    expect(arrivals(chaos)).toHaveLength(4);
  });

  it('retries a 413 with Retry-After (retryAfterStatusCodes) though it is not in the forcelist', async () => {
    const { session, clock } = fastSession();
    await using _ = session;
    const response = await session.get(`${chaos.url}/flaky/ra3?fail=1&status=413&retry-after=3`);
    expect(response.status).toBe(200);
    expect(clock.sleeps).toEqual([3000]);
  });

  it('ignores Retry-After with respectRetryAfterHeader: false (the backoff applies)', async () => {
    const { session, clock } = fastSession({
      retry: { backoffFactor: 100, respectRetryAfterHeader: false },
    });
    await using _ = session;
    await expect(session.get(`${chaos.url}/status/503?retry-after=2`)).rejects.toBeInstanceOf(
      MaxRetryError,
    );
    expect(clock.sleeps).toEqual([0, 200, 400]);
  });

  it('above maxRetryAfter it stops at once with RetryAfterTooLongError carrying the value', async () => {
    const { session, clock } = fastSession({ retry: { maxRetryAfter: 60_000 } });
    await using _ = session;
    const error = await rejectionOf(session.get(`${chaos.url}/status/429?retry-after=3600`));
    expect(error).toBeInstanceOf(RetryAfterTooLongError);
    const tooLong = error as RetryAfterTooLongError;
    expect(tooLong.code).toBe('ERR_DOGGED_RETRY_AFTER_TOO_LONG');
    expect(tooLong.retryAfterMs).toBe(3_600_000);
    expect(tooLong.maxRetryAfterMs).toBe(60_000);
    expect(tooLong.message).toMatch(/raise maxRetryAfter or schedule/);
    expect(tooLong.response?.status).toBe(429);
    expect(await (tooLong.response as DoggedResponse).json()).toMatchObject({ status: 429 });
    expect(arrivals(chaos)).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);
  });

  it('a date above maxRetryAfter stops at once too (default limit 120 s)', async () => {
    const { session, clock } = fastSession();
    await using _ = session;
    const date = new Date(Date.now() + 3_600_000).toISOString();
    const error = await rejectionOf(
      session.get(`${chaos.url}/status/503?retry-after-date=${date}`),
    );
    expect(error).toBeInstanceOf(RetryAfterTooLongError);
    expect((error as RetryAfterTooLongError).retryAfterMs).toBeGreaterThan(3_500_000);
    expect(arrivals(chaos)).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);
  });

  it('a date in the past means retry at once, never a negative sleep', async () => {
    const { session, clock } = fastSession();
    await using _ = session;
    const url = `${chaos.url}/flaky/ra4?fail=1&retry-after-date=2001-01-01T00:00:00Z`;
    expect((await session.get(url)).status).toBe(200);
    expect(clock.sleeps).toEqual([0]);
  });

  it.each(['soon', '-5', '10s', '2030-01-01T00:00:00Z'])(
    'a malformed Retry-After (%j) falls back to the backoff',
    async (raw) => {
      const events: RetryEvent[] = [];
      const { session, clock } = fastSession({
        retry: { backoffFactor: 100, random: seededRandom(7) },
        hooks: {
          beforeRetry: (event) => {
            events.push(event);
            return undefined;
          },
        },
      });
      await using _ = session;
      const error = await rejectionOf(
        session.get(`${chaos.url}/status/503?retry-after-raw=${encodeURIComponent(raw)}`),
      );
      expect(error).toBeInstanceOf(MaxRetryError);
      expect(clock.sleeps).toEqual([0, 200, 400]);
      expect(events.map((e) => e.delaySource)).toEqual(['backoff', 'backoff', 'backoff']);
      expect(arrivals(chaos)).toHaveLength(4);
    },
  );
});
