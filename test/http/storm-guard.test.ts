import { describe, expect, it } from 'vitest';
import { CircuitOpenError, RetryAfterTooLongError } from '../../src/http/errors.js';
import { OriginGuard, StormControl } from '../../src/http/storm.js';
import { CircuitBreaker } from '../../src/retry/breaker.js';
import { RetryBudget } from '../../src/retry/budget.js';
import { TokenBucketLimiter } from '../../src/retry/rate-limiter.js';
import { AdaptiveRateLimiter } from '../../src/retry/rate-limiter-adaptive.js';
import { FakeClock } from '../../src/testing/index.js';
import { listen } from '../support/channels.js';

function context(clock: FakeClock, slept: number[] = []) {
  return {
    method: 'GET',
    url: 'http://127.0.0.1:1/x',
    attempt: 2,
    signal: undefined,
    maxRetryAfterMs: 10_000,
    sleep: async (ms: number) => {
      slept.push(ms);
      await clock.advance(ms);
    },
  };
}

describe('OriginGuard cooldown', () => {
  it('holds for the Retry-After, counted from now, and publishes it', async () => {
    const clock = new FakeClock({ now: 1000 });
    const seen = listen('dogged:cooldown');
    const guard = new OriginGuard('http://a', { cooldown: true, clock });
    expect(guard.cooldownMs).toBe(0);
    expect(guard.admitNow()).toBe('admitted');
    guard.holdFor(3000);
    expect(guard.cooldownMs).toBe(3000);
    expect(seen).toEqual([{ origin: 'http://a', ms: 3000 }]);
    expect(guard.admitNow()).toBe('wait');
    await clock.advance(2999);
    expect(guard.cooldownMs).toBe(1);
    expect(guard.admitNow()).toBe('wait');
    await clock.advance(1);
    expect(guard.cooldownMs).toBe(0);
    expect(guard.admitNow()).toBe('admitted');
  });

  it('a shorter or equal hold does not shorten it; a longer one extends it', async () => {
    const clock = new FakeClock();
    const guard = new OriginGuard('http://a', { cooldown: true, clock });
    guard.holdFor(1000);
    await clock.advance(100);
    guard.holdFor(900, 100);
    expect(guard.cooldownMs).toBe(900);
    guard.holdFor(500, 100);
    expect(guard.cooldownMs).toBe(900);
    guard.holdFor(901, 100);
    expect(guard.cooldownMs).toBe(901);
  });

  it('an answer to a request sent before the hold began does not extend it', async () => {
    const clock = new FakeClock();
    const guard = new OriginGuard('http://a', { cooldown: true, clock });
    await clock.advance(10);
    guard.holdFor(1000, 5);
    await clock.advance(10);
    guard.holdFor(5000, 10);
    expect(guard.cooldownMs).toBe(990);
    guard.holdFor(5000, 9);
    expect(guard.cooldownMs).toBe(990);
    guard.holdFor(5000, 11);
    expect(guard.cooldownMs).toBe(5000);
  });

  it('with cooldown off, nothing is held', () => {
    const clock = new FakeClock();
    const guard = new OriginGuard('http://a', { cooldown: false, clock });
    guard.holdFor(1000);
    expect(guard.cooldownMs).toBe(0);
    expect(guard.admitNow()).toBe('admitted');
  });

  it('admit sleeps out the hold and publishes the wait', async () => {
    const clock = new FakeClock();
    const waits = listen('dogged:wait');
    const guard = new OriginGuard('http://a', { cooldown: true, clock });
    guard.holdFor(700);
    const slept: number[] = [];
    const request = {};
    await expect(guard.admit({ ...context(clock, slept), request })).resolves.toBeUndefined();
    expect(slept).toEqual([700]);
    expect(waits).toEqual([{ request, origin: 'http://a', reason: 'cooldown', ms: 700 }]);
    // Nothing held: no sleep.
    await guard.admit(context(clock, slept));
    expect(slept).toEqual([700]);
  });

  it('a hold longer than maxRetryAfter fails the request at once', async () => {
    const clock = new FakeClock();
    const guard = new OriginGuard('http://a', { cooldown: true, clock });
    guard.holdFor(10_001);
    const error = (await guard
      .admit(context(clock))
      .catch((e: unknown) => e)) as RetryAfterTooLongError;
    expect(error).toBeInstanceOf(RetryAfterTooLongError);
    expect(error.retryAfterMs).toBe(10_001);
    expect(error.maxRetryAfterMs).toBe(10_000);
    expect(error.method).toBe('GET');
    expect(error.url).toBe('http://127.0.0.1:1/x');
    expect(error.attempts).toBe(2);
    // Exactly maxRetryAfter is slept.
    const exact = new OriginGuard('http://a', { cooldown: true, clock });
    exact.holdFor(10_000);
    const slept: number[] = [];
    await exact.admit(context(clock, slept));
    expect(slept).toEqual([10_000]);
  });
});

