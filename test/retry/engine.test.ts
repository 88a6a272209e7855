import { describe, expect, it, vi } from 'vitest';
import {
  type AttemptState,
  defaults,
  RetryError,
  Retrying,
  retry,
  retryIf,
  seededRandom,
  stop,
  TryAgain,
  wait,
} from '../../src/retry/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { netError } from './helpers.js';

/** A function that fails `failures` times with `error`, then returns `value`. */
function flaky<T>(failures: number, error: () => unknown, value: T) {
  let calls = 0;
  const fn = vi.fn(async () => {
    calls++;
    if (calls <= failures) throw error();
    return value;
  });
  return fn;
}

const reset = () => netError('ECONNRESET', 'read ECONNRESET');

describe('retry()', () => {
  it('returns at once when the first attempt succeeds', async () => {
    const clock = new FakeClock();
    await expect(retry(() => 42, { clock })).resolves.toBe(42);
    expect(clock.sleeps).toEqual([]);
  });

  it('retries transient errors with the given waits and returns the eventual value', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const fn = flaky(2, reset, 'ok');
    await expect(retry(fn, { clock, wait: wait.fixed(100) })).resolves.toBe('ok');
    expect(fn).toHaveBeenCalledTimes(3);
    expect(clock.sleeps).toEqual([100, 100]);
  });

  it('sleeps only as the clock advances', async () => {
    const clock = new FakeClock();
    const fn = flaky(1, reset, 'ok');
    const run = retry(fn, { clock, wait: wait.fixed(1000) });
    await clock.advance(999);
    expect(fn).toHaveBeenCalledTimes(1);
    await clock.advance(1);
    await expect(run).resolves.toBe('ok');
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it('handles a synchronous throw like a rejection', async () => {
    let calls = 0;
    const value = await retry(
      () => {
        calls++;
        if (calls < 3) throw reset();
        return 'sync';
      },
      { clock: new FakeClock({ autoAdvance: true }) },
    );
    expect(value).toBe('sync');
    expect(calls).toBe(3);
  });

  it('passes the frozen attempt state to the function', async () => {
    const seen: AttemptState<unknown>[] = [];
    await retry(
      (s) => {
        seen.push(s);
        if (s.attempt < 3) throw new TryAgain();
        return 'done';
      },
      { clock: new FakeClock({ autoAdvance: true }), wait: wait.fixed(10), name: 'job' },
    );
    expect(seen.map((s) => [s.attempt, s.elapsedMs, s.idleMs, s.lastDelayMs])).toEqual([
      [1, 0, 0, 0],
      [2, 10, 10, 10],
      [3, 20, 20, 10],
    ]);
    expect(Object.isFrozen(seen[0])).toBe(true);
    expect(seen[0]?.outcome).toBeUndefined();
    expect(seen[0]?.name).toBe('job');
  });

  it('applies the safe defaults: 4 attempts, full jitter from 200 ms capped at 20 s', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const fn = flaky(10, reset, 'never');
    const error = await retry(fn, { clock, random: () => 0.5 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryError);
    expect(fn).toHaveBeenCalledTimes(4);
    expect(clock.sleeps).toEqual([100, 200, 400]);
    expect(defaults.stop.description).toBe('stop.afterAttempt(4) | stop.beforeDelay(60000)');
    expect(defaults.wait.description).toBe(
      'wait.fullJitter({ multiplier: 200, base: 2, min: 0, max: 20000 })',
    );
  });

  it('by default never retries programming errors, plain errors or non-Error throws', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    for (const thrown of [
      new TypeError('x is not a function'),
      new RangeError('r'),
      new Error('plain'),
      'a string',
      undefined,
    ]) {
      const fn = vi.fn(() => {
        throw thrown;
      });
      await expect(retry(fn, { clock })).rejects.toBe(thrown);
      expect(fn).toHaveBeenCalledTimes(1);
    }
    expect(clock.sleeps).toEqual([]);
  });

  it('the default 60 s limit never sleeps past the deadline', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const fn = vi.fn(async () => {
      await clock.sleep(25_000);
      throw reset();
    });
    await expect(retry(fn, { clock, random: () => 1 })).rejects.toBeInstanceOf(RetryError);
    // attempt 1 ends at 25 s (+200 ms sleep), attempt 2 ends at 50.2 s; 50.2 + 400 < 60 s, so a
    // third attempt starts at 50.6 s and ends at 75.6 s; the sleep after it would cross 60 s.
    expect(fn).toHaveBeenCalledTimes(3);
  });

  it('gives up with RetryError carrying the last attempt and its cause', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const last = netError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:9');
    let n = 0;
    const error = (await retry(
      () => {
        n++;
        throw n === 3 ? last : reset();
      },
      { clock, stop: stop.afterAttempt(3), wait: wait.fixed(5), name: 'fetchReport' },
    ).catch((e: unknown) => e)) as RetryError;
    expect(error).toBeInstanceOf(RetryError);
    expect(error.attempts).toBe(3);
    expect(error.cause).toBe(last);
    expect(error.lastAttempt.attempt).toBe(3);
    expect(error.lastAttempt.outcome).toEqual({ ok: false, error: last });
    expect(error.code).toBe('ERR_DOGGED_RETRY_EXHAUSTED');
    expect(error.message).toBe(
      'retry "fetchReport" gave up after 3 attempts in 10 ms: the last attempt threw Error ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9',
    );
  });

  it('reraise throws the last error itself instead of RetryError', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const errors = [reset(), reset(), reset()];
    let i = 0;
    const run = retry(
      () => {
        throw errors[i++];
      },
      { clock, stop: stop.afterAttempt(3), reraise: true },
    );
    await expect(run).rejects.toBe(errors[2]);
  });

  it('reports non-Error throws sensibly when giving up', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const error = (await retry(
      () => {
        throw 'socket hang up';
      },
      { clock, retry: retryIf.anyError, stop: stop.afterAttempt(2), wait: wait.none() },
    ).catch((e: unknown) => e)) as RetryError;
    expect(error).toBeInstanceOf(RetryError);
    expect(error.cause).toBe('socket hang up');
    expect(error.message).toMatch(/threw a string "socket hang up" \(a non-Error value\)$/);
    const undef = (await retry(
      () => {
        throw undefined;
      },
      { clock, retry: retryIf.anyError, stop: stop.afterAttempt(2), wait: wait.none() },
    ).catch((e: unknown) => e)) as RetryError;
    expect(undef.message).toMatch(/threw undefined \(a non-Error value\)$/);
  });

  it("retries on a JSON result (the article's temporary_failure case)", async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const bodies = [
      { error: 'temporary_failure' },
      { error: 'temporary_failure' },
      { data: [1, 2] },
    ];
    let i = 0;
    const result = await retry(async () => bodies[i++], {
      clock,
      stop: stop.afterAttempt(4),
      wait: wait.exponential({ multiplier: 1000, min: 1000, max: 8000 }),
      retry: retryIf.transient.or(
        retryIf.result((body?: { error?: string }) => body?.error === 'temporary_failure'),
      ),
    });
    expect(result).toEqual({ data: [1, 2] });
    expect(clock.sleeps).toEqual([1000, 2000]);
  });

  it('gives up on results with RetryError holding the last value', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const error = (await retry(async () => ({ error: 'temporary_failure' }), {
      clock,
      stop: stop.afterAttempt(2),
      wait: wait.none(),
      retry: retryIf.result((b: { error?: string }) => b.error === 'temporary_failure'),
      reraise: true,
    }).catch((e: unknown) => e)) as RetryError;
    expect(error).toBeInstanceOf(RetryError);
    expect(error.cause).toBeUndefined();
    expect(error.lastAttempt.outcome).toEqual({ ok: true, value: { error: 'temporary_failure' } });
    expect(error.message).toMatch(
      /returned \{"error":"temporary_failure"\}, which the retry condition rejected$/,
    );
  });

  it('onGiveUp turns giving up into a result', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const onGiveUp = vi.fn((s: AttemptState<string>) => `fallback after ${s.attempt}`);
    await expect(
      retry(() => Promise.reject(reset()), { clock, stop: stop.afterAttempt(2), onGiveUp }),
    ).resolves.toBe('fallback after 2');
    expect(onGiveUp).toHaveBeenCalledTimes(1);
  });

  it('TryAgain always retries, whatever the condition, but obeys stop', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const fn = vi.fn(() => {
      throw new TryAgain('not yet');
    });
    const error = (await retry(fn, {
      clock,
      retry: retryIf.never,
      stop: stop.afterAttempt(3),
      wait: wait.none(),
    }).catch((e: unknown) => e)) as RetryError;
    expect(fn).toHaveBeenCalledTimes(3);
    expect(error.cause).toBeInstanceOf(TryAgain);
  });

  it('a condition that declines a failure rethrows the error as is', async () => {
    const boom = reset();
    await expect(retry(() => Promise.reject(boom), { retry: retryIf.never })).rejects.toBe(boom);
  });

  it('calls hooks in order: before, attempt, after, beforeSleep, sleep', async () => {
    const events: string[] = [];
    const clock = new FakeClock();
    const sleep = clock.sleep.bind(clock);
    clock.sleep = (ms, signal) => {
      events.push(`sleep ${ms}`);
      return sleep(ms, signal);
    };
    let n = 0;
    const run = retry(
      (s) => {
        events.push(`attempt ${s.attempt}`);
        if (++n < 3) throw reset();
        return 'ok';
      },
      {
        clock,
        wait: wait.incrementing({ start: 10, increment: 10 }),
        before: (s) => {
          events.push(`before ${s.attempt} outcome=${s.outcome === undefined}`);
        },
        after: (s) => {
          events.push(`after ${s.attempt} ok=${s.outcome?.ok} upcoming=${s.upcomingDelayMs}`);
        },
        beforeSleep: async (s) => {
          events.push(`beforeSleep ${s.attempt} upcoming=${s.upcomingDelayMs}`);
        },
      },
    );
    await clock.runAll();
    await expect(run).resolves.toBe('ok');
    expect(events).toEqual([
      'before 1 outcome=true',
      'attempt 1',
      'after 1 ok=false upcoming=undefined',
      'beforeSleep 1 upcoming=10',
      'sleep 10',
      'before 2 outcome=true',
      'attempt 2',
      'after 2 ok=false upcoming=undefined',
      'beforeSleep 2 upcoming=20',
      'sleep 20',
      'before 3 outcome=true',
      'attempt 3',
    ]);
  });

  it('evaluates stop after the wait, so beforeDelay never sleeps past its limit', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const fn = vi.fn(() => Promise.reject(reset()));
    await expect(
      retry(fn, {
        clock,
        wait: wait.exponential({ multiplier: 100 }),
        stop: stop.beforeDelay(1000),
        reraise: true,
      }),
    ).rejects.toBeTruthy();
    // 100 + 200 + 400 = 700; the next sleep (800) would reach 1500 > 1000.
    expect(clock.sleeps).toEqual([100, 200, 400]);
    expect(clock.now()).toBe(700);
    expect(fn).toHaveBeenCalledTimes(4);
  });

  it('a wait that returns garbage is a TypeError, not a silent zero', async () => {
    await expect(retry(() => Promise.reject(reset()), { wait: () => Number.NaN })).rejects.toThrow(
      /returned NaN; a wait must return a non-negative number/,
    );
  });

  it('the same seed gives the same delays', async () => {
    const delays = async () => {
      const clock = new FakeClock({ autoAdvance: true });
      await retry(() => Promise.reject(reset()), {
        clock,
        random: seededRandom(99),
        stop: stop.afterAttempt(6),
      }).catch(() => {});
      return clock.sleeps;
    };
    const a = await delays();
    expect(a).toHaveLength(5);
    expect(await delays()).toEqual(a);
    // Recorded once: a change of the generator or of how delays draw from it shows here.
    expect(a).toEqual([
      52.09316248074174, 321.9291062094271, 432.69722796976566, 1104.3894812464714,
      3.643866628408432,
    ]);
  });

  it('another seed gives other delays', async () => {
    const delays = async (seed: number) => {
      const clock = new FakeClock({ autoAdvance: true });
      await retry(() => Promise.reject(reset()), {
        clock,
        random: seededRandom(seed),
        stop: stop.afterAttempt(6),
      }).catch(() => {});
      return clock.sleeps;
    };
    const a = await delays(99);
    const b = await delays(100);
    expect(b).toHaveLength(5);
    expect(b.every((ms, i) => ms !== a[i])).toBe(true);
  });
});

