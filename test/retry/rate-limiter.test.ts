import { describe, expect, it } from 'vitest';
import { retry, systemClock, TokenBucketLimiter } from '../../src/retry/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { netError } from './helpers.js';

/** Starts `count` acquisitions and records, for each, the clock time it was granted. */
function acquireAll(limiter: TokenBucketLimiter, clock: FakeClock, count: number): number[] {
  const grantedAt: number[] = [];
  for (let i = 0; i < count; i++) void limiter.acquire().then(() => grantedAt.push(clock.now()));
  return grantedAt;
}

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

describe('TokenBucketLimiter: rates', () => {
  it('starts full: a burst of requests goes at once', async () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketLimiter({ perSecond: 10, burst: 3, clock });
    const grantedAt = acquireAll(limiter, clock, 3);
    await clock.advance(0);
    expect(grantedAt).toEqual([0, 0, 0]);
  });

  it('paces requests to perSecond once the burst is spent', async () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketLimiter({ perSecond: 10, burst: 1, clock });
    const grantedAt = acquireAll(limiter, clock, 5);
    await clock.advance(1_000);
    expect(grantedAt).toEqual([0, 100, 200, 300, 400]);
  });

  it('after a burst, continues at the sustained rate', async () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketLimiter({ perSecond: 4, burst: 2, clock });
    const grantedAt = acquireAll(limiter, clock, 5);
    await clock.advance(1_000);
    expect(grantedAt).toEqual([0, 0, 250, 500, 750]);
  });

  it('a fractional rate: 0.5 per second is one request every 2 s', async () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketLimiter({ perSecond: 0.5, clock });
    expect(limiter.burst).toBe(1);
    const grantedAt = acquireAll(limiter, clock, 3);
    await clock.advance(10_000);
    expect(grantedAt).toEqual([0, 2_000, 4_000]);
  });

  it('a rate that does not divide 1000 ms stays on schedule', async () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketLimiter({ perSecond: 3, burst: 1, clock });
    const grantedAt = acquireAll(limiter, clock, 4);
    await clock.advance(1_000);
    expect(grantedAt.map((t) => Math.round(t * 1000) / 1000)).toEqual([0, 333.333, 666.667, 1_000]);
  });

  it('the bucket refills up to burst and no further', async () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketLimiter({ perSecond: 10, burst: 5, clock });
    for (let i = 0; i < 5; i++) expect(limiter.tryAcquire()).toBe(true);
    expect(limiter.tokens).toBe(0);
    await clock.advance(250);
    expect(limiter.tokens).toBe(2.5);
    await clock.advance(60_000);
    expect(limiter.tokens).toBe(5);
  });

  it('burst defaults to one second of the rate', () => {
    expect(new TokenBucketLimiter({ perSecond: 20, clock: new FakeClock() }).burst).toBe(20);
    expect(new TokenBucketLimiter({ perSecond: 20, clock: new FakeClock() }).rate).toBe(20);
  });
});

describe('TokenBucketLimiter: the waiting line', () => {
  it('serves waiters first come, first served', async () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketLimiter({ perSecond: 10, burst: 1, clock });
    const order: string[] = [];
    for (const name of ['a', 'b', 'c', 'd']) void limiter.acquire().then(() => order.push(name));
    expect(limiter.waiting).toBe(3);
    await clock.advance(300);
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    expect(limiter.waiting).toBe(0);
  });

  it('tryAcquire takes a free token', () => {
    const limiter = new TokenBucketLimiter({ perSecond: 1, burst: 1, clock: new FakeClock() });
    expect(limiter.tryAcquire()).toBe(true);
    expect(limiter.tryAcquire()).toBe(false);
  });

  it('tryAcquire never jumps the line', async () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketLimiter({ perSecond: 10, burst: 1, clock });
    limiter.tryAcquire();
    let served = false;
    void limiter.acquire().then(() => {
      served = true;
    });
    // A token is due at 100 ms; a caller polling at 100 ms must not take it from the waiter.
    await clock.advance(99);
    expect(limiter.tryAcquire()).toBe(false);
    await clock.advance(1);
    expect(served).toBe(true);
    expect(limiter.tryAcquire()).toBe(false);
  });

  it('a caller arriving while others wait queues behind them', async () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketLimiter({ perSecond: 10, burst: 1, clock });
    const order: string[] = [];
    void limiter.acquire().then(() => order.push('first'));
    void limiter.acquire().then(() => order.push('second'));
    await clock.advance(150);
    void limiter.acquire().then(() => order.push('late'));
    await clock.advance(200);
    expect(order).toEqual(['first', 'second', 'late']);
  });

  it('when the line is served, no sleep is left pending', async () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketLimiter({ perSecond: 10, burst: 1, clock });
    acquireAll(limiter, clock, 3);
    expect(clock.pending).toBe(1);
    await clock.advance(200);
    expect(clock.pending).toBe(0);
  });
});

