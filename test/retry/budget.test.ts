import { describe, expect, it } from 'vitest';
import { defaults, RetryBudget, RetryError, retry } from '../../src/retry/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { netError } from './helpers.js';

/** Asks for up to `wanted` retries and returns how many were granted (stopping at a refusal). */
function retriesGranted(budget: RetryBudget, wanted: number): number {
  let granted = 0;
  while (granted < wanted && budget.tryRetry()) granted++;
  return granted;
}

describe('RetryBudget: token arithmetic', () => {
  it('starts with the reserve: 10 retries/s over 10 s is 100 tokens', () => {
    const budget = new RetryBudget({ clock: new FakeClock() });
    const snapshot = budget.snapshot();
    expect(snapshot.tokens).toBe(100);
    expect(snapshot.reserve).toBe(100);
    expect(snapshot).toMatchObject({
      percentCanRetry: 0.2,
      minRetriesPerSecond: 10,
      ttlMs: 10_000,
    });
  });

  it('each first attempt deposits percentCanRetry of a token', () => {
    const budget = new RetryBudget({ minRetriesPerSecond: 0, clock: new FakeClock() });
    for (let i = 0; i < 3; i++) budget.recordRequest();
    expect(budget.snapshot().tokens).toBe(0.6);
    expect(budget.snapshot().window).toEqual({ requests: 3, deposited: 0.6, retries: 0 });
  });

  it('the reserve is a floor under the deposits, not an addition to them', () => {
    const budget = new RetryBudget({ clock: new FakeClock() }); // reserve: 100 tokens
    for (let i = 0; i < 400; i++) budget.recordRequest();
    expect(budget.snapshot().tokens).toBe(100); // 80 deposited: the reserve stands in
    for (let i = 0; i < 100; i++) budget.recordRequest();
    expect(budget.snapshot().tokens).toBe(100);
    for (let i = 0; i < 100; i++) budget.recordRequest();
    expect(budget.snapshot().tokens).toBe(120); // 600 requests: 120 deposited
  });

  it('each granted retry withdraws one whole token', () => {
    const budget = new RetryBudget({ clock: new FakeClock() });
    budget.recordRequest();
    expect(budget.tryRetry()).toBe(true);
    expect(budget.snapshot().tokens).toBe(99);
    expect(budget.snapshot().window.retries).toBe(1);
  });

  it('refuses a retry when less than one token is left, and withdraws nothing', () => {
    const budget = new RetryBudget({ minRetriesPerSecond: 0, clock: new FakeClock() });
    for (let i = 0; i < 4; i++) budget.recordRequest();
    expect(budget.tryRetry()).toBe(false);
    expect(budget.snapshot().tokens).toBe(0.8);
    budget.recordRequest();
    expect(budget.tryRetry()).toBe(true);
    expect(budget.snapshot().tokens).toBe(0);
    expect(budget.snapshot().totals).toMatchObject({ retries: 1, refused: 1 });
  });

  it('keeps decimal deposits exact: 30 requests at 10% fund exactly 3 retries', () => {
    const budget = new RetryBudget({
      percentCanRetry: 0.1,
      minRetriesPerSecond: 0,
      clock: new FakeClock(),
    });
    for (let i = 0; i < 30; i++) budget.recordRequest();
    expect(budget.snapshot().tokens).toBe(3);
    expect(retriesGranted(budget, 10)).toBe(3);
  });

  it('a reserve can be fractional: 0.25 retries/s over 10 s is 2.5 tokens', () => {
    const budget = new RetryBudget({ minRetriesPerSecond: 0.25, clock: new FakeClock() });
    expect(budget.snapshot().reserve).toBe(2.5);
    expect(retriesGranted(budget, 10)).toBe(2);
  });

  it('percentCanRetry 0 leaves only the reserve', () => {
    const budget = new RetryBudget({
      percentCanRetry: 0,
      minRetriesPerSecond: 0.1,
      clock: new FakeClock(),
    });
    for (let i = 0; i < 1000; i++) budget.recordRequest();
    expect(retriesGranted(budget, 10)).toBe(1);
  });
});

describe('RetryBudget: the sliding window', () => {
  it('deposits expire with their slice: a count made at 0.999 s lives until 10 s', async () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ minRetriesPerSecond: 0, clock });
    await clock.advance(999);
    for (let i = 0; i < 50; i++) budget.recordRequest();
    await clock.advance(10_000 - 999 - 1);
    expect(budget.snapshot().tokens).toBe(10);
    await clock.advance(1);
    expect(budget.snapshot().tokens).toBe(0);
  });

  it('a count made at the start of a slice lives the whole ttl', async () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ minRetriesPerSecond: 0, ttlMs: 5_000, clock });
    for (let i = 0; i < 5; i++) budget.recordRequest();
    await clock.advance(4_999);
    expect(budget.snapshot().window.requests).toBe(5);
    await clock.advance(1);
    expect(budget.snapshot().window.requests).toBe(0);
  });

  it('the reserve comes back as the retries drawn from it age out', async () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ minRetriesPerSecond: 1, clock });
    expect(retriesGranted(budget, 20)).toBe(10);
    await clock.advance(9_999);
    expect(budget.tryRetry()).toBe(false);
    await clock.advance(1);
    expect(retriesGranted(budget, 20)).toBe(10);
  });

  it('a long quiet spell forgets everything at once', async () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ clock });
    for (let i = 0; i < 100; i++) budget.recordRequest();
    retriesGranted(budget, 50);
    await clock.advance(3_600_000);
    expect(budget.snapshot().window).toEqual({ requests: 0, deposited: 0, retries: 0 });
    expect(budget.snapshot().tokens).toBe(100);
  });
});

