import { type Attempt, execute } from './engine.js';
import { type RetryOptions, resolveOptions } from './options.js';

/**
 * Runs `fn` and retries it per `options` (safe defaults: 4 attempts or 60 s, full-jitter
 * backoff from 200 ms to 20 s, transient errors only). `fn` may be sync or async; it receives the
 * frozen {@link AttemptState} of its attempt.
 *
 * @example
 * const data = await retry(async ({ attempt, signal }) => {
 *   const res = await fetch('http://127.0.0.1:8080/data', { signal });
 *   if (res.status >= 500) throw new TryAgain(`status ${res.status} on attempt ${attempt}`);
 *   return res.json();
 * }, { stop: stop.afterAttempt(3) });
 */
export function retry<T>(fn: Attempt<T>, options?: RetryOptions<T>): Promise<T> {
  let resolved: ReturnType<typeof resolveOptions<T>>;
  try {
    if (typeof fn !== 'function')
      throw new TypeError(`retry(fn): fn must be a function, got ${typeof fn}`);
    resolved = resolveOptions(options, 'retry options');
  } catch (error) {
    return Promise.reject(error);
  }
  return execute(resolved, fn, undefined, resolved.signal);
}
