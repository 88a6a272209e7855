import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { StormControl } from '../../src/http/storm.js';
import { TokenBucketLimiter } from '../../src/retry/index.js';
import { FakeClock } from '../../src/testing/index.js';

const context = (sleep: (ms: number) => Promise<void>) => ({
  method: 'GET',
  url: 'http://a.test/',
  attempt: 1,
  signal: undefined,
  maxRetryAfterMs: 60_000,
  sleep,
});

describe('StormControl: edges', () => {
  it('no hold is checked before the first one, whatever the clock reads', () => {
    const clock = new FakeClock({ now: -5000 });
    const storm = new StormControl({ rateLimit: false, budget: false }, clock, 'Session');
    const guard = storm.forOrigin('http://a.test');
    expect(guard.admitNow()).toBe('admitted');
    expect(guard.cooldownMs).toBe(5000); // what a hold would read: the flag keeps it out
  });

  it('dogged:wait reports the time a request waited for the rate limiter', async () => {
    const clock = new FakeClock({ now: 1000 });
    const limiter = new TokenBucketLimiter({ perSecond: 10, burst: 1, clock });
    const storm = new StormControl({ rateLimit: limiter, budget: false }, clock, 'Session');
    const guard = storm.forOrigin('http://a.test');
    const waits: unknown[] = [];
    const onWait = (message: unknown): void => {
      waits.push((message as { ms: number; reason: string }).ms);
    };
    subscribe('dogged:wait', onWait);
    try {
      expect(guard.admitNow()).toBe('admitted');
      const admitted = guard.admit(context((ms) => clock.sleep(ms)));
      await clock.advance(100);
      await admitted;
    } finally {
      unsubscribe('dogged:wait', onWait);
    }
    expect(waits).toEqual([100]);
  });

  it('an object with tryAcquire() but no acquire() is not a rate limiter', () => {
    const clock = new FakeClock();
    expect(
      () =>
        new StormControl(
          { rateLimit: { tryAcquire: () => true } as never, budget: false },
          clock,
          'Session',
        ),
    ).toThrow(TypeError);
  });

  it('the adaptive options of rateLimit reach the limiter', () => {
    const clock = new FakeClock();
    expect(
      () => new StormControl({ rateLimit: { adaptive: { beta: 5 } }, budget: false }, clock, 'S'),
    ).toThrow(/beta must be a number above 0 and below 1, got 5/);
  });
});
