import { getEventListeners } from 'node:events';
import { describe, expect, it, vi } from 'vitest';
import type { Clock } from '../../src/retry/clock.js';
import { RetryError, Retrying, retry, retryIf, stop, wait } from '../../src/retry/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { netError } from './helpers.js';

const reset = () => netError('ECONNRESET');

describe('the engine: what an attempt returns', () => {
  it('a synchronous null is a value like any other', async () => {
    await expect(retry(() => null)).resolves.toBeNull();
  });

  it('a function with a then() method is a thenable, as for await', async () => {
    const thenable = Object.assign(() => 0, {
      // biome-ignore lint/suspicious/noThenProperty: a thenable is what this test is about
      then: (resolve: (value: number) => void) => resolve(42),
    });
    const seen: unknown[] = [];
    const condition = retryIf.result((value: unknown) => {
      seen.push(value);
      return false;
    });
    await expect(
      retry(() => thenable as unknown as PromiseLike<number>, { retry: condition }),
    ).resolves.toBe(42);
    expect(seen).toEqual([42]); // the condition sees what it settled to, not the function
  });

  it('with a signal, a synchronous object without then() is returned as it is', async () => {
    const value = { a: 1 };
    await expect(retry(() => value, { signal: new AbortController().signal })).resolves.toBe(value);
  });

  it('with a signal, an async attempt that succeeds or fails leaves no listener on the signal', async () => {
    const controller = new AbortController();
    await expect(retry(async () => 'ok', { signal: controller.signal })).resolves.toBe('ok');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    let n = 0;
    const clock = new FakeClock({ autoAdvance: true });
    const value = await retry(
      async () => {
        if (++n === 1) throw reset();
        return n;
      },
      { signal: controller.signal, clock },
    );
    expect(value).toBe(2);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('a condition that ignores results is not asked about a success', async () => {
    const predicate = vi.fn(() => true);
    const condition = retryIf.result(predicate).and(retryIf.anyError);
    await expect(retry(() => 'ok', { retry: condition })).resolves.toBe('ok');
    expect(predicate).not.toHaveBeenCalled();
  });
});

describe('the engine: signals', () => {
  it('a run refused by an already-aborted signal is not counted in the statistics', async () => {
    const reason = new Error('gone');
    const r = new Retrying({ signal: AbortSignal.abort(reason) });
    await expect(r.run(() => 1)).rejects.toBe(reason);
    expect(r.statistics).toMatchObject({ calls: 0, aborts: 0 });
  });

  it('an abort that comes just as a sleep ends stops the run before the next attempt', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    const fn = vi.fn(() => {
      throw reset();
    });
    const run = retry(fn, {
      clock: new FakeClock({ autoAdvance: true }),
      signal: controller.signal,
      beforeSleep: () => queueMicrotask(() => controller.abort(reason)),
    });
    await expect(run).rejects.toBe(reason);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('an abort during the synchronous part of an attempt rejects at once, though its promise never settles', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    const run = retry(
      () => {
        controller.abort(reason);
        return new Promise<never>(() => {});
      },
      { signal: controller.signal },
    );
    await expect(run).rejects.toBe(reason);
  });

  it('an abort during an attempt rejects with its reason: the condition, after and stop are not asked', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    const after = vi.fn();
    const condition = vi.fn(() => true);
    const run = retry(
      () => {
        queueMicrotask(() => controller.abort(reason));
        return new Promise<never>(() => {});
      },
      { signal: controller.signal, retry: condition, after, stop: stop.afterAttempt(1) },
    );
    await expect(run).rejects.toBe(reason);
    expect(condition).not.toHaveBeenCalled();
    expect(after).not.toHaveBeenCalled();
  });

  it('the first attempt of a run with its own signal sees that signal, at elapsed 0', async () => {
    let t = 0;
    const ticking: Clock = { now: () => ++t, sleep: () => Promise.resolve() };
    const r = new Retrying({ clock: ticking });
    const controller = new AbortController();
    const seen = vi.fn();
    await r.run(
      (state) => {
        seen(state.signal, state.elapsedMs);
        return 1;
      },
      { signal: controller.signal },
    );
    expect(seen).toHaveBeenCalledWith(controller.signal, 0);
  });
});

describe('the engine: async hooks', () => {
  it('waits for an async after and an async beforeSleep before going on', async () => {
    const log: string[] = [];
    const tick = async (name: string): Promise<void> => {
      for (let i = 0; i < 3; i++) await Promise.resolve();
      log.push(name);
    };
    let n = 0;
    await retry(
      () => {
        log.push(`attempt ${++n}`);
        if (n === 1) throw reset();
        return n;
      },
      {
        clock: new FakeClock({ autoAdvance: true }),
        wait: wait.fixed(5),
        after: () => tick('after'),
        beforeSleep: () => tick('beforeSleep'),
      },
    );
    expect(log).toEqual(['attempt 1', 'after', 'beforeSleep', 'attempt 2']);
  });

  it('a give-up on a failed attempt is a RetryError, not the abort path', async () => {
    const run = retry(() => Promise.reject(reset()), {
      clock: new FakeClock({ autoAdvance: true }),
      stop: stop.afterAttempt(1),
    });
    await expect(run).rejects.toBeInstanceOf(RetryError);
  });
});