describe('TokenBucketLimiter: aborting', () => {
  it('an aborted wait rejects at once with the reason', async () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketLimiter({ perSecond: 1, burst: 1, clock });
    limiter.tryAcquire();
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal);
    const reason = new Error('user gave up');
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(limiter.waiting).toBe(0);
  });

  it('aborting the only waiter leaves no sleep behind', async () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketLimiter({ perSecond: 1, burst: 1, clock });
    limiter.tryAcquire();
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal);
    expect(clock.pending).toBe(1);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    await clock.advance(0);
    expect(clock.pending).toBe(0);
  });

  it('aborting a waiter in the middle keeps the others in order and on time', async () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketLimiter({ perSecond: 10, burst: 1, clock });
    limiter.tryAcquire();
    const grantedAt: Record<string, number> = {};
    const controller = new AbortController();
    void limiter.acquire().then(() => (grantedAt.a = clock.now()));
    const b = limiter.acquire(controller.signal);
    void limiter.acquire().then(() => (grantedAt.c = clock.now()));
    controller.abort();
    await expect(b).rejects.toMatchObject({ name: 'AbortError' });
    await clock.advance(1_000);
    expect(grantedAt).toEqual({ a: 100, c: 200 });
  });

  it('an already-aborted signal rejects without taking a token', async () => {
    const limiter = new TokenBucketLimiter({ perSecond: 1, burst: 1, clock: new FakeClock() });
    const reason = new Error('too late');
    await expect(limiter.acquire(AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(limiter.tryAcquire()).toBe(true);
  });

  it('with the system clock, aborting a wait clears its real timer', async () => {
    const limiter = new TokenBucketLimiter({ perSecond: 0.001, burst: 1, clock: systemClock });
    limiter.tryAcquire();
    const before = activeTimers();
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal);
    await new Promise((resolve) => setImmediate(resolve));
    expect(activeTimers()).toBe(before + 1);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(activeTimers()).toBe(before);
  });
});

describe('TokenBucketLimiter: use and options', () => {
  it('paces the attempts of a retry() run as its before hook', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const limiter = new TokenBucketLimiter({ perSecond: 2, burst: 1, clock });
    const startedAt: number[] = [];
    await retry(
      ({ attempt }) => {
        startedAt.push(clock.now());
        if (attempt < 3) throw netError('ECONNRESET');
        return 'done';
      },
      { clock, wait: () => 0, before: ({ signal }) => limiter.acquire(signal) },
    );
    expect(startedAt).toEqual([0, 500, 1_000]);
  });

  it('rejects bad options with a TypeError naming the option and the value', () => {
    expect(() => new TokenBucketLimiter({ perSecond: 0 })).toThrow(
      /TokenBucketLimiter: perSecond must be a finite number greater than 0, got 0/,
    );
    // @ts-expect-error: perSecond is required
    expect(() => new TokenBucketLimiter({})).toThrow(/perSecond must be .*got undefined/);
    expect(() => new TokenBucketLimiter({ perSecond: 5, burst: 0.5 })).toThrow(
      /TokenBucketLimiter: burst must be a finite number, at least 1, got 0\.5/,
    );
    // @ts-expect-error: unknown option
    expect(() => new TokenBucketLimiter({ rps: 5 })).toThrow(
      /unknown option "rps"; the option is named perSecond/,
    );
    const limiter = new TokenBucketLimiter({ perSecond: 1 });
    // @ts-expect-error: not a signal
    expect(() => limiter.acquire('soon')).toThrow(
      /TokenBucketLimiter\.acquire\(signal\) must be an AbortSignal, got "soon"/,
    );
  });
});
