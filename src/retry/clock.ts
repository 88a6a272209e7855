import { setLongTimeout } from './timer.js';

/**
 * Time, injected. The engine never calls `setTimeout` or `Date.now` directly: it asks its clock,
 * so tests (and users' tests) can swap in `FakeClock` from `dogged/testing` and never wait.
 */
export interface Clock {
  /** Monotonic milliseconds; only differences matter. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds. When `signal` aborts, rejects at once with
   * `signal.reason` and leaves no timer behind.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

function sleepFor(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (!(ms > 0)) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      timer.clear();
      // Stryker disable next-line OptionalChaining: onAbort is only added to a signal, so signal is defined here
      reject(signal?.reason);
    };
    // Chained past Node's 2^31 - 1 ms limit; Infinity sleeps until the signal aborts.
    const timer = setLongTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    // Stryker disable next-line ObjectLiteral,BooleanLiteral: a signal aborts at most once, and the timer's callback removes this listener
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The real clock: `performance.now()` and abortable timers. */
export const systemClock: Clock = Object.freeze({
  now: () => performance.now(),
  sleep: sleepFor,
});

export function isClock(value: unknown): value is Clock {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as Clock).now === 'function' &&
    typeof (value as Clock).sleep === 'function'
  );
}
