import { describe, expect, it } from 'vitest';
import { OriginGuard, StormControl } from '../../src/http/storm.js';
import type { Clock } from '../../src/retry/clock.js';
import { TokenBucketLimiter } from '../../src/retry/rate-limiter.js';
import { AdaptiveRateLimiter } from '../../src/retry/rate-limiter-adaptive.js';
import { FakeClock } from '../../src/testing/index.js';
import { listen } from '../support/channels.js';

describe('OriginGuard edges', () => {
  it('admitNow reads no clock before the first hold, and does after it', async () => {
    const clock = new FakeClock();
    let reads = 0;
    const counted: Clock = {
      now: () => {
        reads++;
        return clock.now();
      },
      sleep: (ms, signal) => clock.sleep(ms, signal),
    };
    const guard = new OriginGuard('http://a', { cooldown: true, clock: counted });
    expect([guard.admitNow(), guard.admitNow()]).toEqual(['admitted', 'admitted']);
    expect(reads).toBe(0);
    guard.holdFor(10);
    reads = 0;
    expect(guard.admitNow()).toBe('wait');
    expect(reads).toBe(1);
  });

  it('the published rate-limit wait is the time waited, whatever the clock reads', async () => {
    const clock = new FakeClock({ now: 5000, autoAdvance: true });
    const waits = listen('dogged:wait');
    const limiter = new TokenBucketLimiter({ perSecond: 4, burst: 1, clock });
    const guard = new OriginGuard('http://a', { limiter, cooldown: true, clock });
    const context = {
      method: 'GET',
      url: 'http://a/x',
      attempt: 1,
      signal: undefined,
      maxRetryAfterMs: 10_000,
      sleep: (ms: number) => clock.sleep(ms),
    };
    await guard.admit(context);
    await guard.admit(context);
    expect(clock.now()).toBe(5250);
    expect(waits).toEqual([
      { request: undefined, origin: 'http://a', reason: 'rate-limit', ms: 250 },
    ]);
  });
});

describe('StormControl edges', () => {
  it('an object with tryAcquire but no acquire is no RateLimiter: read as bucket options, refused', () => {
    expect(
      () =>
        new StormControl({ rateLimit: { tryAcquire: () => true } as never }, new FakeClock(), 'S'),
    ).toThrow(/unknown option "tryAcquire"/);
  });

  it('{ adaptive: options } gives the limiter those options and the clock', () => {
    const clock = new FakeClock({ now: 5_000_000 });
    const guard = new StormControl(
      { rateLimit: { adaptive: { minRate: 7 } } },
      clock,
      'S',
    ).forOrigin('http://e');
    const limiter = guard.limiter as AdaptiveRateLimiter;
    expect(limiter).toBeInstanceOf(AdaptiveRateLimiter);
    guard.throttled(clock.now());
    // Nothing accepted yet: the cut goes down to minRate, 7 (the default minimum would give 3.6).
    expect(limiter.rate).toBe(7);
  });
});
