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

/** Node's timers take at most 2^31 - 1 ms; longer sleeps are chained. */
const MAX_TIMER_MS = 2_147_483_647;

function sleepFor(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  if (!(ms > 0)) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const deadline = performance.now() + ms;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const arm = (): void => {
      const left = deadline - performance.now();
      if (left <= 0) {
        signal?.removeEventListener('abort', onAbort);
        resolve();
        return;
      }
      timer = setTimeout(arm, Math.min(Math.ceil(left), MAX_TIMER_MS));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    arm();
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
