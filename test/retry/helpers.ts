import type { AttemptState, Outcome } from '../../src/retry/attempt-state.js';
import type { RandomSource } from '../../src/retry/random.js';

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
