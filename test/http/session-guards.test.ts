import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BudgetExhaustedError, ConnectionResetError, Session } from '../../src/http/index.js';
import { seededRandom, wait } from '../../src/retry/index.js';
import { type ChaosServer, FakeClock, startChaosServer } from '../../src/testing/index.js';
import { rejectionOf } from './session-support.js';

/**
 * Behaviours a user relies on that only a precise test guards: each of these was once broken in
 * the code on purpose while every other test still passed.
 */

let chaos: ChaosServer;
beforeAll(async () => {
  chaos = await startChaosServer();
});
afterAll(() => chaos.close());
beforeEach(() => chaos.reset());

const arrivals = (path: string) => chaos.log().filter((a) => a.path.startsWith(path)).length;

describe('the retry budget guards every failure path, not only statuses', () => {
  it('an outage of connection resets is held to the budget, and fails fast with the real cause', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const session = new Session({
      clock,
      logger: false,
      rateLimit: false,
      retry: { total: 3, backoffFactor: 10, random: seededRandom(1) },
      budget: { percentCanRetry: 0.2, minRetriesPerSecond: 1, ttlMs: 10_000 },
    });
    const outcomes: unknown[] = [];
    for (let i = 0; i < 100; i++)
      outcomes.push(await rejectionOf(session.get(`${chaos.url}/reset?key=r${i}`)));
    await session.close();
    // Without the budget on this path every request would make 4 attempts: 400 arrivals.
    expect(arrivals('/reset')).toBeLessThanOrEqual(100 + 20 + 10 + 3);
    const exhausted = outcomes.filter((o) => o instanceof BudgetExhaustedError);
    expect(exhausted.length).toBeGreaterThan(80);
    expect((exhausted[0] as BudgetExhaustedError).cause).toBeInstanceOf(ConnectionResetError);
  });
});

describe('backoff state inside a Session', () => {
  it('decorrelated jitter sees the previous delay, so its delays grow past the first range', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const delays: number[] = [];
    const session = new Session({
      clock,
      logger: false,
      budget: false,
      rateLimit: false,
      retry: {
        total: 8,
        backoff: wait.decorrelatedJitter({ base: 100, max: 60_000 }),
        random: seededRandom(11),
      },
      hooks: {
        beforeRetry: (event) => {
          delays.push(event.delayMs);
          return undefined;
        },
      },
    });
    const res = await session.get(`${chaos.url}/flaky/dj?fail=8&status=503`);
    await session.close();
    expect(res.status).toBe(200);
    expect(delays).toHaveLength(8);
    // Each delay is drawn from [base, 3 · previous]: the first from [100, 300]. With the previous
    // delay lost (0 each time) every delay would stay in [100, 300].
    expect(delays[0]).toBeGreaterThanOrEqual(100);
    expect(delays[0]).toBeLessThanOrEqual(300);
    for (let i = 1; i < delays.length; i++) {
      expect(delays[i]).toBeGreaterThanOrEqual(100);
      expect(delays[i]).toBeLessThanOrEqual(3 * Math.max(100, delays[i - 1] as number) + 1e-9);
    }
    expect(Math.max(...delays)).toBeGreaterThan(300);
  });
});
