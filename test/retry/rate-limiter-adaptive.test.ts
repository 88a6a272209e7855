import { describe, expect, it } from 'vitest';
import { AdaptiveRateLimiter } from '../../src/retry/index.js';
import { FakeClock } from '../../src/testing/index.js';

const K_100 = Math.cbrt((100 * (1 - 0.7)) / 0.4); // ∛75 ≈ 4.217 s: back to 100/s after a throttle

/** Records `count` successful responses, one every `everyMs`, starting `everyMs` from now. */
async function succeedEvery(
  limiter: AdaptiveRateLimiter,
  clock: FakeClock,
  everyMs: number,
  count: number,
): Promise<void> {
  for (let i = 0; i < count; i++) {
    await clock.advance(everyMs);
    limiter.onSuccess();
  }
}

/**
 * A limiter that measured exactly 100 responses/s (smoothing 1 keeps only the last half
 * second) and then got throttled at t = 500 ms: W_max = 100, rate 70.
 */
async function throttledAt100(): Promise<{ limiter: AdaptiveRateLimiter; clock: FakeClock }> {
  const clock = new FakeClock();
  const limiter = new AdaptiveRateLimiter({ smoothing: 1, clock });
  await succeedEvery(limiter, clock, 10, 49);
  await clock.advance(10);
  limiter.onThrottle(); // the 50th response of the first half second
  return { limiter, clock };
}

/**
 * Keeps responses flowing at 100/s (so the 2 × measured cap does not bind) until `seconds`
 * after the throttle at 500 ms, records a success exactly then and returns the rate.
 */
async function rateAt(
  limiter: AdaptiveRateLimiter,
  clock: FakeClock,
  seconds: number,
): Promise<number> {
  const target = 500 + seconds * 1000;
  const steps = Math.ceil((target - clock.now()) / 10) - 1;
  await succeedEvery(limiter, clock, 10, steps);
  await clock.advance(target - clock.now());
  limiter.onSuccess();
  return limiter.rate;
}

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
    await succeedEvery(limiter, clock, 10, 200);
    expect(limiter.rate).toBe(Number.POSITIVE_INFINITY);
  });

  it('an aborted signal still rejects with its reason', async () => {
    const limiter = new AdaptiveRateLimiter({ clock: new FakeClock() });
    const reason = new Error('cancelled');
    await expect(limiter.acquire(AbortSignal.abort(reason))).rejects.toBe(reason);
  });
});

describe('AdaptiveRateLimiter: measuring the response rate', () => {
  it('counts responses in half-second buckets, smoothed by 0.8', async () => {
    const clock = new FakeClock();
    const limiter = new AdaptiveRateLimiter({ clock });
    await succeedEvery(limiter, clock, 100, 4);
    expect(limiter.measuredRate).toBe(0); // the first half second is not over
    await succeedEvery(limiter, clock, 100, 1); // t = 500: 5 responses in 0.5 s = 10/s
    expect(limiter.measuredRate).toBe(8); // 0.8 · 10 + 0.2 · 0
    await succeedEvery(limiter, clock, 50, 10); // t = 1000: 10 in 0.5 s = 20/s
    expect(limiter.measuredRate).toBe(17.6); // 0.8 · 20 + 0.2 · 8
  });

  it('a quiet spell spreads the count over every half second it lasted', async () => {
    const clock = new FakeClock();
    const limiter = new AdaptiveRateLimiter({ smoothing: 1, clock });
    await clock.advance(2_000);
    limiter.onSuccess(); // 1 response over 2 s
    expect(limiter.measuredRate).toBe(0.5);
  });
});

