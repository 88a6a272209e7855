import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/retry/clock.js';
import { Retrying, retry, retryIf, stop, wait } from '../../src/retry/index.js';
import { defaults, resolveOptions } from '../../src/retry/options.js';
import { defaultRandom } from '../../src/retry/random.js';
import { FakeClock } from '../../src/testing/index.js';

const W = 'retry options';

describe('resolveOptions', () => {
  it('no options are the defaults', () => {
    const o = resolveOptions(undefined);
    expect(o.stop).toBe(defaults.stop);
    expect(o.wait).toBe(defaults.wait);
    expect(o.retry).toBe(defaults.retry);
    expect(o.skipResults).toBe(true);
    expect(o.reraise).toBe(false);
    expect(o.clock).toBe(systemClock);
    expect(o.random).toBe(defaultRandom);
    expect([o.before, o.after, o.beforeSleep, o.onGiveUp, o.signal, o.name]).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect(o.firstState).toEqual({
      attempt: 1,
      elapsedMs: 0,
      idleMs: 0,
      lastDelayMs: 0,
      upcomingDelayMs: undefined,
      outcome: undefined,
      signal: undefined,
      name: undefined,
      random: defaultRandom,
    });
    expect(Object.isFrozen(o.firstState)).toBe(true);
    expect(defaults.stop.description).toBe('stop.afterAttempt(4) | stop.beforeDelay(60000)');
    expect(defaults.wait.description).toBe(
      'wait.fullJitter({ multiplier: 200, base: 2, min: 0, max: 20000 })',
    );
    expect(defaults.retry.description).toBe('retryIf.transient');
  });

  it('an empty object resolves to the same defaults', () => {
    const o = resolveOptions({});
    expect(o.stop).toBe(defaults.stop);
    expect(o.wait).toBe(defaults.wait);
    expect(o.retry).toBe(defaults.retry);
    expect(o.skipResults).toBe(true);
    expect(o.reraise).toBe(false);
    expect(o.clock).toBe(systemClock);
    expect(o.random).toBe(defaultRandom);
    expect(Object.isFrozen(o)).toBe(true);
  });

  it('given options are kept, and the first state carries the signal, name and random', () => {
    const clock = new FakeClock();
    const signal = new AbortController().signal;
    const random = () => 0.5;
    const before = () => {};
    const o = resolveOptions({
      clock,
      signal,
      random,
      name: 'job',
      reraise: true,
      before,
      after: before,
      beforeSleep: before,
      onGiveUp: () => 1,
      retry: retryIf.result(() => true),
    });
    expect(o.clock).toBe(clock);
    expect(o.signal).toBe(signal);
    expect(o.random).toBe(random);
    expect(o.name).toBe('job');
    expect(o.reraise).toBe(true);
    expect(o.before).toBe(before);
    expect(o.after).toBe(before);
    expect(o.beforeSleep).toBe(before);
    expect(o.skipResults).toBe(false);
    expect(o.firstState.signal).toBe(signal);
    expect(o.firstState.name).toBe('job');
    expect(o.firstState.random).toBe(random);
    expect(resolveOptions({ reraise: false }).reraise).toBe(false);
    expect(resolveOptions({ retry: retryIf.anyError }).skipResults).toBe(true);
  });

  it.each([
    [null, `${W} must be an options object, got null`],
    [{ reraise: 1 }, `${W}: reraise must be a boolean, got 1`],
    [{ signal: {} }, `${W}: signal must be an AbortSignal, got an object`],
    [
      { clock: { now: () => 0 } },
      `${W}: clock must have now() and sleep(ms, signal) methods, got an object`,
    ],
    [{ random: 0.5 }, `${W}: random must be a function, got 0.5`],
    [{ name: 5 }, `${W}: name must be a string, got 5`],
    [{ retry: true }, `${W}: retry must be a function, got true`],
    [{ stop: 3 }, `${W}: stop must be a function, got 3`],
    [{ wait: 100 }, `${W}: wait must be a function, got 100`],
    [{ before: 'x' }, `${W}: before must be a function, got "x"`],
    [{ after: 1 }, `${W}: after must be a function, got 1`],
    [{ beforeSleep: {} }, `${W}: beforeSleep must be a function, got an object`],
    [{ onGiveUp: [] }, `${W}: onGiveUp must be a function, got an array of length 0`],
    [{ retries: 3 }, `${W}: unknown option "retries"; use stop: stop.afterAttempt(retries + 1)`],
    [
      { timeout: 3 },
      `${W}: unknown option "timeout"; use stop: stop.beforeDelay(ms), or signal: AbortSignal.timeout(ms)`,
    ],
  ])('%o is refused', (options, text) => {
    expect(() => resolveOptions(options as never)).toThrow(text);
  });

  it('retry(fn) refuses a non-function at once, as a rejection', async () => {
    await expect(retry(5 as never)).rejects.toThrow('retry(fn): fn must be a function, got number');
    await expect(retry(() => 1, { nope: 1 } as never)).rejects.toThrow(
      /retry options: unknown option "nope"; known options: stop, wait, retry/,
    );
  });
});