describe('validation at the boundary', () => {
  it('rejects bad options with a TypeError naming the option and value', async () => {
    // @ts-expect-error: wrong type on purpose
    await expect(retry(() => 1, { stop: 3 })).rejects.toThrow(
      /retry options: stop must be a function, got 3/,
    );
    // @ts-expect-error: wrong type on purpose
    await expect(retry(() => 1, { wait: 'fast' })).rejects.toThrow(
      /retry options: wait must be a function, got "fast"/,
    );
    // @ts-expect-error: wrong type on purpose
    await expect(retry(() => 1, { retry: {} })).rejects.toThrow(
      /retry options: retry must be a function, got an object/,
    );
    // @ts-expect-error: wrong type on purpose
    await expect(retry(() => 1, { before: 1 })).rejects.toThrow(/before must be a function/);
    // @ts-expect-error: wrong type on purpose
    await expect(retry(() => 1, { reraise: 'yes' })).rejects.toThrow(
      /reraise must be a boolean, got "yes"/,
    );
    // @ts-expect-error: wrong type on purpose
    await expect(retry(() => 1, { signal: {} })).rejects.toThrow(/signal must be an AbortSignal/);
    // @ts-expect-error: wrong type on purpose
    await expect(retry(() => 1, { clock: { now: () => 0 } })).rejects.toThrow(
      /clock must have now\(\) and sleep/,
    );
    // @ts-expect-error: wrong type on purpose
    await expect(retry(() => 1, { retries: 3 })).rejects.toThrow(
      /unknown option "retries"; use stop: stop\.afterAttempt/,
    );
    // @ts-expect-error: wrong type on purpose
    await expect(retry('not a function')).rejects.toThrow(/fn must be a function/);
    expect(
      () => new Retrying({ stop: stop.afterAttempt(2), wait: undefined as never }),
    ).not.toThrow();
    // @ts-expect-error: wrong type on purpose
    expect(() => new Retrying({ stop: null })).toThrow(
      /Retrying options: stop must be a function, got null/,
    );
  });
});