describe('AdaptiveRateLimiter: throttles (multiplicative decrease)', () => {
  it('the first throttle cuts the rate to beta × the measured rate: 0.7 × 100 = 70', async () => {
    const { limiter } = await throttledAt100();
    expect(limiter.measuredRate).toBe(100);
    expect(limiter.rate).toBe(70);
    expect(limiter.snapshot()).toMatchObject({ lastMaxRate: 100, throttles: 1 });
  });

  it('each further throttle multiplies the rate by 0.7 again: 70, 49, 34.3, 24.01', async () => {
    const { limiter } = await throttledAt100();
    const rates = [limiter.rate];
    for (let i = 0; i < 3; i++) {
      limiter.onThrottle();
      rates.push(limiter.rate);
    }
    expect(rates.map((r) => Math.round(r * 1e9) / 1e9)).toEqual([70, 49, 34.3, 24.01]);
  });

  it('after N throttles the rate is 100 · 0.7^N', async () => {
    const { limiter } = await throttledAt100();
    for (let i = 1; i < 10; i++) limiter.onThrottle();
    expect(limiter.rate).toBeCloseTo(100 * 0.7 ** 10, 9);
  });

  it('beta sets the cut: 0.5 halves the rate', async () => {
    const clock = new FakeClock();
    const limiter = new AdaptiveRateLimiter({ beta: 0.5, smoothing: 1, clock });
    await succeedEvery(limiter, clock, 10, 50);
    limiter.onThrottle();
    expect(limiter.rate).toBe(50);
  });

  it('the rate never falls below minRate', async () => {
    const { limiter } = await throttledAt100();
    for (let i = 0; i < 50; i++) limiter.onThrottle();
    expect(limiter.rate).toBe(0.5);
  });

  it('a throttle as the very first response counts one request in the first 100 ms: 0.7 × 10 = 7', () => {
    const limiter = new AdaptiveRateLimiter({ minRate: 2, clock: new FakeClock() });
    limiter.onThrottle();
    expect(limiter.rate).toBeCloseTo(7, 9);
  });

  it('the rate never goes below minRate', () => {
    const limiter = new AdaptiveRateLimiter({ minRate: 20, clock: new FakeClock() });
    limiter.onThrottle();
    expect(limiter.rate).toBe(20);
  });

  it('a throttle before the first half-second has ended cuts from the rate so far', async () => {
    const clock = new FakeClock();
    const limiter = new AdaptiveRateLimiter({ clock });
    for (let i = 0; i < 19; i++) limiter.onSuccess();
    await clock.advance(200);
    limiter.onThrottle(); // 20 responses in 200 ms: 100/s measured, cut to 70/s
    expect(limiter.rate).toBeCloseTo(70, 9);
  });

  it('a throttle of a request sent before the last cut does not cut again', async () => {
    const clock = new FakeClock();
    const limiter = new AdaptiveRateLimiter({ clock });
    for (let i = 0; i < 19; i++) limiter.onSuccess();
    await clock.advance(200);
    limiter.onThrottle(100);
    const afterFirst = limiter.rate;
    for (let i = 0; i < 10; i++) limiter.onThrottle(150); // in flight when the first cut came
    expect(limiter.rate).toBe(afterFirst);
    await clock.advance(50);
    limiter.onThrottle(220); // sent after the cut: it counts
    expect(limiter.rate).toBeLessThan(afterFirst);
  });
});

describe('AdaptiveRateLimiter: recovery along the CUBIC curve', () => {
  it('grows back as 0.4 · (t − K)³ + W_max, reaching W_max at t = K', async () => {
    const { limiter, clock } = await throttledAt100();
    expect(await rateAt(limiter, clock, 1)).toBeCloseTo(86.680764, 6);
    expect(await rateAt(limiter, clock, 2)).toBeCloseTo(95.640336, 6);
    expect(await rateAt(limiter, clock, 3)).toBeCloseTo(99.278716, 6);
    expect(await rateAt(limiter, clock, 4)).toBeCloseTo(99.995903, 6);
    expect(await rateAt(limiter, clock, 5)).toBeCloseTo(100.191899, 6);
    expect(await rateAt(limiter, clock, 6)).toBeCloseTo(102.266703, 6);
    expect(await rateAt(limiter, clock, 8)).toBeCloseTo(121.652735, 6);
  });

  it('a success right after the throttle keeps the rate at beta × W_max', async () => {
    const { limiter } = await throttledAt100();
    limiter.onSuccess();
    expect(limiter.rate).toBeCloseTo(70, 9);
  });

  it('K is ∛(W_max · (1 − beta) / C): the curve is flat at W_max then', async () => {
    const { limiter, clock } = await throttledAt100();
    expect(await rateAt(limiter, clock, K_100)).toBeCloseTo(100, 9);
  });

  it('growth is capped at twice the measured rate', async () => {
    const { limiter, clock } = await throttledAt100();
    expect(0.4 * (11 - K_100) ** 3 + 100).toBeGreaterThan(200);
    expect(await rateAt(limiter, clock, 11)).toBe(200);
  });

  it('a slow trickle of responses holds the rate down', async () => {
    const { limiter, clock } = await throttledAt100();
    await clock.advance(2_000);
    limiter.onSuccess(); // 1 response in 2 s: measured 0.5/s, cap 1/s
    expect(limiter.rate).toBe(1);
  });

  it('scaleConstant sets the speed of recovery', async () => {
    const clock = new FakeClock();
    const limiter = new AdaptiveRateLimiter({ scaleConstant: 3, smoothing: 1, clock });
    await succeedEvery(limiter, clock, 10, 50);
    limiter.onThrottle(); // at 500 ms: W_max 100, K = ∛(100 · 0.3 / 3) = ∛10
    expect(await rateAt(limiter, clock, 1)).toBeCloseTo(3 * (1 - Math.cbrt(10)) ** 3 + 100, 9);
  });

  it('the next throttle cuts from the lower of the measured rate and the current rate', async () => {
    const { limiter, clock } = await throttledAt100();
    await succeedEvery(limiter, clock, 10, 100); // t = 1.5 s, rate ≈ 86.7
    const before = limiter.rate;
    limiter.onThrottle();
    expect(limiter.snapshot().lastMaxRate).toBe(before);
    expect(limiter.rate).toBeCloseTo(before * 0.7, 9);
  });
});