describe('OriginGuard limiter and breaker', () => {
  it('admitNow takes a free token, says limited when there is none', () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketLimiter({ perSecond: 1, burst: 1, clock });
    const guard = new OriginGuard('http://a', { limiter, cooldown: true, clock });
    expect(guard.admitNow()).toBe('admitted');
    expect(guard.admitNow()).toBe('limited');
  });

  it('admit waits for a token and publishes how long', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const waits = listen('dogged:wait');
    const limiter = new TokenBucketLimiter({ perSecond: 4, burst: 1, clock });
    const guard = new OriginGuard('http://a', { limiter, cooldown: true, clock });
    await guard.admit(context(clock));
    expect(clock.now()).toBe(0);
    expect(waits).toEqual([]);
    await guard.admit(context(clock));
    expect(clock.now()).toBe(250);
    expect(waits).toEqual([
      { request: undefined, origin: 'http://a', reason: 'rate-limit', ms: 250 },
    ]);
    // Limited: the limiter is not asked twice, the caller waits for the next token.
    await guard.admit(context(clock), true);
    expect(clock.now()).toBe(500);
  });

  it('with a breaker, admitNow always says wait; admit hands out its permit', async () => {
    const clock = new FakeClock();
    const breaker = new CircuitBreaker({ threshold: 1, halfOpenAfterMs: 2000, clock });
    const guard = new OriginGuard('http://a', { breaker, cooldown: true, clock });
    expect(guard.admitNow()).toBe('wait');
    const permit = await guard.admit(context(clock));
    expect(permit?.allowed).toBe(true);
    const cause = new Error('down');
    permit?.failure(cause);
    const error = (await guard.admit(context(clock)).catch((e: unknown) => e)) as CircuitOpenError;
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error.message).toBe(
      'the circuit for http://a is open: failing fast; it lets a request through in 2 s',
    );
    expect(error.cause).toBe(cause);
    expect(error.phase).toBe('none');
    expect(error.attempts).toBe(2);
    expect(error.method).toBe('GET');
  });

  it('an open circuit without a recorded failure has no cause', async () => {
    const clock = new FakeClock();
    const breaker = new CircuitBreaker({ threshold: 1, clock });
    breaker.tryAcquire().allowed && (breaker.tryAcquire() as { failure(): void }).failure();
    const guard = new OriginGuard('http://a', { breaker, cooldown: true, clock });
    const error = (await guard.admit(context(clock)).catch((e: unknown) => e)) as CircuitOpenError;
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(Object.hasOwn(error, 'cause')).toBe(false);
  });

  it('throttled and answered reach an adaptive limiter only', () => {
    const clock = new FakeClock();
    const limiter = new AdaptiveRateLimiter({ clock });
    const guard = new OriginGuard('http://a', { limiter, cooldown: true, clock });
    guard.answered(0);
    expect(limiter.rate).toBe(Number.POSITIVE_INFINITY);
    guard.throttled(0);
    expect(limiter.rate).toBeLessThan(Number.POSITIVE_INFINITY);
    const fixed = new OriginGuard('http://b', {
      limiter: new TokenBucketLimiter({ perSecond: 1, clock }),
      cooldown: true,
      clock,
    });
    expect(() => {
      fixed.throttled(0);
      fixed.answered(0);
    }).not.toThrow();
  });
});

