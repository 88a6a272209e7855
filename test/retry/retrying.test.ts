import { describe, expect, it, vi } from 'vitest';
import {
  getRetrying,
  RetryError,
  Retrying,
  retryIf,
  retrying,
  stop,
  TryAgain,
  wait,
} from '../../src/retry/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { netError } from './helpers.js';

const reset = () => netError('ECONNRESET');

describe('Retrying', () => {
  it('run() reuses one validated configuration', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const r = new Retrying({ clock, wait: wait.fixed(10), stop: stop.afterAttempt(3) });
    let n = 0;
    await expect(r.run(() => (++n < 2 ? Promise.reject(reset()) : 'a'))).resolves.toBe('a');
    await expect(r.run(() => 'b')).resolves.toBe('b');
  });

  it('keeps statistics across runs and of the last run', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const r = new Retrying({ clock, wait: wait.fixed(100), stop: stop.afterAttempt(3) });
    let n = 0;
    await r.run(() => (++n < 3 ? Promise.reject(reset()) : 'ok'));
    expect(r.statistics).toEqual({
      calls: 1,
      attempts: 3,
      retries: 2,
      successes: 1,
      failures: 0,
      giveUps: 0,
      aborts: 0,
      idleMs: 200,
      lastRun: { attempts: 3, elapsedMs: 200, idleMs: 200, outcome: 'succeeded' },
    });
    await r.run(() => Promise.reject(reset())).catch(() => {});
    await r.run(() => Promise.reject(new TypeError('bug'))).catch(() => {});
    const s = r.statistics;
    expect([s.calls, s.attempts, s.retries, s.successes, s.failures, s.giveUps, s.idleMs]).toEqual([
      3, 7, 4, 1, 2, 1, 400,
    ]);
    expect(s.lastRun).toEqual({ attempts: 1, elapsedMs: 0, idleMs: 0, outcome: 'failed' });
    expect(Object.isFrozen(s)).toBe(true);
    r.resetStatistics();
    expect(r.statistics.calls).toBe(0);
    expect(r.statistics.lastRun).toBeUndefined();
  });

  it('shows a running run in statistics', async () => {
    const clock = new FakeClock();
    const r = new Retrying({ clock, wait: wait.fixed(1000) });
    const run = r.run(() => Promise.reject(reset())).catch(() => {});
    await clock.advance(500);
    expect(r.statistics.lastRun).toEqual({
      attempts: 1,
      elapsedMs: 500,
      idleMs: 0,
      outcome: 'running',
    });
    await clock.runAll();
    await run;
    expect(r.statistics.lastRun?.outcome).toBe('gave-up');
  });

  it('with() returns a new Retrying with overrides, leaving the original unchanged', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const base = new Retrying({ clock, wait: wait.fixed(10), stop: stop.afterAttempt(5) });
    const quick = base.with({ stop: stop.afterAttempt(2) });
    const fn = vi.fn(() => Promise.reject(reset()));
    await expect(quick.run(fn)).rejects.toBeInstanceOf(RetryError);
    expect(fn).toHaveBeenCalledTimes(2);
    fn.mockClear();
    await expect(base.run(fn)).rejects.toBeInstanceOf(RetryError);
    expect(fn).toHaveBeenCalledTimes(5);
    expect(quick.options.wait).toBe(base.options.wait);
  });

  it('wrap() passes arguments and this, and exposes statistics and with()', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    const api = {
      base: 'v1',
      calls: 0,
      get(id: string) {
        this.calls++;
        if (this.calls < 2) throw new TryAgain();
        return `${this.base}/${id}`;
      },
    };
    const r = new Retrying<string>({ clock, wait: wait.none() });
    const get = r.wrap(api.get);
    await expect(get.call(api, 'u1')).resolves.toBe('v1/u1');
    expect(get.statistics.attempts).toBe(2);
    expect(get.retrying).toBe(r);
    expect(getRetrying(get)).toBe(r);
    const once = get.with({ stop: stop.afterAttempt(1) });
    api.calls = -5;
    await expect(once.call(api, 'u2')).rejects.toBeInstanceOf(RetryError);
    expect(get.statistics.calls).toBe(1);
  });

  it('rejects a non-function in run() and wrap()', async () => {
    const r = new Retrying();
    // @ts-expect-error: wrong type on purpose
    await expect(r.run(null)).rejects.toThrow(/the function to retry must be a function, got null/);
    // @ts-expect-error: wrong type on purpose
    expect(() => r.wrap(42)).toThrow(/Retrying\.wrap\(fn\) must be a function, got 42/);
    // @ts-expect-error: wrong type on purpose
    await expect(r.run(() => 1, { timeout: 5 })).rejects.toThrow(/unknown option "timeout"/);
  });
});

const clock = new FakeClock({ autoAdvance: true });

class ReportClient {
  calls = 0;
  constructor(readonly prefix: string) {}

  @retrying({ clock, stop: stop.afterAttempt(3), wait: wait.fixed(100) })
  async fetch(id: string): Promise<string> {
    this.calls++;
    if (this.calls < 3) throw reset();
    return `${this.prefix}:${id}`;
  }

  @retrying({ clock, retry: retryIf.result((v: number) => v < 2), wait: wait.none() })
  async count(): Promise<number> {
    return ++this.calls;
  }
}

describe('@retrying decorator', () => {
  it('retries an async method and keeps this', async () => {
    const client = new ReportClient('r');
    await expect(client.fetch('42')).resolves.toBe('r:42');
    expect(client.calls).toBe(3);
  });

  it('shares one Retrying (and its statistics) across instances, named after the method', async () => {
    const a = new ReportClient('a');
    const b = new ReportClient('b');
    const r = getRetrying(a.fetch);
    const before = r?.statistics.calls ?? 0;
    await a.fetch('1');
    await b.fetch('2');
    expect(r?.statistics.calls).toBe(before + 2);
    expect(r?.options.name).toBe('fetch');
    expect(getRetrying(a.fetch)).toBe(getRetrying(b.fetch));
  });

  it('supports result-based conditions', async () => {
    const c = new ReportClient('c');
    await expect(c.count()).resolves.toBe(2);
  });

  it('validates its options when the class is defined', () => {
    // @ts-expect-error: wrong type on purpose
    expect(() => retrying({ stop: 'never' })).toThrow(/stop must be a function, got "never"/);
  });

  it('refuses to decorate anything but a method', () => {
    const decorate = retrying();
    // @ts-expect-error: called by hand with a field context
    expect(() => decorate(() => Promise.resolve(1), { kind: 'field', name: 'x' })).toThrow(
      /decorates methods only, not "field"/,
    );
  });
});
