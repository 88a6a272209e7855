import { describe, expect, it } from 'vitest';
import type { AttemptState } from '../../src/retry/attempt-state.js';
import {
  RetryError,
  Retrying,
  retry,
  retryIf,
  stop,
  TryAgain,
  wait,
} from '../../src/retry/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { netError } from './helpers.js';

const reset = () => netError('ECONNRESET');

/** The fields of a state that change from attempt to attempt. */
const pick = (s: AttemptState<unknown>) => ({
  attempt: s.attempt,
  elapsedMs: s.elapsedMs,
  idleMs: s.idleMs,
  lastDelayMs: s.lastDelayMs,
  upcomingDelayMs: s.upcomingDelayMs,
  ok: s.outcome?.ok,
});

describe('the engine: the states each hook sees', () => {
  it('before, the attempt, after, stop and beforeSleep get exact times and delays', async () => {
    const clock = new FakeClock({ now: 1000, autoAdvance: true });
    const seen: Record<string, unknown[]> = { before: [], fn: [], after: [], stop: [], sleep: [] };
    let n = 0;
    const value = await retry(
      async (s) => {
        seen.fn?.push(pick(s));
        await clock.sleep(7);
        if (++n < 3) throw reset();
        return 'done';
      },
      {
        clock,
        wait: wait.chain(wait.fixed(100), wait.fixed(300)),
        stop: (s) => {
          seen.stop?.push(pick(s));
          return false;
        },
        before: (s) => {
          seen.before?.push(pick(s));
        },
        after: (s) => {
          seen.after?.push(pick(s));
        },
        beforeSleep: (s) => {
          seen.sleep?.push(pick(s));
        },
      },
    );
    expect(value).toBe('done');
    const at = (attempt: number, elapsedMs: number, idleMs: number, lastDelayMs: number) => ({
      attempt,
      elapsedMs,
      idleMs,
      lastDelayMs,
    });
    expect(seen.before).toEqual([
      { ...at(1, 0, 0, 0), upcomingDelayMs: undefined, ok: undefined },
      { ...at(2, 107, 100, 100), upcomingDelayMs: undefined, ok: undefined },
      { ...at(3, 414, 400, 300), upcomingDelayMs: undefined, ok: undefined },
    ]);
    expect(seen.fn).toEqual(seen.before);
    expect(seen.after).toEqual([
      { ...at(1, 7, 0, 0), upcomingDelayMs: undefined, ok: false },
      { ...at(2, 114, 100, 100), upcomingDelayMs: undefined, ok: false },
    ]);
    expect(seen.stop).toEqual([
      { ...at(1, 7, 0, 0), upcomingDelayMs: 100, ok: false },
      { ...at(2, 114, 100, 100), upcomingDelayMs: 300, ok: false },
    ]);
    expect(seen.sleep).toEqual(seen.stop);
  });

  it('async hooks are awaited before the run goes on', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const order: string[] = [];
    const later = (name: string) => async () => {
      await clock.sleep(5);
      order.push(name);
    };
    let n = 0;
    await retry(
      () => {
        order.push(`attempt ${++n}`);
        if (n < 2) throw reset();
        return n;
      },
      {
        clock,
        wait: wait.fixed(10),
        before: later('before'),
        after: later('after'),
        beforeSleep: later('beforeSleep'),
      },
    );
    expect(order).toEqual(['before', 'attempt 1', 'after', 'beforeSleep', 'before', 'attempt 2']);
  });

  it('an async retry condition is awaited; false ends the run with the outcome', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    let n = 0;
    await expect(
      retry(() => ++n, {
        clock,
        wait: wait.none(),
        retry: async (s) => (s.outcome?.ok ? s.outcome.value : 0) < 3,
      }),
    ).resolves.toBe(3);
    const error = reset();
    await expect(
      retry(
        () => {
          throw error;
        },
        { clock, retry: async () => false },
      ),
    ).rejects.toBe(error);
  });

  it('a thenable function result is awaited', async () => {
    const thenable = {
      // biome-ignore lint/suspicious/noThenProperty: a thenable that is not a promise, on purpose.
      then: (resolve: (v: string) => void) => resolve('from a thenable'),
    };
    await expect(retry(() => thenable as unknown as string)).resolves.toBe('from a thenable');
    await expect(
      retry(() => thenable as unknown as string, { retry: retryIf.result(() => false) }),
    ).resolves.toBe('from a thenable');
  });

  it('a function result that is not a thenable is a value, even with a then that is not a function', async () => {
    // biome-ignore lint/suspicious/noThenProperty: a then that is not a function, on purpose.
    const value = { then: 5 };
    await expect(retry(() => value, { retry: retryIf.result(() => false) })).resolves.toBe(value);
    await expect(retry(() => null, { retry: retryIf.result(() => false) })).resolves.toBeNull();
  });

  it('a strategy that returns NaN anyway is caught by the engine', async () => {
    await expect(
      retry(
        () => {
          throw reset();
        },
        { wait: Object.assign(() => Number.NaN, { plus: wait.none().plus, description: 'odd' }) },
      ),
    ).rejects.toThrow(
      'the wait strategy returned NaN; a wait must return a non-negative number of milliseconds',
    );
  });
});

