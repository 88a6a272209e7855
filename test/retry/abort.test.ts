import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { Retrying, retry, stop, systemClock, wait } from '../../src/retry/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { netError } from './helpers.js';

const reset = () => netError('ECONNRESET');

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

describe('AbortSignal', () => {
  it('aborted before the first attempt: rejects with the reason and never calls fn', async () => {
    const fn = vi.fn(() => 1);
    const reason = new Error('shutting down');
    await expect(retry(fn, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(fn).not.toHaveBeenCalled();
  });

  it('aborting during a sleep rejects at once with the reason and leaves no timer behind', async () => {
    const controller = new AbortController();
    const before = activeTimers();
    const fn = vi.fn(() => Promise.reject(reset()));
    const run = retry(fn, {
      signal: controller.signal,
      wait: wait.fixed(3_600_000),
      stop: stop.never,
      clock: systemClock,
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(fn).toHaveBeenCalledTimes(1);
    expect(activeTimers()).toBe(before + 1);
    const reason = new Error('user pressed Ctrl-C');
    controller.abort(reason);
    await expect(run).rejects.toBe(reason);
    expect(activeTimers()).toBe(before);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('aborting during an attempt abandons it at once; a late result is ignored', async () => {
    const controller = new AbortController();
    let finish: (v: string) => void = () => {};
    const run = retry(() => new Promise<string>((resolve) => (finish = resolve)), {
      signal: controller.signal,
    });
    controller.abort();
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    finish('too late');
  });

  it('an attempt that fails because of the abort is not retried', async () => {
    const controller = new AbortController();
    const clock = new FakeClock({ autoAdvance: true });
    const fn = vi.fn(async ({ signal }: { signal: AbortSignal | undefined }) => {
      controller.abort(new Error('stop'));
      throw signal?.reason;
    });
    await expect(retry(fn, { signal: controller.signal, clock })).rejects.toThrow('stop');
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('AbortSignal.timeout rejects with its TimeoutError and is never retried', async () => {
    const fn = vi.fn(() => new Promise<never>(() => {}));
    await expect(retry(fn, { signal: AbortSignal.timeout(20) })).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('a per-call signal combines with the Retrying signal', async () => {
    const clock = new FakeClock();
    const r = new Retrying({ clock, wait: wait.fixed(10_000) });
    const controller = new AbortController();
    const run = r.run(() => Promise.reject(reset()), { signal: controller.signal });
    await clock.advance(1);
    controller.abort(new Error('per call'));
    await expect(run).rejects.toThrow('per call');
    expect(clock.pending).toBe(0);
    expect(r.statistics.aborts).toBe(1);
    expect(r.statistics.lastRun?.outcome).toBe('aborted');
  });

  it('stop.onAbort gives up gracefully with the last outcome instead of rejecting with the reason', async () => {
    const shutdown = new AbortController();
    const clock = new FakeClock({ autoAdvance: true });
    let n = 0;
    const last = reset();
    const run = retry(
      () => {
        if (++n === 2) shutdown.abort();
        throw last;
      },
      { clock, stop: stop.afterAttempt(10).or(stop.onAbort(shutdown.signal)), reraise: true },
    );
    await expect(run).rejects.toBe(last);
    expect(n).toBe(2);
  });

  it('the process can exit right after an abort during a one-hour sleep', () => {
    const script = fileURLToPath(new URL('../fixtures/abort-exit.ts', import.meta.url));
    const started = Date.now();
    const child = spawnSync(process.execPath, ['--import', 'tsx', script], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    expect(child.stderr).toBe('');
    expect(child.stdout.trim()).toBe('rejected with: user abort');
    expect(child.status).toBe(0);
    // A timer left behind would keep the child alive for an hour and hit the 15 s spawn timeout.
    expect(Date.now() - started).toBeLessThan(15_000);
  });
});
