import type { AttemptState, Outcome } from './attempt-state.js';
import { RetryError, TryAgain } from './errors.js';
import type { ResolvedOptions } from './options.js';
import type { MutableRun, StatisticsRecorder } from './statistics.js';
import { isThenable } from './thenable.js';
import { checkDelay } from './wait.js';

/** The attempted function: receives the frozen state of its attempt. */
export type Attempt<T> = (state: AttemptState<T>) => T | PromiseLike<T>;

/** Settles with the attempt, or rejects with the abort reason the moment `signal` aborts. */
function raceAbort<V>(pending: PromiseLike<V>, signal: AbortSignal): Promise<V> {
  return new Promise<V>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    // Aborted during the synchronous part of the attempt: no 'abort' event will come any more.
    if (signal.aborted) reject(signal.reason);
    else {
      // Stryker disable next-line ObjectLiteral,BooleanLiteral: an AbortSignal fires 'abort' at most once
      signal.addEventListener('abort', onAbort, { once: true });
    }
    pending.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function state<T>(
  attempt: number,
  elapsedMs: number,
  idleMs: number,
  lastDelayMs: number,
  upcomingDelayMs: number | undefined,
  outcome: Outcome<T> | undefined,
  options: ResolvedOptions<T>,
  signal: AbortSignal | undefined,
): AttemptState<T> {
  return Object.freeze({
    attempt,
    elapsedMs,
    idleMs,
    lastDelayMs,
    upcomingDelayMs,
    outcome,
    signal,
    name: options.name,
    random: options.random,
  });
}

function finish(
  run: MutableRun,
  stats: StatisticsRecorder,
  now: number,
  outcome: MutableRun['outcome'],
): void {
  run.endedAt = now;
  run.outcome = outcome;
  if (outcome === 'succeeded') stats.successes++;
  else if (outcome === 'aborted') stats.aborts++;
  else {
    stats.failures++;
    if (outcome === 'gave-up') stats.giveUps++;
  }
}

/**
 * The one place where "attempt, sleep or stop" is decided; `retry()`, `Retrying`, `wrap()` and
 * the decorator all run through it.
 *
 * Order per attempt: `before` → the attempt → retry condition → `after` → wait → stop →
 * `beforeSleep` → sleep. An abort wins over everything: the run rejects with the signal's reason.
 *
 * Success is the common case and is kept cheap: one clock read, one frozen state, and no
 * condition call when the condition can only retry failures.
 */
export async function execute<T>(
  options: ResolvedOptions<T>,
  fn: Attempt<T>,
  stats: StatisticsRecorder | undefined,
  signal: AbortSignal | undefined,
): Promise<T> {
  if (signal?.aborted) throw signal.reason;
  const { clock } = options;
  const startedAt = clock.now();
  const run = stats?.begin(startedAt);
  const { skipResults } = options;
  let attempt = 1;
  let idleMs = 0;
  let lastDelayMs = 0;
  try {
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      const before =
        // Stryker disable next-line ConditionalExpression: `false` for the whole test is equivalent: options.firstState is the state the else branch builds for attempt 1 with options.signal, precomputed (the `true` of the signal test is killed)
        attempt === 1 && signal === options.signal
          ? options.firstState
          : state<T>(
              attempt,
              attempt === 1 ? 0 : clock.now() - startedAt,
              idleMs,
              lastDelayMs,
              undefined,
              undefined,
              options,
              signal,
            );
      if (options.before) {
        const r = options.before(before);
        // Stryker disable next-line ConditionalExpression: `true` is equivalent: awaiting a hook's plain return value only costs a tick (`false`, not waiting for an async hook, is killed)
        if (isThenable(r)) await r;
      }
      // Stryker disable next-line LogicalOperator: run is stats?.begin(): both are defined or neither is
      if (stats && run) {
        run.attempts = attempt;
        stats.attempts++;
      }

      let outcome: Outcome<T>;
      try {
        let value = fn(before);
        if (isThenable<T>(value)) value = await (signal ? raceAbort(value, signal) : value);
        if (skipResults) {
          // Stryker disable next-line LogicalOperator: run is stats?.begin(): both are defined or neither is
          if (stats && run) finish(run, stats, clock.now(), 'succeeded');
          return value as T;
        }
        outcome = { ok: true, value: value as T };
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        outcome = { ok: false, error };
      }

      const settled = state<T>(
        attempt,
        clock.now() - startedAt,
        idleMs,
        lastDelayMs,
        undefined,
        outcome,
        options,
        signal,
      );
      let again: boolean;
      if (!outcome.ok && outcome.error instanceof TryAgain) {
        again = true;
      } else {
        const r = options.retry(settled);
        again = isThenable<boolean>(r) ? await r : r;
      }
      if (!again) {
        // Stryker disable next-line LogicalOperator: run is stats?.begin(): both are defined or neither is
        if (stats && run) finish(run, stats, clock.now(), outcome.ok ? 'succeeded' : 'failed');
        if (outcome.ok) return outcome.value;
        throw outcome.error;
      }

      if (options.after) {
        const r = options.after(settled);
        // Stryker disable next-line ConditionalExpression: `true` is equivalent: awaiting a hook's plain return value only costs a tick (`false`, not waiting for an async hook, is killed)
        if (isThenable(r)) await r;
      }
      const delay = checkDelay(options.wait(settled), 'the wait strategy');
      const planned = state<T>(
        attempt,
        settled.elapsedMs,
        idleMs,
        lastDelayMs,
        delay,
        outcome,
        options,
        signal,
      );
      if (options.stop(planned)) {
        if (options.onGiveUp) {
          const value = await options.onGiveUp(planned);
          // Stryker disable next-line LogicalOperator: run is stats?.begin(): both are defined or neither is
          if (stats && run) {
            finish(run, stats, clock.now(), 'succeeded');
            stats.giveUps++;
          }
          return value;
        }
        // Stryker disable next-line LogicalOperator: run is stats?.begin(): both are defined or neither is
        if (stats && run) finish(run, stats, clock.now(), 'gave-up');
        if (options.reraise && !outcome.ok) throw outcome.error;
        throw new RetryError<T>(planned);
      }
      if (options.beforeSleep) {
        const r = options.beforeSleep(planned);
        // Stryker disable next-line ConditionalExpression: `true` is equivalent: awaiting a hook's plain return value only costs a tick (`false`, not waiting for an async hook, is killed)
        if (isThenable(r)) await r;
      }
      await clock.sleep(delay, signal);
      idleMs += delay;
      lastDelayMs = delay;
      // Stryker disable next-line LogicalOperator: run is stats?.begin(): both are defined or neither is
      if (stats && run) {
        run.idleMs = idleMs;
        stats.idleMs += delay;
        stats.retries++;
      }
      attempt++;
    }
  } catch (error) {
    // Stryker disable next-line OptionalChaining: run is defined whenever stats is (run = stats?.begin())
    if (stats && run?.outcome === 'running')
      finish(run, stats, clock.now(), signal?.aborted ? 'aborted' : 'failed');
    throw error;
  }
}
