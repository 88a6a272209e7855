import type { RandomSource } from './random.js';

/** What one attempt produced: a value, or what it threw. */
export type Outcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: unknown };

/**
 * A frozen snapshot of a retry run, handed to the attempted function, to every strategy and to
 * every hook. The engine makes a new one at each step instead of mutating it, so a hook that
 * keeps a reference sees exactly what was true when it was called.
 */
export interface AttemptState<T = unknown> {
  /** The attempt this state belongs to, from 1. */
  readonly attempt: number;
  /** Milliseconds since the first attempt started (by the run's clock). */
  readonly elapsedMs: number;
  /** Total milliseconds slept between attempts so far. */
  readonly idleMs: number;
  /** The delay slept just before this attempt (0 before the first). */
  readonly lastDelayMs: number;
  /** The delay before the next attempt, once the wait strategy has computed it; else undefined. */
  readonly upcomingDelayMs: number | undefined;
  /** The attempt's result, once it has settled; undefined while it runs. */
  readonly outcome: Outcome<T> | undefined;
  /** The run's abort signal, if any: pass it on to the I/O the attempt starts. */
  readonly signal: AbortSignal | undefined;
  /** The run's name, for logs. */
  readonly name: string | undefined;
  /** The run's random source: jittered waits draw from it. */
  readonly random: RandomSource;
}

/** Shorthand for the error of a failed attempt, or undefined. */
export function errorOf(state: AttemptState<unknown>): unknown {
  const outcome = state.outcome;
  return outcome && !outcome.ok ? outcome.error : undefined;
}
