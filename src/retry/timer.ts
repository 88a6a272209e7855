/**
 * Timers that keep their word for any delay. Node's `setTimeout` and `setInterval` take at most
 * 2^31 - 1 ms (about 24.8 days): a longer delay, or `Infinity`, prints a `TimeoutOverflowWarning`
 * and fires after 1 ms. Every timer of dogged whose delay can come from a user or a server goes
 * through this module.
 */

/** The longest delay Node's timers take, in milliseconds (2^31 - 1: about 24.8 days). */
export const MAX_TIMER_MS = 2_147_483_647;

/** A timer of {@link setLongTimeout}. */
export interface LongTimer {
  /** Cancels it; safe to call more than once, or after it fired. */
  clear(): void;
  /** Lets the process exit while it is pending (as `Timeout.unref()`). Returns the timer. */
  unref(): LongTimer;
}

/**
 * A delay that Node's `setTimeout` / `setInterval` take as it is: `Infinity` and anything past
 * {@link MAX_TIMER_MS} become {@link MAX_TIMER_MS}; NaN and negative delays become 0.
 * @example setInterval(report, clampTimerMs(options.progressIntervalMs))
 */
export function clampTimerMs(ms: number): number {
  if (!(ms > 0)) return 0;
  return Math.min(ms, MAX_TIMER_MS);
}

/**
 * Calls `callback` once, `ms` milliseconds from now, however long that is: a delay past
 * {@link MAX_TIMER_MS} is chained (one timer after another, each checking the time left);
 * `Infinity` never fires (but, like any timer, keeps the process alive unless unref'd); NaN or a negative delay fires at the next turn of
 * the timers, like `setTimeout(fn, 0)`.
 * @example const timer = setLongTimeout(() => controller.abort(), timeouts.total); timer.clear();
 */
export function setLongTimeout(callback: () => void, ms: number): LongTimer {
  let handle: ReturnType<typeof setTimeout> | undefined;
  let refed = true;
  let cleared = false;
  const timer: LongTimer = {
    clear() {
      // Stryker disable next-line BooleanLiteral: a guard only; clearTimeout below already cancels the pending timer (or link of a chain), so the callback cannot run after clear()
      cleared = true;
      clearTimeout(handle);
      handle = undefined;
    },
    unref() {
      refed = false;
      handle?.unref();
      return timer;
    },
  };
  const due = performance.now() + (Number.isNaN(ms) ? 0 : Math.max(ms, 0));
  const arm = (): void => {
    const left = due - performance.now();
    if (left > MAX_TIMER_MS) {
      handle = setTimeout(arm, MAX_TIMER_MS);
      if (!refed) handle.unref();
      return;
    }
    handle = setTimeout(
      () => {
        handle = undefined;
        // Stryker disable next-line ConditionalExpression: a guard only; clear() clears this timer with clearTimeout, so it never fires once cleared
        if (!cleared) callback();
      },
      clampTimerMs(Math.ceil(left)),
    );
    if (!refed) handle.unref();
  };
  arm();
  return timer;
}

/**
 * Resolves after `ms` milliseconds (any length, as {@link setLongTimeout}), or as soon as
 * `signal` aborts: a pause that a stop cuts short, never an error.
 * @example await pause(2000, stopSignal); if (stopSignal.aborted) return;
 */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = (): void => {
      timer.clear();
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setLongTimeout(done, ms);
    // Stryker disable next-line ObjectLiteral,BooleanLiteral: done() removes this listener itself, and a signal aborts at most once
    signal?.addEventListener('abort', done, { once: true });
  });
}