describe('RetryBudget: refunds', () => {
  it('a retry that succeeds gets its token back', () => {
    const budget = new RetryBudget({ minRetriesPerSecond: 0, clock: new FakeClock() });
    for (let i = 0; i < 5; i++) budget.recordRequest();
    expect(budget.tryRetry()).toBe(true);
    expect(budget.snapshot().tokens).toBe(0);
    budget.recordSuccess(2);
    expect(budget.snapshot().tokens).toBe(1);
    expect(budget.snapshot().totals).toMatchObject({ successes: 1, refunded: 1, retries: 1 });
  });

  it('a first-attempt success refunds nothing', () => {
    const budget = new RetryBudget({ minRetriesPerSecond: 0, clock: new FakeClock() });
    for (let i = 0; i < 5; i++) budget.recordRequest();
    budget.tryRetry();
    budget.recordSuccess();
    budget.recordSuccess(1);
    expect(budget.snapshot().tokens).toBe(0);
    expect(budget.snapshot().totals).toMatchObject({ successes: 2, refunded: 0 });
  });

  it('refunds never exceed the retries charged in the window', async () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ minRetriesPerSecond: 0, clock });
    for (let i = 0; i < 5; i++) budget.recordRequest();
    budget.tryRetry();
    budget.recordSuccess(3);
    budget.recordSuccess(3);
    expect(budget.snapshot().tokens).toBe(1);
    expect(budget.snapshot().totals.refunded).toBe(1);
  });

  it('a retry that succeeds after its withdrawal aged out refunds nothing', async () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ minRetriesPerSecond: 1, clock });
    budget.tryRetry();
    await clock.advance(10_000);
    budget.recordSuccess(2);
    expect(budget.snapshot().tokens).toBe(10);
    expect(budget.snapshot().totals.refunded).toBe(0);
  });
});

describe('RetryBudget: the defaults hold their promises', () => {
  it('(a) a script making 3 requests that each need 3 retries gets all 9', () => {
    const budget = new RetryBudget({ clock: new FakeClock() });
    let granted = 0;
    for (let request = 0; request < 3; request++) {
      budget.recordRequest();
      granted += retriesGranted(budget, 3);
    }
    expect(granted).toBe(9);
    expect(budget.snapshot().tokens).toBe(91);
  });

  it('(a) a script can make 33 fully retried requests (99 retries) within 10 s', () => {
    const budget = new RetryBudget({ clock: new FakeClock() });
    let granted = 0;
    for (let request = 0; request < 33; request++) {
      budget.recordRequest();
      granted += retriesGranted(budget, 3);
    }
    expect(granted).toBe(99);
  });

  it('(b) a fleet sending 1000 requests/s into a full outage adds 20%: the reserve adds nothing', async () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ clock });
    let requests = 0;
    let retries = 0;
    // 30 s of traffic, 100 requests every 100 ms; every request fails and wants 3 retries.
    for (let tick = 0; tick < 300; tick++) {
      for (let i = 0; i < 100; i++) budget.recordRequest();
      requests += 100;
      for (let i = 0; i < 100; i++) retries += retriesGranted(budget, 3);
      await clock.advance(100);
    }
    // 20% of 30,000 requests; 2,000 deposits per window are far above the reserve of 100.
    expect(retries).toBe(6_000);
    expect((requests + retries) / requests).toBe(1.2);
  });

  it('(b) a client sending 5 requests/s into a full outage lives on the reserve: 10 retries/s', async () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ clock });
    let retries = 0;
    for (let tick = 0; tick < 300; tick++) {
      if (tick % 2 === 0) budget.recordRequest();
      retries += retriesGranted(budget, 3);
      await clock.advance(100);
    }
    // 30 s: the reserve of 100 tokens comes back once per 10 s window.
    expect(retries).toBe(300);
  });

  it('(b) once the reserve is spent, an outage adds exactly percentCanRetry', async () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ minRetriesPerSecond: 0, clock });
    let retries = 0;
    for (let tick = 0; tick < 300; tick++) {
      for (let i = 0; i < 100; i++) budget.recordRequest();
      for (let i = 0; i < 100; i++) retries += retriesGranted(budget, 3);
      await clock.advance(100);
    }
    expect(retries / 30_000).toBe(0.2);
  });

  it('with 20% of attempts failing at random, every failure is retried', async () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ minRetriesPerSecond: 0, clock });
    let state = 7;
    const fails = (): boolean => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return state / 2147483648 < 0.2;
    };
    let refused = 0;
    for (let tick = 0; tick < 100; tick++) {
      for (let request = 0; request < 100; request++) {
        budget.recordRequest();
        for (let attempt = 1; attempt <= 4; attempt++) {
          if (!fails()) {
            budget.recordSuccess(attempt);
            break;
          }
          if (attempt < 4 && !budget.tryRetry()) {
            refused++;
            break;
          }
        }
      }
      await clock.advance(100);
    }
    expect(refused).toBe(0);
    expect(budget.snapshot().totals.retries).toBeGreaterThan(2_000);
  });
});

