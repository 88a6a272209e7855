import { describe, expect, it, vi } from 'vitest';
import {
  BrokenCircuitError,
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitStateChange,
} from '../../src/retry/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { permit, refusal } from './helpers.js';

function fail(breaker: CircuitBreaker, times: number, error?: unknown): void {
  for (let i = 0; i < times; i++) permit(breaker).failure(error);
}

function succeed(breaker: CircuitBreaker, times: number): void {
  for (let i = 0; i < times; i++) permit(breaker).success();
}

/** A breaker on a fresh fake clock (any `clock` in `options` is replaced). */
function setup(options: CircuitBreakerOptions = {}) {
  const clock = new FakeClock();
  const breaker = new CircuitBreaker({ ...options, clock });
  return { clock, breaker };
}

describe('CircuitBreaker: consecutive mode', () => {
  it('starts closed and grants permits', () => {
    const { breaker } = setup();
    expect(breaker.state).toBe('closed');
    expect(permit(breaker)).toMatchObject({ allowed: true, state: 'closed', isProbe: false });
  });

  it('opens after `threshold` failures in a row (5 by default)', () => {
    const { breaker } = setup();
    fail(breaker, 4);
    expect(breaker.state).toBe('closed');
    fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('a success resets the count of failures in a row', () => {
    const { breaker } = setup({ threshold: 3 });
    fail(breaker, 2);
    succeed(breaker, 1);
    fail(breaker, 2);
    expect(breaker.state).toBe('closed');
    fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('refuses while open, saying when it will half-open', async () => {
    const { breaker, clock } = setup({ threshold: 1, halfOpenAfterMs: 10_000 });
    await clock.advance(1_000);
    fail(breaker, 1);
    await clock.advance(2_500);
    expect(refusal(breaker)).toMatchObject({
      allowed: false,
      state: 'open',
      retryAtMs: 11_000,
      retryAfterMs: 7_500,
    });
  });

  it('a refusal carries the failure that opened the circuit', () => {
    const { breaker } = setup({ threshold: 2 });
    const first = new Error('first');
    const last = new Error('last');
    permit(breaker).failure(first);
    permit(breaker).failure(last);
    expect(refusal(breaker).lastFailure).toBe(last);
  });
});

describe('CircuitBreaker: half-open probes', () => {
  it('half-opens once halfOpenAfterMs has passed and lets one probe through', async () => {
    const { breaker, clock } = setup({ threshold: 1, halfOpenAfterMs: 10_000 });
    fail(breaker, 1);
    await clock.advance(9_999);
    expect(breaker.state).toBe('open');
    await clock.advance(1);
    expect(breaker.state).toBe('half-open');
    expect(permit(breaker)).toMatchObject({ state: 'half-open', isProbe: true });
  });

  it('refuses other requests while the probe is in flight', async () => {
    const { breaker, clock } = setup({ threshold: 1, halfOpenAfterMs: 10_000 });
    fail(breaker, 1);
    await clock.advance(10_000);
    permit(breaker);
    await clock.advance(3_000);
    expect(refusal(breaker)).toMatchObject({
      state: 'half-open',
      retryAtMs: 20_000,
      retryAfterMs: 7_000,
    });
  });

  it('a probe that succeeds closes the circuit', async () => {
    const { breaker, clock } = setup({ threshold: 1 });
    fail(breaker, 1);
    await clock.advance(10_000);
    permit(breaker).success();
    expect(breaker.state).toBe('closed');
    expect(permit(breaker).isProbe).toBe(false);
  });

  it('a probe that fails re-opens the circuit with the delay doubled', async () => {
    const { breaker, clock } = setup({ threshold: 1, halfOpenAfterMs: 10_000 });
    fail(breaker, 1);
    await clock.advance(10_000);
    permit(breaker).failure();
    expect(breaker.state).toBe('open');
    expect(refusal(breaker)).toMatchObject({ retryAtMs: 30_000, retryAfterMs: 20_000 });
  });

  it('the delay grows to its cap: 10, 20, 40, 80, 120, 120 s', async () => {
    const { breaker, clock } = setup({ threshold: 1 });
    fail(breaker, 1);
    const delays: number[] = [];
    for (let round = 0; round < 6; round++) {
      const { retryAfterMs } = refusal(breaker);
      delays.push(retryAfterMs);
      await clock.advance(retryAfterMs);
      permit(breaker).failure();
    }
    expect(delays).toEqual([10_000, 20_000, 40_000, 80_000, 120_000, 120_000]);
  });

  it('closing resets the delay to halfOpenAfterMs', async () => {
    const { breaker, clock } = setup({ threshold: 1 });
    fail(breaker, 1);
    await clock.advance(10_000);
    permit(breaker).failure();
    await clock.advance(20_000);
    permit(breaker).success();
    fail(breaker, 1);
    expect(refusal(breaker).retryAfterMs).toBe(10_000);
  });

  it('halfOpenBackoffFactor 1 keeps the delay fixed', async () => {
    const { breaker, clock } = setup({ threshold: 1, halfOpenBackoffFactor: 1 });
    fail(breaker, 1);
    await clock.advance(10_000);
    permit(breaker).failure();
    expect(refusal(breaker).retryAfterMs).toBe(10_000);
  });

  it('halfOpenProbes lets several probes through and the first success closes', async () => {
    const { breaker, clock } = setup({ threshold: 1, halfOpenProbes: 2 });
    fail(breaker, 1);
    await clock.advance(10_000);
    const a = permit(breaker);
    const b = permit(breaker);
    expect(refusal(breaker).state).toBe('half-open');
    b.success();
    expect(breaker.state).toBe('closed');
    a.failure(); // granted before the change: ignored
    expect(breaker.state).toBe('closed');
  });

  it('with several probes the first failure re-opens', async () => {
    const { breaker, clock } = setup({ threshold: 1, halfOpenProbes: 3 });
    fail(breaker, 1);
    await clock.advance(10_000);
    const probes = [permit(breaker), permit(breaker), permit(breaker)];
    probes[1]?.failure();
    probes[0]?.success();
    expect(breaker.state).toBe('open');
  });

  it('a probe that reports nothing within the delay counts as failed', async () => {
    const { breaker, clock } = setup({ threshold: 1 });
    const changes: CircuitStateChange[] = [];
    breaker.onStateChange((change) => changes.push(change));
    fail(breaker, 1);
    await clock.advance(10_000);
    const lost = permit(breaker);
    await clock.advance(10_000);
    expect(breaker.state).toBe('open');
    expect(changes.at(-1)).toMatchObject({
      from: 'half-open',
      to: 'open',
      reason: 'probe-lost',
      atMs: 20_000,
      retryAtMs: 40_000,
    });
    lost.success(); // too late to count
    expect(breaker.state).toBe('open');
  });

  it('release() frees a probe slot without a verdict', async () => {
    const { breaker, clock } = setup({ threshold: 1 });
    fail(breaker, 1);
    await clock.advance(10_000);
    permit(breaker).release();
    expect(breaker.state).toBe('half-open');
    permit(breaker).success();
    expect(breaker.state).toBe('closed');
  });
});

describe('CircuitBreaker: permits', () => {
  it('a permit reports once; later reports are ignored', () => {
    const { breaker } = setup({ threshold: 2 });
    const p = permit(breaker);
    p.failure();
    p.failure();
    expect(breaker.state).toBe('closed');
    p.success();
    fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('a permit granted before the circuit opened cannot close it', () => {
    const { breaker } = setup({ threshold: 1 });
    const slow = permit(breaker);
    fail(breaker, 1);
    slow.success();
    expect(breaker.state).toBe('open');
  });

  it('a failure granted before a close does not count in the new closed period', async () => {
    const { breaker, clock } = setup({ threshold: 2 });
    const slow = permit(breaker);
    fail(breaker, 2);
    await clock.advance(10_000);
    permit(breaker).success();
    slow.failure();
    fail(breaker, 1);
    expect(breaker.state).toBe('closed');
  });

  it('permits are frozen', () => {
    const { breaker } = setup();
    expect(Object.isFrozen(breaker.tryAcquire())).toBe(true);
  });
});

describe('CircuitBreaker: ratio mode', () => {
  const ratio = { mode: 'ratio', failureRatio: 0.5, minimumRequests: 4, windowMs: 10_000 } as const;

  it('does not open before minimumRequests outcomes are in the window', () => {
    const { breaker } = setup(ratio);
    fail(breaker, 3);
    expect(breaker.state).toBe('closed');
  });

  it('opens when the failure ratio reaches failureRatio', () => {
    const { breaker } = setup(ratio);
    succeed(breaker, 2);
    fail(breaker, 1);
    expect(breaker.state).toBe('closed');
    fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('stays closed while the ratio is below failureRatio', () => {
    const { breaker } = setup({ ...ratio, failureRatio: 0.3 });
    succeed(breaker, 8);
    fail(breaker, 3); // 3 / 11 < 0.3
    expect(breaker.state).toBe('closed');
    fail(breaker, 1); // 4 / 12 ≥ 0.3
    expect(breaker.state).toBe('open');
  });

  it('a ratio of exactly 0.3 counts: 3 failures out of 10', () => {
    const { breaker } = setup({ ...ratio, failureRatio: 0.3, minimumRequests: 10 });
    succeed(breaker, 7);
    fail(breaker, 3);
    expect(breaker.state).toBe('open');
  });

  it('old outcomes slide out of the window', async () => {
    const { breaker, clock } = setup(ratio);
    fail(breaker, 3);
    await clock.advance(10_000);
    fail(breaker, 1);
    expect(breaker.state).toBe('closed');
  });

  it('successes slide out too, so recent failures weigh more', async () => {
    const { breaker, clock } = setup(ratio);
    succeed(breaker, 10);
    await clock.advance(9_000);
    fail(breaker, 4);
    expect(breaker.state).toBe('closed');
    await clock.advance(1_000);
    fail(breaker, 1);
    expect(breaker.state).toBe('open');
  });

  it('closing clears the window', async () => {
    const { breaker, clock } = setup(ratio);
    succeed(breaker, 4);
    fail(breaker, 4);
    expect(breaker.state).toBe('open');
    await clock.advance(10_000);
    permit(breaker).success();
    fail(breaker, 3);
    expect(breaker.state).toBe('closed');
  });

  it('the change names the ratio as its reason', () => {
    const { breaker } = setup(ratio);
    const opened = vi.fn();
    breaker.onOpen(opened);
    fail(breaker, 4);
    expect(opened).toHaveBeenCalledWith(expect.objectContaining({ reason: 'failure-ratio' }));
  });
});

describe('CircuitBreaker: execute()', () => {
  it('returns what fn returns and counts a success', async () => {
    const { breaker } = setup({ threshold: 2 });
    fail(breaker, 1);
    await expect(breaker.execute(() => 42)).resolves.toBe(42);
    fail(breaker, 1);
    expect(breaker.state).toBe('closed');
  });

  it('rethrows what fn throws and counts a failure', async () => {
    const { breaker } = setup({ threshold: 1 });
    const boom = new Error('boom');
    await expect(breaker.execute(() => Promise.reject(boom))).rejects.toBe(boom);
    expect(breaker.state).toBe('open');
  });

  it('when open, throws BrokenCircuitError without calling fn', async () => {
    const { breaker, clock } = setup({ threshold: 1, name: 'inventory' });
    const cause = new Error('503 from inventory');
    permit(breaker).failure(cause);
    await clock.advance(4_000);
    const fn = vi.fn(() => 1);
    const error = await breaker.execute(fn).catch((e: unknown) => e);
    expect(fn).not.toHaveBeenCalled();
    expect(error).toBeInstanceOf(BrokenCircuitError);
    expect(error).toMatchObject({
      code: 'ERR_DOGGED_CIRCUIT_OPEN',
      retriable: false,
      state: 'open',
      retryAtMs: 10_000,
      retryAfterMs: 6_000,
      circuit: 'inventory',
      cause,
    });
    expect((error as Error).message).toBe(
      'circuit "inventory" is open after repeated failures; failing fast. It lets a probe request through in 6 s',
    );
  });

  it('when half-open with its probe in flight, says so', async () => {
    const { breaker, clock } = setup({ threshold: 1 });
    fail(breaker, 1);
    await clock.advance(10_000);
    permit(breaker);
    const error = await breaker.execute(() => 1).catch((e: unknown) => e);
    expect((error as Error).message).toBe(
      'the circuit is half-open and every probe slot is taken; failing fast. A slot frees in 10 s at the latest',
    );
  });

  it('does not count an abort as a failure', async () => {
    const { breaker } = setup({ threshold: 1 });
    const abort = new DOMException('The operation was aborted.', 'AbortError');
    await expect(breaker.execute(() => Promise.reject(abort))).rejects.toBe(abort);
    expect(breaker.state).toBe('closed');
  });

  it('isFailure decides which errors count', async () => {
    class NotFound extends Error {}
    const { breaker } = setup({ threshold: 1, isFailure: (e) => !(e instanceof NotFound) });
    await expect(breaker.execute(() => Promise.reject(new NotFound()))).rejects.toThrow();
    expect(breaker.state).toBe('closed');
    await expect(breaker.execute(() => Promise.reject(new Error('x')))).rejects.toThrow();
    expect(breaker.state).toBe('open');
  });

  it('an aborted probe frees its slot for the next caller', async () => {
    const { breaker, clock } = setup({ threshold: 1 });
    fail(breaker, 1);
    await clock.advance(10_000);
    const abort = new DOMException('aborted', 'AbortError');
    await expect(breaker.execute(() => Promise.reject(abort))).rejects.toBe(abort);
    await expect(breaker.execute(() => 'back')).resolves.toBe('back');
    expect(breaker.state).toBe('closed');
  });

  it('BrokenCircuitError is recognised across copies of the package', () => {
    const error = new BrokenCircuitError({
      allowed: false,
      state: 'open',
      retryAtMs: 5,
      retryAfterMs: 5,
      lastFailure: undefined,
    });
    const foreign = Object.create({ [Symbol.for('dogged.BrokenCircuitError')]: true });
    expect(error).toBeInstanceOf(BrokenCircuitError);
    expect(foreign instanceof BrokenCircuitError).toBe(true);
    expect(error.cause).toBeUndefined();
  });
});

describe('CircuitBreaker: events', () => {
  it('onStateChange sees every change with its reason and time', async () => {
    const { breaker, clock } = setup({ threshold: 1 });
    const changes: CircuitStateChange[] = [];
    breaker.onStateChange((change) => changes.push(change));
    fail(breaker, 1);
    await clock.advance(12_000);
    permit(breaker).failure();
    await clock.advance(20_000);
    permit(breaker).success();
    expect(
      changes.map(({ from, to, reason, atMs, retryAtMs }) => ({
        from,
        to,
        reason,
        atMs,
        retryAtMs,
      })),
    ).toEqual([
      { from: 'closed', to: 'open', reason: 'failure-threshold', atMs: 0, retryAtMs: 10_000 },
      {
        from: 'open',
        to: 'half-open',
        reason: 'half-open-delay-elapsed',
        atMs: 10_000,
        retryAtMs: undefined,
      },
      { from: 'half-open', to: 'open', reason: 'probe-failed', atMs: 12_000, retryAtMs: 32_000 },
      {
        from: 'open',
        to: 'half-open',
        reason: 'half-open-delay-elapsed',
        atMs: 32_000,
        retryAtMs: undefined,
      },
      {
        from: 'half-open',
        to: 'closed',
        reason: 'probe-succeeded',
        atMs: 32_000,
        retryAtMs: undefined,
      },
    ]);
    expect(Object.isFrozen(changes[0])).toBe(true);
  });

  it('onOpen, onHalfOpen and onClose each fire for their own state', async () => {
    const { breaker, clock } = setup({ threshold: 1 });
    const seen: string[] = [];
    breaker.onOpen(() => seen.push('open'));
    breaker.onHalfOpen(() => seen.push('half-open'));
    breaker.onClose(() => seen.push('closed'));
    fail(breaker, 1);
    await clock.advance(10_000);
    permit(breaker).success();
    expect(seen).toEqual(['open', 'half-open', 'closed']);
  });

  it('the open event carries the failure that opened the circuit', () => {
    const { breaker } = setup({ threshold: 1 });
    const opened = vi.fn();
    breaker.onOpen(opened);
    const cause = new Error('down');
    permit(breaker).failure(cause);
    expect(opened).toHaveBeenCalledWith(expect.objectContaining({ lastFailure: cause }));
  });

  it('dispose() stops a listener, and disposing twice is harmless', () => {
    const { breaker } = setup({ threshold: 1 });
    const listener = vi.fn();
    const subscription = breaker.onOpen(listener);
    subscription.dispose();
    subscription.dispose();
    fail(breaker, 1);
    expect(listener).not.toHaveBeenCalled();
  });

  it('a subscription is disposable with Symbol.dispose (for `using`)', () => {
    const { breaker } = setup({ threshold: 1 });
    const listener = vi.fn();
    const subscription = breaker.onStateChange(listener);
    subscription[Symbol.dispose]();
    fail(breaker, 1);
    expect(listener).not.toHaveBeenCalled();
  });

  it('a throwing listener neither stops the others nor corrupts the state', () => {
    const { breaker } = setup({ threshold: 1 });
    const after = vi.fn();
    const oops = new Error('listener bug');
    breaker.onStateChange(() => {
      throw oops;
    });
    breaker.onOpen(after);
    expect(() => fail(breaker, 1)).toThrow(oops);
    expect(after).toHaveBeenCalledOnce();
    expect(breaker.state).toBe('open');
  });

  it('time-driven changes happen when the breaker is next asked, and no timer is ever set', async () => {
    const { breaker, clock } = setup({ threshold: 1 });
    const halfOpened = vi.fn();
    breaker.onHalfOpen(halfOpened);
    fail(breaker, 1);
    expect(clock.pending).toBe(0);
    await clock.advance(60_000);
    expect(halfOpened).not.toHaveBeenCalled();
    expect(breaker.state).toBe('half-open');
    expect(halfOpened).toHaveBeenCalledWith(expect.objectContaining({ atMs: 10_000 }));
    expect(clock.pending).toBe(0);
  });
});

describe('CircuitBreaker: toJSON and fromJSON', () => {
  it('an open breaker records the time left before it half-opens', async () => {
    const { breaker, clock } = setup({ threshold: 1 });
    fail(breaker, 1);
    await clock.advance(4_000);
    expect(breaker.toJSON()).toEqual({
      version: 1,
      mode: 'consecutive',
      state: 'open',
      halfOpenAfterMs: 10_000,
      halfOpenInMs: 6_000,
      consecutiveFailures: 1,
    });
  });

  it('restores an open breaker through JSON.stringify, on a new clock', async () => {
    const { breaker, clock } = setup({ threshold: 1 });
    fail(breaker, 1);
    await clock.advance(10_000);
    permit(breaker).failure(); // delay now 20 s
    await clock.advance(5_000);
    const saved = JSON.parse(JSON.stringify(breaker));
    const later = new FakeClock({ now: 1_000_000 });
    const restored = CircuitBreaker.fromJSON(saved, { threshold: 1, clock: later });
    expect(restored.state).toBe('open');
    expect(refusal(restored)).toMatchObject({ retryAtMs: 1_015_000, retryAfterMs: 15_000 });
    await later.advance(15_000);
    permit(restored).failure();
    expect(refusal(restored).retryAfterMs).toBe(40_000);
  });

  it('restores the count of failures in a row', () => {
    const { breaker } = setup({ threshold: 3 });
    fail(breaker, 2);
    const restored = CircuitBreaker.fromJSON(breaker.toJSON(), {
      threshold: 3,
      clock: new FakeClock(),
    });
    fail(restored, 1);
    expect(restored.state).toBe('open');
  });

  it('restores half-open with no probe in flight', async () => {
    const { breaker, clock } = setup({ threshold: 1 });
    fail(breaker, 1);
    await clock.advance(10_000);
    permit(breaker);
    const restored = CircuitBreaker.fromJSON(breaker.toJSON(), { clock: new FakeClock() });
    expect(restored.state).toBe('half-open');
    expect(permit(restored).isProbe).toBe(true);
  });

  it('clamps a restored delay to the new options', () => {
    const restored = CircuitBreaker.fromJSON(
      {
        version: 1,
        mode: 'consecutive',
        state: 'open',
        halfOpenAfterMs: 600_000,
        halfOpenInMs: 600_000,
        consecutiveFailures: 0,
      },
      { maxHalfOpenAfterMs: 60_000, clock: new FakeClock() },
    );
    expect(refusal(restored).retryAfterMs).toBe(60_000);
  });

  it('a ratio breaker restores its state but not its window', async () => {
    const options = { mode: 'ratio', minimumRequests: 2 } as const;
    const { breaker } = setup(options);
    fail(breaker, 2);
    const restored = CircuitBreaker.fromJSON(breaker.toJSON(), {
      ...options,
      clock: new FakeClock(),
    });
    expect(restored.toJSON()).toMatchObject({ mode: 'ratio', state: 'open', halfOpenInMs: 10_000 });
  });

  it('rejects malformed JSON loudly', () => {
    const good = setup().breaker.toJSON();
    // @ts-expect-error: not a breaker's JSON
    expect(() => CircuitBreaker.fromJSON(null)).toThrow(/CircuitBreaker\.fromJSON\(json\)/);
    expect(() => CircuitBreaker.fromJSON({ ...good, version: 2 } as never)).toThrow(
      /version must be 1, got 2/,
    );
    expect(() => CircuitBreaker.fromJSON({ ...good, state: 'broken' } as never)).toThrow(
      /state must be 'closed', 'open' or 'half-open', got "broken"/,
    );
    expect(() => CircuitBreaker.fromJSON({ ...good, halfOpenInMs: -1 })).toThrow(
      /halfOpenInMs must be a non-negative number of milliseconds, got -1/,
    );
    expect(() => CircuitBreaker.fromJSON({ ...good, consecutiveFailures: 1.5 })).toThrow(
      /consecutiveFailures must be a non-negative integer, got 1\.5/,
    );
  });
});

describe('CircuitBreaker: options', () => {
  it('rejects bad options with a TypeError naming the option and the value', () => {
    expect(() => new CircuitBreaker({ threshold: 0 })).toThrow(
      /CircuitBreaker: threshold must be a positive integer, got 0/,
    );
    // @ts-expect-error: not a mode
    expect(() => new CircuitBreaker({ mode: 'sampling' })).toThrow(
      /CircuitBreaker: mode must be 'consecutive' or 'ratio', got "sampling"/,
    );
    expect(() => new CircuitBreaker({ mode: 'ratio', failureRatio: 0 })).toThrow(
      /failureRatio must be a number above 0 and at most 1, got 0/,
    );
    expect(() => new CircuitBreaker({ mode: 'ratio', windowMs: 0 })).toThrow(
      /windowMs must be a finite number greater than 0, got 0/,
    );
    expect(() => new CircuitBreaker({ halfOpenProbes: 1.5 })).toThrow(
      /halfOpenProbes must be a positive integer, got 1\.5/,
    );
    expect(() => new CircuitBreaker({ halfOpenBackoffFactor: 0.5 })).toThrow(
      /halfOpenBackoffFactor must be a finite number, at least 1, got 0\.5/,
    );
    expect(() => new CircuitBreaker({ halfOpenAfterMs: 5_000, maxHalfOpenAfterMs: 1_000 })).toThrow(
      /maxHalfOpenAfterMs \(1000\) must not be less than halfOpenAfterMs \(5000\)/,
    );
  });

  it('names the mode an option belongs to when it is given in the other', () => {
    // @ts-expect-error: a ratio option in consecutive mode
    expect(() => new CircuitBreaker({ failureRatio: 0.5 })).toThrow(
      /unknown option "failureRatio"; failureRatio needs mode: 'ratio'/,
    );
    // @ts-expect-error: a consecutive option in ratio mode
    expect(() => new CircuitBreaker({ mode: 'ratio', threshold: 5 })).toThrow(
      /unknown option "threshold"; threshold is for mode: 'consecutive'/,
    );
  });

  it('a long halfOpenAfterMs raises the default cap with it', async () => {
    const { breaker, clock } = setup({ threshold: 1, halfOpenAfterMs: 300_000 });
    fail(breaker, 1);
    await clock.advance(300_000);
    permit(breaker).failure();
    expect(refusal(breaker).retryAfterMs).toBe(300_000);
  });
});