describe('AdaptiveRateLimiter: pacing', () => {
  it('the bucket starts empty at the first throttle and paces requests at the new rate', async () => {
    const { limiter, clock } = await throttledAt100(); // t = 500 ms, 70/s
    const grantedAt: number[] = [];
    for (let i = 0; i < 3; i++) void limiter.acquire().then(() => grantedAt.push(clock.now()));
    await clock.advance(100);
    expect(grantedAt.map((t) => Math.round((t - 500) * 1e6) / 1e6)).toEqual([
      14.285714, 28.571429, 42.857143,
    ]);
  });

  it('after a pause the bucket lets out a tenth of a second of the rate at once, no more', async () => {
    const { limiter, clock } = await throttledAt100(); // 70/s: holds 7 tokens
    await clock.advance(5_000); // a Retry-After cooldown: nothing sent, nothing answered
    let granted = 0;
    while (limiter.tryAcquire()) granted++;
    expect(granted).toBe(7);
    // The rest are paced: one every 1/70 s.
    let later = 0;
    for (let i = 0; i < 7; i++) void limiter.acquire().then(() => later++);
    await clock.advance(1000 / 70);
    expect(later).toBe(1);
    await clock.advance((6 * 1000) / 70);
    expect(later).toBe(7);
  });

  it('the burst is at least one request, however low the rate', async () => {
    const { limiter, clock } = await throttledAt100();
    for (let i = 0; i < 50; i++) limiter.onThrottle(); // down to minRate, 0.5/s
    await clock.advance(60_000);
    expect(limiter.tryAcquire()).toBe(true);
    expect(limiter.tryAcquire()).toBe(false);
  });

  it('a throttle while a request waits re-plans its wait at the lower rate', async () => {
    const { limiter, clock } = await throttledAt100(); // 70/s: next token at 500 + 14.29 ms
    let grantedAt = 0;
    void limiter.acquire().then(() => {
      grantedAt = clock.now();
    });
    limiter.onThrottle(); // 49/s: next token at 500 + 20.41 ms
    await clock.advance(15);
    expect(grantedAt).toBe(0);
    await clock.advance(6);
    expect(grantedAt - 500).toBeCloseTo(1000 / 49, 6);
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
    await clock.advance(15);
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
      rate: 70,
      measuredRate: 100,
      lastMaxRate: 100,
      throttles: 1,
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
    expect(() => new AdaptiveRateLimiter({ scaleConstant: -1 })).toThrow(
      /scaleConstant must be a finite number greater than 0, got -1/,
    );
    expect(() => new AdaptiveRateLimiter({ smoothing: 0 })).toThrow(
      /smoothing must be a number above 0 and at most 1, got 0/,
    );
    // @ts-expect-error: unknown option
    expect(() => new AdaptiveRateLimiter({ perSecond: 10 })).toThrow(
      /unknown option "perSecond"; an adaptive limiter finds its rate/,
    );
  });
});