describe('the engine: statistics of each ending', () => {
  it('a success on the first attempt, with results ignored', async () => {
    const r = new Retrying({ clock: new FakeClock({ autoAdvance: true }) });
    await r.run(() => 'v');
    expect(r.statistics).toEqual({
      calls: 1,
      attempts: 1,
      retries: 0,
      successes: 1,
      failures: 0,
      giveUps: 0,
      aborts: 0,
      idleMs: 0,
      lastRun: { attempts: 1, elapsedMs: 0, idleMs: 0, outcome: 'succeeded' },
    });
  });

  it('a success with results checked', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const r = new Retrying({
      clock,
      wait: wait.fixed(50),
      retry: retryIf.result((v: number) => v < 2),
    });
    let n = 0;
    await expect(r.run(() => ++n)).resolves.toBe(2);
    expect(r.statistics).toMatchObject({
      attempts: 2,
      retries: 1,
      successes: 1,
      failures: 0,
      idleMs: 50,
      lastRun: { attempts: 2, elapsedMs: 50, idleMs: 50, outcome: 'succeeded' },
    });
  });

  it('giving up counts a failure and a give-up; reraise too', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const r = new Retrying({ clock, wait: wait.fixed(10), stop: stop.afterAttempt(2) });
    await expect(r.run(() => Promise.reject(reset()))).rejects.toBeInstanceOf(RetryError);
    expect(r.statistics).toMatchObject({
      attempts: 2,
      retries: 1,
      successes: 0,
      failures: 1,
      giveUps: 1,
      aborts: 0,
      lastRun: { outcome: 'gave-up', attempts: 2, idleMs: 10 },
    });
    const rr = r.with({ reraise: true });
    const error = reset();
    await expect(rr.run(() => Promise.reject(error))).rejects.toBe(error);
    expect(rr.statistics).toMatchObject({
      failures: 1,
      giveUps: 1,
      lastRun: { outcome: 'gave-up' },
    });
  });

  it('reraise with a result that runs out of retries is still a RetryError', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    await expect(
      retry(() => 1, {
        clock,
        reraise: true,
        wait: wait.none(),
        stop: stop.afterAttempt(2),
        retry: retryIf.result(() => true),
      }),
    ).rejects.toBeInstanceOf(RetryError);
  });

  it('onGiveUp counts a success and a give-up, with the planned state', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const states: unknown[] = [];
    const r = new Retrying({
      clock,
      wait: wait.fixed(10),
      stop: stop.afterAttempt(2),
      onGiveUp: async (s) => {
        states.push(pick(s));
        return 'fallback';
      },
    });
    await expect(r.run(() => Promise.reject(reset()))).resolves.toBe('fallback');
    expect(states).toEqual([
      { attempt: 2, elapsedMs: 10, idleMs: 10, lastDelayMs: 10, upcomingDelayMs: 10, ok: false },
    ]);
    expect(r.statistics).toMatchObject({
      successes: 1,
      failures: 0,
      giveUps: 1,
      lastRun: { outcome: 'succeeded' },
    });
  });

  it('an error the condition declines is a failure, not a give-up', async () => {
    const r = new Retrying({ clock: new FakeClock({ autoAdvance: true }) });
    await expect(r.run(() => Promise.reject(new TypeError('bug')))).rejects.toThrow('bug');
    expect(r.statistics).toMatchObject({
      failures: 1,
      giveUps: 0,
      aborts: 0,
      lastRun: { outcome: 'failed' },
    });
  });

  it('an abort during a sleep counts an abort', async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    const r = new Retrying({ clock, wait: wait.fixed(1000), signal: controller.signal });
    const run = r.run(() => Promise.reject(reset()));
    const settled = run.catch((e: unknown) => e);
    await clock.advance(10);
    controller.abort(new Error('shutdown'));
    expect(((await settled) as Error).message).toBe('shutdown');
    expect(r.statistics).toMatchObject({
      attempts: 1,
      retries: 0,
      failures: 0,
      aborts: 1,
      lastRun: { outcome: 'aborted', elapsedMs: 10 },
    });
  });

  it('a hook that throws ends the run as a failure', async () => {
    const r = new Retrying({
      clock: new FakeClock({ autoAdvance: true }),
      before: () => {
        throw new Error('hook');
      },
    });
    await expect(r.run(() => 1)).rejects.toThrow('hook');
    expect(r.statistics).toMatchObject({
      attempts: 0,
      failures: 1,
      lastRun: { attempts: 0, outcome: 'failed' },
    });
  });

  it('TryAgain retries even when the condition would not', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    let n = 0;
    await expect(
      retry(
        () => {
          if (++n < 3) throw new TryAgain();
          return n;
        },
        { clock, wait: wait.none(), retry: retryIf.never },
      ),
    ).resolves.toBe(3);
  });
});
