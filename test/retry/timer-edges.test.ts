import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isClock, systemClock } from '../../src/retry/clock.js';
import { clampTimerMs, MAX_TIMER_MS, pause, setLongTimeout } from '../../src/retry/timer.js';

/**
 * The long timers and the system clock on vitest's fake timers (and a fake `performance.now()`):
 * the delays handed to `setTimeout`, which timers are left pending, ref'd or unref'd, and which
 * listeners are left on a signal, all without waiting.
 */

/** Lets pending promise callbacks run (no timer turns). */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

/** Whether `promise` has settled, after the pending promise callbacks ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await settle();
  return done;
}

type Handle = ReturnType<typeof setTimeout>;

/** The handles and delays of every `setTimeout` call made since `spyTimeouts()`. */
function spyTimeouts(): { delays: () => unknown[]; handles: () => Handle[] } {
  const spy = vi.spyOn(globalThis, 'setTimeout');
  return {
    delays: () => spy.mock.calls.map((call) => call[1]),
    handles: () => spy.mock.results.map((result) => result.value as Handle),
  };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe('clampTimerMs', () => {
  it('turns -0 into 0, as it does any other negative delay', () => {
    expect(Object.is(clampTimerMs(-0), 0)).toBe(true);
  });
});

describe('setLongTimeout: the timers it arms', () => {
  it('rounds a fractional delay up, so it never fires early', () => {
    const timeouts = spyTimeouts();
    const fired = vi.fn();
    setLongTimeout(fired, 10.2);
    expect(timeouts.delays()).toEqual([11]);
    vi.advanceTimersByTime(10);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it('a delay of exactly MAX_TIMER_MS takes one timer, not a chain', () => {
    const timeouts = spyTimeouts();
    const fired = vi.fn();
    setLongTimeout(fired, MAX_TIMER_MS);
    expect(timeouts.delays()).toEqual([MAX_TIMER_MS]);
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fired).toHaveBeenCalledTimes(1);
    expect(timeouts.delays()).toEqual([MAX_TIMER_MS]);
  });

  it('a longer delay chains timers of MAX_TIMER_MS, then one for the rest', () => {
    const timeouts = spyTimeouts();
    const fired = vi.fn();
    setLongTimeout(fired, 2 * MAX_TIMER_MS + 5);
    expect(timeouts.delays()).toEqual([MAX_TIMER_MS]);
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(timeouts.delays()).toEqual([MAX_TIMER_MS, MAX_TIMER_MS]);
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(timeouts.delays()).toEqual([MAX_TIMER_MS, MAX_TIMER_MS, 5]);
    vi.advanceTimersByTime(4);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('clear() leaves no timer pending, before or during a chain, and is safe to repeat', () => {
    const short = vi.fn();
    setLongTimeout(short, 50).clear();
    expect(vi.getTimerCount()).toBe(0);
    const long = vi.fn();
    const timer = setLongTimeout(long, 3 * MAX_TIMER_MS);
    vi.advanceTimersByTime(MAX_TIMER_MS + 1);
    expect(vi.getTimerCount()).toBe(1);
    timer.clear();
    expect(vi.getTimerCount()).toBe(0);
    timer.clear();
    vi.advanceTimersByTime(3 * MAX_TIMER_MS);
    expect(short).not.toHaveBeenCalled();
    expect(long).not.toHaveBeenCalled();
  });

  it('clear() after it fired changes nothing', () => {
    const fired = vi.fn();
    const timer = setLongTimeout(fired, 5);
    vi.advanceTimersByTime(5);
    timer.clear();
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it('unref() after it fired, or after clear(), is a no-op', () => {
    const fired = setLongTimeout(() => {}, 5);
    vi.advanceTimersByTime(5);
    expect(fired.unref()).toBe(fired);
    const cleared = setLongTimeout(() => {}, 5);
    cleared.clear();
    expect(cleared.unref()).toBe(cleared);
  });
});

describe('setLongTimeout: ref and unref', () => {
  it('its timers keep the process alive by default, every link of a chain', () => {
    const timeouts = spyTimeouts();
    setLongTimeout(() => {}, MAX_TIMER_MS + 10);
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(timeouts.handles().map((handle) => handle.hasRef())).toEqual([true, true]);
  });

  it('unref() unrefs the pending timer and every later link, and returns the timer', () => {
    const timeouts = spyTimeouts();
    const timer = setLongTimeout(() => {}, 2 * MAX_TIMER_MS + 10);
    expect(timer.unref()).toBe(timer);
    vi.advanceTimersByTime(2 * MAX_TIMER_MS);
    expect(timeouts.delays()).toEqual([MAX_TIMER_MS, MAX_TIMER_MS, 10]);
    expect(timeouts.handles().map((handle) => handle.hasRef())).toEqual([false, false, false]);
  });

  it('unref() on a short timer unrefs it', () => {
    const timeouts = spyTimeouts();
    setLongTimeout(() => {}, 100).unref();
    expect(timeouts.handles().map((handle) => handle.hasRef())).toEqual([false]);
  });
});

describe('pause', () => {
  it('waits its delay when no signal is given', async () => {
    const paused = pause(100);
    vi.advanceTimersByTime(99);
    expect(await settled(paused)).toBe(false);
    vi.advanceTimersByTime(1);
    expect(await settled(paused)).toBe(true);
  });

  it('resolves at once on an aborted signal, arming no timer', async () => {
    const signal = AbortSignal.abort();
    expect(await settled(pause(10_000, signal))).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });

  it('an abort clears its timer', async () => {
    const controller = new AbortController();
    const paused = pause(10_000, controller.signal);
    expect(vi.getTimerCount()).toBe(1);
    controller.abort();
    expect(await settled(paused)).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('leaves no listener on a signal that outlives it', async () => {
    const controller = new AbortController();
    const paused = pause(100, controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    vi.advanceTimersByTime(100);
    expect(await settled(paused)).toBe(true);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});

describe('systemClock', () => {
  it('now() is performance.now()', () => {
    vi.advanceTimersByTime(1234);
    expect(systemClock.now()).toBe(performance.now());
  });

  it('sleep() of 0, NaN or a negative delay resolves without a timer', async () => {
    for (const ms of [0, -0, Number.NaN, -1]) {
      expect(await settled(systemClock.sleep(ms))).toBe(true);
    }
    expect(vi.getTimerCount()).toBe(0);
  });

  it('sleep() waits its delay, with or without a signal', async () => {
    const sleeping = systemClock.sleep(50);
    const controller = new AbortController();
    const withSignal = systemClock.sleep(50, controller.signal);
    vi.advanceTimersByTime(49);
    expect(await settled(sleeping)).toBe(false);
    expect(await settled(withSignal)).toBe(false);
    vi.advanceTimersByTime(1);
    expect(await settled(sleeping)).toBe(true);
    expect(await settled(withSignal)).toBe(true);
  });

  it('sleep() leaves no listener on a signal that outlives it', async () => {
    const controller = new AbortController();
    const sleeping = systemClock.sleep(20, controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    vi.advanceTimersByTime(20);
    await expect(sleeping).resolves.toBeUndefined();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('an abort rejects with its reason and clears the timer', async () => {
    const controller = new AbortController();
    const sleeping = systemClock.sleep(1_000, controller.signal);
    const reason = new Error('stop');
    controller.abort(reason);
    await expect(sleeping).rejects.toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('isClock', () => {
  it('wants an object: a function with now() and sleep() is not a clock', () => {
    const fn = Object.assign(() => 0, { now: () => 0, sleep: () => Promise.resolve() });
    expect(isClock(fn)).toBe(false);
  });
});
