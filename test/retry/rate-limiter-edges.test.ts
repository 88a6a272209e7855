import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Clock } from '../../src/retry/clock.js';
import { AdaptiveRateLimiter, TokenBucketLimiter } from '../../src/retry/index.js';
import { PacedBucket } from '../../src/retry/rate-limiter.js';
import { EPSILON } from '../../src/retry/storm-validate.js';
import { FakeClock } from '../../src/testing/index.js';
import { throttledLimiter } from './helpers.js';

/** Lets pending promise callbacks run (no clock time passes). */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

/** A clock whose time is set by hand and whose sleeps never end (unless aborted). */
class HandClock implements Clock {
  time = 0;
  sleeps = 0;
  now(): number {
    return this.time;
  }
  sleep(_ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps++;
    return new Promise<void>((_resolve, reject) => {
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  }
}

describe('PacedBucket: tokens', () => {
  it('a bucket holding exactly 1 - EPSILON tokens gives one (token counts compare with a tolerance)', () => {
    const bucket = new PacedBucket(new FakeClock(), 1, 5, 1 - EPSILON);
    expect(bucket.tryTake()).toBe(true);
    expect(bucket.tryTake()).toBe(false);
  });

  it('a clock that steps back takes no tokens away', () => {
    const clock = new HandClock();
    clock.time = 1000;
    const bucket = new PacedBucket(clock, 10, 5, 2);
    clock.time = 500;
    expect(bucket.tokens).toBe(2);
    clock.time = 1100;
    expect(bucket.tokens).toBe(3);
  });

  it('tryTake never jumps the line, even when a token has come in meanwhile', async () => {
    const clock = new HandClock();
    const bucket = new PacedBucket(clock, 10, 1, 0);
    let served = false;
    void bucket.acquire(undefined).then(() => {
      served = true;
    });
    clock.time = 1000; // ten tokens' worth, but the sleep of the waiter has not ended
    expect(bucket.tryTake()).toBe(false);
    await settle();
    expect(served).toBe(false);
    expect(bucket.waiting).toBe(1);
  });
});

describe('PacedBucket: setRate', () => {
  it('a new rate with the same capacity re-plans the waiter at the new rate', async () => {
    const clock = new FakeClock();
    const bucket = new PacedBucket(clock, 10, 1, 0);
    let grantedAt = -1;
    void bucket.acquire(undefined).then(() => {
      grantedAt = clock.now();
    });
    await clock.advance(50); // half a token at 10/s
    bucket.setRate(5, 1); // the other half at 5/s: 100 ms more
    await clock.advance(99);
    expect(grantedAt).toBe(-1);
    await clock.advance(1);
    expect(grantedAt).toBe(150);
  });

  it('a new capacity at the same rate caps the tokens held', () => {
    const clock = new FakeClock();
    const bucket = new PacedBucket(clock, 10, 5, 5);
    bucket.setRate(10, 2);
    expect(bucket.capacity).toBe(2);
    expect(bucket.tokens).toBe(2);
  });

  it('the same rate and capacity leave the planned sleep alone', async () => {
    const clock = new FakeClock();
    const bucket = new PacedBucket(clock, 10, 1, 0);
    void bucket.acquire(undefined);
    await clock.advance(10);
    expect(clock.sleeps).toEqual([100]);
    bucket.setRate(10, 1);
    await settle();
    expect(clock.sleeps).toEqual([100]);
  });
});

describe('PacedBucket: waiters that leave', () => {
  it('a waiter leaving from behind the head does not re-plan the head', async () => {
    const clock = new HandClock();
    const bucket = new PacedBucket(clock, 10, 1, 0);
    const controller = new AbortController();
    void bucket.acquire(undefined);
    const second = bucket.acquire(controller.signal);
    await settle();
    expect(clock.sleeps).toBe(1);
    controller.abort(new Error('gone'));
    await expect(second).rejects.toThrow('gone');
    await settle();
    expect(clock.sleeps).toBe(1);
    expect(bucket.waiting).toBe(1);
  });

  it('a served waiter leaves no listener on its signal', async () => {
    const clock = new FakeClock();
    const bucket = new PacedBucket(clock, 10, 1, 0);
    const controller = new AbortController();
    const served = bucket.acquire(controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    await clock.advance(100);
    await expect(served).resolves.toBeUndefined();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('a clock whose sleep fails rejects every waiter with its error, and leaves no listener', async () => {
    const failure = new Error('clock broke');
    const clock: Clock = { now: () => 0, sleep: () => Promise.reject(failure) };
    const bucket = new PacedBucket(clock, 10, 1, 0);
    const controller = new AbortController();
    const first = bucket.acquire(controller.signal);
    const second = bucket.acquire(undefined);
    await expect(first).rejects.toBe(failure);
    await expect(second).rejects.toBe(failure);
    expect(bucket.waiting).toBe(0);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});

describe('TokenBucketLimiter: messages', () => {
  it('names itself in the errors of its options', () => {
    // @ts-expect-error: unknown option
    expect(() => new TokenBucketLimiter({ perSecond: 1, rps: 5 })).toThrow(
      /^TokenBucketLimiter: unknown option "rps"/,
    );
    // @ts-expect-error: not a clock
    expect(() => new TokenBucketLimiter({ perSecond: 1, clock: Date })).toThrow(
      /^TokenBucketLimiter: clock must be an object with now\(\) and sleep/,
    );
  });
});

describe('AdaptiveRateLimiter: options and state before any throttle', () => {
  it('takes no options at all, and rejects options that are not an object', () => {
    expect(new AdaptiveRateLimiter().rate).toBe(Number.POSITIVE_INFINITY);
    // @ts-expect-error: not an options object
    expect(() => new AdaptiveRateLimiter(5)).toThrow(
      /^AdaptiveRateLimiter options must be an options object, got 5/,
    );
    // @ts-expect-error: not an options object
    expect(() => new AdaptiveRateLimiter(null)).toThrow(/^AdaptiveRateLimiter options must be/);
    // @ts-expect-error: not a clock
    expect(() => new AdaptiveRateLimiter({ clock: 5 })).toThrow(
      /^AdaptiveRateLimiter: clock must be an object/,
    );
  });

  it('waiting and snapshot() work before the first throttle', () => {
    const limiter = new AdaptiveRateLimiter({ clock: new FakeClock() });
    expect(limiter.waiting).toBe(0);
    expect(limiter.snapshot()).toMatchObject({ phase: 'unlimited', waiting: 0, cuts: 0 });
  });

  it('checks the signal of acquire() before the first throttle too', () => {
    const limiter = new AdaptiveRateLimiter({ clock: new FakeClock() });
    // @ts-expect-error: not a signal
    expect(() => limiter.acquire('soon')).toThrow(
      /^AdaptiveRateLimiter\.acquire\(signal\) must be an AbortSignal, got "soon"/,
    );
  });
});

describe('AdaptiveRateLimiter: the times given', () => {
  it('a stale throttle is judged by when it was sent, not when it came', async () => {
    const { limiter, clock } = await throttledLimiter();
    await clock.advance(5);
    limiter.onThrottle(499); // sent before the cut at 500
    expect(limiter.snapshot().cuts).toBe(1);
    expect(limiter.rate).toBeCloseTo(90, 9);
  });

  it('the search grows from when the first request after the cut was sent', async () => {
    const { limiter, clock } = await throttledLimiter();
    await clock.advance(100); // t = 600
    limiter.onSuccess(550);
    expect(limiter.rate).toBeCloseTo(90 * 2 ** 0.05, 9);
  });

  it('a success re-plans the waiters at the grown rate', async () => {
    const { limiter, clock } = await throttledLimiter(); // 90/s from t = 500
    const grantedAt: number[] = [];
    for (let i = 0; i < 12; i++) void limiter.acquire().then(() => grantedAt.push(clock.now()));
    await clock.advance(95); // t = 595: 8 served, one every 1000 / 90 ms
    expect(grantedAt).toHaveLength(8);
    limiter.onSuccess(501);
    const rate = limiter.rate; // 90 * 2^0.094
    expect(rate).toBeGreaterThan(95);
    await clock.advance(100);
    const gaps = grantedAt.slice(9).map((t, i) => t - (grantedAt[8 + i] as number));
    for (const gap of gaps) expect(gap).toBeCloseTo(1000 / rate, 6);
  });

  it('a change of the rate under 1% does not re-plan the bucket', async () => {
    const { limiter, clock } = await throttledLimiter(); // 90/s from t = 500
    await clock.advance(1);
    limiter.onSuccess(501); // the search starts growing from t = 501
    const grantedAt: number[] = [];
    for (let i = 0; i < 3; i++) void limiter.acquire().then(() => grantedAt.push(clock.now()));
    await clock.advance(4); // t = 505: 90 * 2^0.004, 0.3% more
    expect(limiter.tryAcquire()).toBe(false);
    await clock.advance(50);
    expect(grantedAt.map((t) => t - 500)).toEqual([
      expect.closeTo(1000 / 90, 9),
      expect.closeTo(2000 / 90, 9),
      expect.closeTo(3000 / 90, 9),
    ]);
  });
});
