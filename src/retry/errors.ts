import type { AttemptState } from './attempt-state.js';
import { brand } from './brand.js';
import { describeOutcome, formatDuration } from './describe.js';

/**
 * Thrown when the stop strategy ends a run whose last attempt still called for a retry.
 *
 * `cause` is what the last attempt threw (undefined when it returned a value that the retry
 * condition rejected, in which case `lastAttempt.outcome.value` holds that value).
 *
 * @example
 * try {
 *   await retry(fetchReport, { stop: stop.afterAttempt(3) });
 * } catch (err) {
 *   if (err instanceof RetryError) console.error(err.attempts, err.cause);
 * }
 */
export class RetryError<T = unknown> extends Error {
  override readonly name = 'RetryError';
  /** Stable code for programs. */
  readonly code = 'ERR_DOGGED_RETRY_EXHAUSTED';
  /** A run that gave up is not retried again by an outer layer. */
  readonly retriable = false;
  /** The state after the last attempt, including its `outcome`. */
  readonly lastAttempt: AttemptState<T>;
  /** How many attempts were made. */
  readonly attempts: number;

  constructor(lastAttempt: AttemptState<T>) {
    const outcome = lastAttempt.outcome;
    const who = lastAttempt.name ? `${JSON.stringify(lastAttempt.name)} ` : '';
    const plural = lastAttempt.attempt === 1 ? 'attempt' : 'attempts';
    const message =
      `retry ${who}gave up after ${lastAttempt.attempt} ${plural} in ` +
      `${formatDuration(lastAttempt.elapsedMs)}: the last attempt ${describeOutcome(outcome)}` +
      (outcome?.ok ? ', which the retry condition rejected' : '');
    super(message, outcome && !outcome.ok ? { cause: outcome.error } : undefined);
    this.lastAttempt = lastAttempt;
    this.attempts = lastAttempt.attempt;
  }
}
brand(RetryError, 'RetryError');

/**
 * Throw it from the attempted function to ask for another attempt whatever the retry condition
 * says. The stop strategy still applies.
 *
 * @example
 * await retry(async () => {
 *   const job = await getJob(id);
 *   if (job.state === 'pending') throw new TryAgain('job still pending');
 *   return job;
 * });
 */
export class TryAgain extends Error {
  override readonly name = 'TryAgain';
  readonly code = 'ERR_DOGGED_TRY_AGAIN';
  readonly retriable = true;

  constructor(message = 'the attempt asked to be tried again', options?: ErrorOptions) {
    super(message, options);
  }
}
brand(TryAgain, 'TryAgain');