describe('StormControl', () => {
  it('by default: a budget over 1 s, no breaker, an adaptive limiter, cooldown on', () => {
    const clock = new FakeClock();
    const guard = new StormControl({}, clock, 'Session').forOrigin('http://a');
    expect(guard.origin).toBe('http://a');
    expect(guard.budget).toBeInstanceOf(RetryBudget);
    expect(guard.budget?.snapshot().ttlMs).toBe(1000);
    expect(guard.breaker).toBeUndefined();
    expect(guard.limiter).toBeInstanceOf(AdaptiveRateLimiter);
    guard.holdFor(100);
    expect(guard.cooldownMs).toBe(100);
  });

  it('options give one of each per origin; objects are shared', () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ clock });
    const breaker = new CircuitBreaker({ clock });
    const limiter = new TokenBucketLimiter({ perSecond: 5, clock });
    const shared = new StormControl({ budget, breaker, rateLimit: limiter }, clock, 'S');
    const a = shared.forOrigin('http://a');
    const b = shared.forOrigin('http://b');
    expect([a.budget, a.breaker, a.limiter]).toEqual([budget, breaker, limiter]);
    expect(b.budget).toBe(budget);
    const own = new StormControl(
      { budget: { percentCanRetry: 0.5 }, breaker: { threshold: 2 }, rateLimit: { perSecond: 3 } },
      clock,
      'S',
    );
    const c = own.forOrigin('http://c');
    const d = own.forOrigin('http://d');
    expect(c.budget).not.toBe(d.budget);
    expect(c.budget?.snapshot().percentCanRetry).toBe(0.5);
    expect(c.budget?.snapshot().ttlMs).toBe(1000);
    expect(c.breaker).toBeInstanceOf(CircuitBreaker);
    expect(c.breaker?.name).toBe('http://c');
    expect(c.breaker).not.toBe(d.breaker);
    expect(c.limiter).toBeInstanceOf(TokenBucketLimiter);
    expect(c.limiter?.rate).toBe(3);
    const adaptive = new StormControl({ rateLimit: { adaptive: { minRate: 2 } } }, clock, 'S');
    expect(adaptive.forOrigin('http://e').limiter).toBeInstanceOf(AdaptiveRateLimiter);
  });

  it('false turns each part off', () => {
    const clock = new FakeClock();
    const guard = new StormControl(
      { budget: false, breaker: false, rateLimit: false, cooldown: false },
      clock,
      'S',
    ).forOrigin('http://a');
    expect([guard.budget, guard.breaker, guard.limiter]).toEqual([undefined, undefined, undefined]);
    expect(Object.hasOwn(guard, 'budget')).toBe(true);
    guard.holdFor(100);
    expect(guard.cooldownMs).toBe(0);
  });

  it('the same origin gets the same guard; others their own', () => {
    const control = new StormControl({}, new FakeClock(), 'S');
    const a = control.forOrigin('http://a');
    const b = control.forOrigin('http://b');
    expect(control.forOrigin('http://a')).toBe(a);
    expect(control.forOrigin('http://a')).toBe(a);
    expect(control.forOrigin('http://b')).toBe(b);
    expect(a).not.toBe(b);
  });

  it('past 10,000 origins the least recently used is forgotten', () => {
    const control = new StormControl({ budget: false, rateLimit: false }, new FakeClock(), 'S');
    const first = control.forOrigin('http://o0');
    const second = control.forOrigin('http://o1');
    for (let i = 2; i < 10_000; i++) control.forOrigin(`http://o${i}`);
    // o0 used again: o1 is now the least recently used.
    expect(control.forOrigin('http://o0')).toBe(first);
    control.forOrigin('http://o10000');
    expect(control.forOrigin('http://o0')).toBe(first);
    expect(control.forOrigin('http://o1')).not.toBe(second);
  });

  it('publishes the state changes of a breaker once, under the first origin', () => {
    const clock = new FakeClock();
    const seen = listen('dogged:breaker:state');
    const breaker = new CircuitBreaker({ threshold: 1, clock });
    const control = new StormControl({ breaker }, clock, 'S');
    control.forOrigin('http://a');
    control.forOrigin('http://b');
    new StormControl({ breaker }, clock, 'T').forOrigin('http://c');
    const permit = breaker.tryAcquire();
    if (permit.allowed) permit.failure(new Error('x'));
    expect(seen).toEqual([
      { origin: 'http://a', from: 'closed', to: 'open', reason: 'failure-threshold' },
    ]);
  });

  it('refuses bad options at the boundary, naming where', () => {
    const clock = new FakeClock();
    expect(() => new StormControl({ rateLimit: 5 as never }, clock, 'Session')).toThrow(
      "Session: rateLimit must be { perSecond, burst }, 'adaptive', { adaptive: options }, a RateLimiter or false, got 5",
    );
    expect(() => new StormControl({ rateLimit: 'fast' as never }, clock, 'Session')).toThrow(
      'Session: rateLimit must be { perSecond, burst }, \'adaptive\', { adaptive: options }, a RateLimiter or false, got "fast"',
    );
    // null is no choice: the default, adaptive.
    expect(
      new StormControl({ rateLimit: null as never }, clock, 'S').forOrigin('x').limiter,
    ).toBeInstanceOf(AdaptiveRateLimiter);
    expect(() => new StormControl({ cooldown: 'yes' as never }, clock, 'Mount')).toThrow(
      'Mount: cooldown must be a boolean, got "yes"',
    );
    expect(() => new StormControl({ rateLimit: { perSecond: 0 } }, clock, 'S')).toThrow(
      /TokenBucketLimiter: perSecond/,
    );
    expect(
      () =>
        new StormControl({ rateLimit: { acquire: () => Promise.resolve() } as never }, clock, 'S'),
    ).toThrow(/unknown option "acquire"/);
  });
});