describe('Retrying', () => {
  it('keeps a frozen copy of its options', () => {
    const options = { wait: wait.none() };
    const r = new Retrying(options);
    expect(r.options).toEqual(options);
    expect(r.options).not.toBe(options);
    expect(Object.isFrozen(r.options)).toBe(true);
    expect(() => new Retrying({ wait: 5 } as never)).toThrow(
      'Retrying options: wait must be a function, got 5',
    );
  });

  it('run() checks its function and options, as rejections', async () => {
    const r = new Retrying({ clock: new FakeClock({ autoAdvance: true }) });
    await expect(r.run(5 as never)).rejects.toThrow(
      'the function to retry must be a function, got 5',
    );
    await expect(r.run(() => 1, null as never)).rejects.toThrow(
      'Retrying.run options must be an options object, got null',
    );
    await expect(r.run(() => 1, { timeout: 1 } as never)).rejects.toThrow(
      'Retrying.run options: unknown option "timeout"; known options: signal',
    );
    await expect(r.run(() => 1, { signal: 'x' as never })).rejects.toThrow(
      'Retrying.run options: signal must be an AbortSignal, got "x"',
    );
    await expect(r.run(() => 1, {})).resolves.toBe(1);
    await expect(r.run(() => 2, { signal: undefined } as never)).resolves.toBe(2);
  });

  it('a run signal alone aborts the run', async () => {
    const clock = new FakeClock();
    const r = new Retrying({ clock, wait: wait.fixed(1000), stop: stop.never });
    const controller = new AbortController();
    const run = r.run(() => Promise.reject(Object.assign(new Error('x'), { code: 'EPIPE' })), {
      signal: controller.signal,
    });
    const settled = run.catch((e: unknown) => e);
    await clock.advance(1);
    controller.abort(new Error('run signal'));
    expect(((await settled) as Error).message).toBe('run signal');
  });

  it('with() refuses overrides that are not an object; wrap() a non-function', () => {
    const r = new Retrying();
    expect(() => r.with(null as never)).toThrow(
      'Retrying.with(overrides) must be an options object, got null',
    );
    expect(() => r.wrap(5 as never)).toThrow('Retrying.wrap(fn) must be a function, got 5');
  });

  it('a wrapped function is named after the original', () => {
    const r = new Retrying();
    function fetchIt() {
      return 1;
    }
    expect(r.wrap(fetchIt).name).toBe('retrying fetchIt');
    expect(r.wrap(() => 1).name).toBe('retrying');
    const wrapped = r.wrap(fetchIt);
    expect(wrapped.retrying).toBe(r);
    expect(wrapped.with({ name: 'x' }).retrying.options.name).toBe('x');
  });

  it('resetStatistics zeroes every counter', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const r = new Retrying({ clock, wait: wait.fixed(5), stop: stop.afterAttempt(2) });
    await r
      .run(() => Promise.reject(Object.assign(new Error('x'), { code: 'EPIPE' })))
      .catch(() => {});
    const controller = new AbortController();
    controller.abort();
    await r.run(() => 1, { signal: controller.signal }).catch(() => {});
    r.resetStatistics();
    expect(r.statistics).toEqual({
      calls: 0,
      attempts: 0,
      retries: 0,
      successes: 0,
      failures: 0,
      giveUps: 0,
      aborts: 0,
      idleMs: 0,
      lastRun: undefined,
    });
  });
});
