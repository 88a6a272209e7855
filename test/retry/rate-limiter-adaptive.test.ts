import { describe, expect, it } from 'vitest';
import { AdaptiveRateLimiter } from '../../src/retry/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { throttledLimiter } from './helpers.js';

const throttled = throttledLimiter;
const throttledAt100 = () => throttledLimiter();

describe('AdaptiveRateLimiter: before any throttle', () => {
  it('does not limit: rate is Infinity and acquire resolves at once', async () => {
    const clock = new FakeClock();
    const limiter = new AdaptiveRateLimiter({ clock });
    expect(limiter.rate).toBe(Number.POSITIVE_INFINITY);
    await Promise.all(Array.from({ length: 1000 }, () => limiter.acquire()));
    expect(limiter.tryAcquire()).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it('successes alone never start limiting', async () => {
    const clock = new FakeClock();
    const limiter = new AdaptiveRateLimiter({ clock });
    for (let i = 0; i < 1000; i++) {
      limiter.onSuccess();
      await clock.advance(1);
    }
    expect(limiter.rate).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('AdaptiveRateLimiter: throttles', () => {
  it('the first throttle paces at beta × the rate the server accepted: 0.9 × 100 = 90', async () => {
    const { limiter } = await throttledAt100();
    expect(limiter.rate).toBeCloseTo(90, 9);
    expect(limiter.snapshot()).toMatchObject({ phase: 'search', limit: 100, cuts: 1 });
  });

  it('a throttle of a request sent before the last cut does not cut again', async () => {
    const { limiter, clock } = await throttledAt100();
    for (let i = 0; i < 10; i++) limiter.onThrottle(480); // in flight when the cut came
    expect(limiter.rate).toBeCloseTo(90, 9);
    await clock.advance(20);
    limiter.onThrottle(clock.now() - 5); // sent after the cut: it counts
    expect(limiter.snapshot().cuts).toBe(2);
    expect(limiter.rate).toBeLessThan(90);
  });

  it('the options reach the model: beta 0.5 halves the rate the server accepted', async () => {
    const { limiter } = await throttled(0.5);
    expect(limiter.rate).toBeCloseTo(50, 9);
  });
});

describe('AdaptiveRateLimiter: pacing', () => {
  it('the bucket starts empty at the first throttle and paces requests at the new rate', async () => {
    const { limiter, clock } = await throttledAt100(); // t = 500 ms, 90/s
    const grantedAt: number[] = [];
    for (let i = 0; i < 3; i++) void limiter.acquire().then(() => grantedAt.push(clock.now()));
    await clock.advance(100);
    expect(grantedAt.map((t) => Math.round((t - 500) * 1e6) / 1e6)).toEqual([
      11.111111, 22.222222, 33.333333,
    ]);
  });

  it('after a pause the bucket lets out a tenth of a second of the rate at once, no more', async () => {
    const { limiter, clock } = await throttledAt100(); // 90/s: holds 9 tokens
    await clock.advance(5_000); // a Retry-After cooldown: nothing sent, nothing answered
    let granted = 0;
    while (limiter.tryAcquire()) granted++;
    expect(granted).toBe(9);
    // The rest are paced: one every 1/90 s.
    let later = 0;
    for (let i = 0; i < 7; i++) void limiter.acquire().then(() => later++);
    await clock.advance(1000 / 90);
    expect(later).toBe(1);
    await clock.advance((6 * 1000) / 90);
    expect(later).toBe(7);
  });

  it('the burst is at least one request, however low the rate', async () => {
    const { limiter, clock } = await throttledAt100();
    for (let i = 0; i < 60; i++) {
      await clock.advance(1);
      limiter.onThrottle(); // nothing accepted in between: down to minRate, 0.5/s
    }
    await clock.advance(60_000);
    expect(limiter.tryAcquire()).toBe(true);
    expect(limiter.tryAcquire()).toBe(false);
  });

  it('a throttle while a request waits re-plans its wait at the lower rate', async () => {
    const { limiter, clock } = await throttledAt100(); // 90/s: next token at 500 + 11.1 ms
    let grantedAt = 0;
    void limiter.acquire().then(() => {
      grantedAt = clock.now();
    });
    await clock.advance(1);
    limiter.onThrottle(); // nothing measured since: a plain cut to 81/s
    // 0.09 of a token earned in that 1 ms at 90/s; the other 0.91 at 81/s.
    const expected = 1 + (0.91 * 1000) / 81;
    await clock.advance(expected - 1.5);
    expect(grantedAt).toBe(0);
    await clock.advance(1);
    expect(grantedAt - 500).toBeCloseTo(expected, 6);
    expect(clock.pending).toBe(0);
  });

  it('serves waiters first come, first served, and an aborted one leaves the line', async () => {
    const { limiter, clock } = await throttledAt100();
    const order: string[] = [];
    const controller = new AbortController();
    void limiter.acquire().then(() => order.push('a'));
    const b = limiter.acquire(controller.signal);
    void limiter.acquire().then(() => order.push('c'));
    expect(limiter.waiting).toBe(3);
    controller.abort(new Error('gone'));
    await expect(b).rejects.toThrow('gone');
    await clock.advance(1_000);
    expect(order).toEqual(['a', 'c']);
  });

  it('tryAcquire takes a token only when one is free and nobody waits', async () => {
    const { limiter, clock } = await throttledAt100();
    expect(limiter.tryAcquire()).toBe(false);
    await clock.advance(12);
    expect(limiter.tryAcquire()).toBe(true);
    expect(limiter.tryAcquire()).toBe(false);
  });
});

describe('AdaptiveRateLimiter: snapshot and options', () => {
  it('snapshot() is frozen and JSON.stringify(limiter) shows it', async () => {
    const { limiter } = await throttledAt100();
    const snapshot = limiter.snapshot();
    expect(Object.isFrozen(snapshot)).toBe(true);
    expect(snapshot).toEqual({
      rate: 90,
      phase: 'search',
      limit: 100,
      acceptedRate: 0,
      cuts: 1,
      waiting: 0,
    });
    expect(JSON.parse(JSON.stringify(limiter))).toEqual(snapshot);
  });

  it('rejects bad options with a TypeError naming the option and the value', () => {
    expect(() => new AdaptiveRateLimiter({ beta: 1 })).toThrow(
      /AdaptiveRateLimiter: beta must be a number above 0 and below 1, got 1/,
    );
    expect(() => new AdaptiveRateLimiter({ minRate: 0 })).toThrow(
      /AdaptiveRateLimiter: minRate must be a finite number greater than 0, got 0/,
    );
    expect(() => new AdaptiveRateLimiter({ probeAfterMs: -1 })).toThrow(
      /AdaptiveRateLimiter: probeAfterMs must be/,
    );
    // @ts-expect-error: an option of the CUBIC model of dogged 0.1
    expect(() => new AdaptiveRateLimiter({ smoothing: 0.5 })).toThrow(
      /unknown option "smoothing"; the estimate is a plain count over windowMs/,
    );
    // @ts-expect-error: unknown option
    expect(() => new AdaptiveRateLimiter({ perSecond: 10 })).toThrow(
      /unknown option "perSecond"; an adaptive limiter finds its rate/,
    );
  });
});
