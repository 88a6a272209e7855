import { expect } from 'vitest';
import type { AttemptState, Outcome } from '../../src/retry/attempt-state.js';
import {
  AdaptiveRate,
  AdaptiveRateLimiter,
  type CircuitBreaker,
  type CircuitPermit,
  type CircuitRefusal,
} from '../../src/retry/index.js';
import type { RandomSource } from '../../src/retry/random.js';
import { FakeClock } from '../../src/testing/index.js';

/** A hand-made attempt state for testing strategies in isolation. */
export function attemptState(
  attempt: number,
  extra: Partial<{
    elapsedMs: number;
    idleMs: number;
    lastDelayMs: number;
    upcomingDelayMs: number;
    outcome: Outcome<never>;
    random: RandomSource;
    signal: AbortSignal;
  }> = {},
): AttemptState<never> {
  // `never` fits every AttemptState<T>, so conditions typed for a result type accept it.
  return Object.freeze({
    attempt,
    elapsedMs: extra.elapsedMs ?? 0,
    idleMs: extra.idleMs ?? 0,
    lastDelayMs: extra.lastDelayMs ?? 0,
    upcomingDelayMs: extra.upcomingDelayMs,
    outcome: extra.outcome,
    signal: extra.signal,
    name: undefined,
    random: extra.random ?? (() => 0.5),
  });
}

/** A random source that returns the given values in turn (and repeats the last). */
export function scripted(...values: number[]): RandomSource {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)] as number;
}

export function failed(error: unknown): Outcome<never> {
  return { ok: false, error };
}

export function succeeded(value: unknown): Outcome<never> {
  return { ok: true, value: value as never };
}

/** An error shaped like Node's network errors. */
export function netError(code: string, message = `connect ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

/** A breaker's permit, or a thrown error naming its state. */
export function permit(breaker: CircuitBreaker): CircuitPermit {
  const answer = breaker.tryAcquire();
  if (!answer.allowed) throw new Error(`expected a permit, got a refusal (${answer.state})`);
  return answer;
}

/** A breaker's refusal, or a thrown error naming its state. */
export function refusal(breaker: CircuitBreaker): CircuitRefusal {
  const answer = breaker.tryAcquire();
  if (answer.allowed) throw new Error(`expected a refusal, got a permit (${answer.state})`);
  return answer;
}

/** Answers accepted every `everyMs` from `from` (exclusive) to `to` (inclusive), each sent 1 ms earlier. */
export function acceptEvery(pace: AdaptiveRate, from: number, to: number, everyMs = 10): void {
  for (let t = from + everyMs; t <= to; t += everyMs) pace.accepted(t, t - 1);
}

/**
 * Answers accepted every 10 ms from 10 to 480 ms (48), then a throttle at 500 ms: with the
 * throttled request, 49 requests the server took in 490 ms, a limit of 100/s.
 */
export function throttledAt100(): AdaptiveRate {
  const pace = new AdaptiveRate();
  acceptEvery(pace, 0, 480);
  expect(pace.throttled(500, 499)).toBe(true);
  return pace;
}

/**
 * A limiter that saw an answer every 10 ms from 10 to 480 ms, each sent 1 ms before, and a
 * throttle at t = 500 ms: 49 requests the server took in 490 ms, a limit of 100/s, a pace of 90/s.
 */
export async function throttledLimiter(
  beta?: number,
): Promise<{ limiter: AdaptiveRateLimiter; clock: FakeClock }> {
  const clock = new FakeClock();
  const limiter = new AdaptiveRateLimiter({ clock, ...(beta !== undefined && { beta }) });
  for (let i = 0; i < 48; i++) {
    await clock.advance(10);
    limiter.onSuccess(clock.now() - 1);
  }
  await clock.advance(20);
  limiter.onThrottle(clock.now() - 1);
  return { limiter, clock };
}