describe('RetryBudget: sharing and use around retry()', () => {
  it('two callers sharing one budget draw from one pool', () => {
    const budget = new RetryBudget({ minRetriesPerSecond: 0.3, clock: new FakeClock() });
    const workerA = { budget };
    const workerB = { budget };
    expect(workerA.budget.tryRetry()).toBe(true);
    expect(workerB.budget.tryRetry()).toBe(true);
    expect(workerA.budget.tryRetry()).toBe(true);
    expect(workerB.budget.tryRetry()).toBe(false);
  });

  it('an exhausted budget ends a retry() run with RetryError carrying the last real error', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const budget = new RetryBudget({ minRetriesPerSecond: 0.1, clock }); // 1 retry per 10 s
    const errors = [netError('ECONNREFUSED', 'first'), netError('ECONNREFUSED', 'second')];
    let calls = 0;
    const run = retry(
      async ({ attempt }) => {
        if (attempt === 1) budget.recordRequest();
        throw errors[calls++];
      },
      { clock, stop: defaults.stop.or(() => !budget.tryRetry()) },
    );
    const error = await run.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryError);
    expect((error as RetryError).attempts).toBe(2);
    expect((error as RetryError).cause).toBe(errors[1]);
    expect(budget.snapshot().totals).toMatchObject({ requests: 1, retries: 1, refused: 1 });
  });

  it('the stop strategy withdraws only for retries that will really happen', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const budget = new RetryBudget({ clock });
    const run = retry(
      ({ attempt }) => {
        if (attempt === 1) budget.recordRequest();
        throw netError('ECONNRESET');
      },
      { clock, stop: defaults.stop.or(() => !budget.tryRetry()) },
    );
    await expect(run).rejects.toBeInstanceOf(RetryError);
    // 4 attempts = 3 retries; the fourth failure is stopped by defaults.stop, not the budget.
    expect(budget.snapshot().totals).toMatchObject({ retries: 3, refused: 0 });
  });

  it('a retry() run whose retry succeeds refunds its token', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const budget = new RetryBudget({ minRetriesPerSecond: 0.1, clock });
    const value = await retry(
      async ({ attempt }) => {
        if (attempt === 1) {
          budget.recordRequest();
          throw netError('ECONNRESET');
        }
        budget.recordSuccess(attempt);
        return 'ok';
      },
      { clock, stop: defaults.stop.or(() => !budget.tryRetry()) },
    );
    expect(value).toBe('ok');
    expect(budget.snapshot().tokens).toBe(1); // max(0.2 deposited, 1 reserved), the retry refunded
  });
});

describe('RetryBudget: snapshots and validation', () => {
  it('snapshot() is frozen and JSON.stringify(budget) shows it', () => {
    const budget = new RetryBudget({ clock: new FakeClock() });
    budget.recordRequest();
    const snapshot = budget.snapshot();
    expect(Object.isFrozen(snapshot)).toBe(true);
    expect(Object.isFrozen(snapshot.window)).toBe(true);
    expect(Object.isFrozen(snapshot.totals)).toBe(true);
    expect(JSON.parse(JSON.stringify(budget))).toEqual(snapshot);
  });

  it('rejects bad options with a TypeError naming the option and the value', () => {
    expect(() => new RetryBudget({ percentCanRetry: -0.1 })).toThrow(
      /RetryBudget: percentCanRetry must be a finite number from 0 to 1000, got -0\.1/,
    );
    expect(() => new RetryBudget({ minRetriesPerSecond: Number.NaN })).toThrow(
      /RetryBudget: minRetriesPerSecond must be a finite number, at least 0, got NaN/,
    );
    expect(() => new RetryBudget({ ttlMs: 0 })).toThrow(
      /RetryBudget: ttlMs must be a finite number greater than 0, got 0/,
    );
    // @ts-expect-error: not a clock
    expect(() => new RetryBudget({ clock: Date })).toThrow(/RetryBudget: clock must be/);
    // @ts-expect-error: not an options object
    expect(() => new RetryBudget(5)).toThrow(
      /RetryBudget options must be an options object, got 5/,
    );
  });

  it('rejects an unknown option with a hint', () => {
    // @ts-expect-error: unknown option
    expect(() => new RetryBudget({ ratio: 0.1 })).toThrow(
      /RetryBudget: unknown option "ratio"; use percentCanRetry/,
    );
  });

  it('recordSuccess rejects an attempt number that is not a positive integer', () => {
    const budget = new RetryBudget();
    expect(() => budget.recordSuccess(0)).toThrow(
      /RetryBudget\.recordSuccess\(attempt\) must be a positive integer, got 0/,
    );
  });
});
