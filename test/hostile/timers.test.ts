import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { Session } from '../../src/index.js';
import { MAX_TIMER_MS, pause, setLongTimeout } from '../../src/retry/timer.js';
import { runCli, tempDir } from '../batch/batch-support.js';
import { type HostileServer, startSlowAnswer } from './hostile-servers.js';
import { runNode } from './hostile-support.js';

const DAY = 86_400_000;

describe('setLongTimeout (fake clock)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  const fake = () =>
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance', 'Date'] });

  it('fires a 30-day timer after 30 days, not after 1 ms', () => {
    fake();
    const fired = vi.fn();
    setLongTimeout(fired, 30 * DAY);
    vi.advanceTimersByTime(1);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(MAX_TIMER_MS);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(30 * DAY - MAX_TIMER_MS - 2);
    expect(fired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fired).toHaveBeenCalledTimes(1);
  });

  it('never fires for Infinity, and clear() cancels a chained timer', () => {
    fake();
    const never = vi.fn();
    const cleared = vi.fn();
    setLongTimeout(never, Number.POSITIVE_INFINITY);
    const timer = setLongTimeout(cleared, 40 * DAY);
    vi.advanceTimersByTime(30 * DAY);
    timer.clear();
    vi.advanceTimersByTime(365 * DAY);
    expect(never).not.toHaveBeenCalled();
    expect(cleared).not.toHaveBeenCalled();
  });

  it('pause() resolves when its signal aborts, however long it had to go', async () => {
    const controller = new AbortController();
    const paused = pause(100 * DAY, controller.signal);
    controller.abort();
    await expect(paused).resolves.toBeUndefined();
  });
});

describe('deadlines past 2^31 - 1 ms', () => {
  let slow: HostileServer;
  const warnings: Error[] = [];
  const onWarning = (warning: Error): void => {
    warnings.push(warning);
  };
  beforeAll(async () => {
    slow = await startSlowAnswer(200);
    process.on('warning', onWarning);
  });
  afterAll(async () => {
    process.off('warning', onWarning);
    await slow.close();
  });

  it('timeout.total = Infinity means no limit (it used to abort at once)', async () => {
    await using session = new Session({ timeout: { total: Number.POSITIVE_INFINITY } });
    const response = await session.get(slow.url);
    expect(await response.text()).toBe('late but fine');
  });

  it('a total of 600 hours is 600 hours', async () => {
    await using session = new Session({ timeout: { total: 600 * 3_600_000, attempt: 40 * DAY } });
    const response = await session.get(slow.url);
    expect(await response.text()).toBe('late but fine');
    expect(warnings.filter((w) => w.name === 'TimeoutOverflowWarning')).toEqual([]);
  });

  it('dogged get --max-time 600h does not abort at once', async () => {
    const { code, stdout, stderr } = await runCli(['get', slow.url, '--max-time', '600h']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toBe('late but fine');
  });
});

describe('a batch retry due in 30 days', () => {
  it('sleeps: no TimeoutOverflowWarning, and next to no CPU while it waits', async () => {
    const { dir, cleanup } = tempDir('dogged-hostile-');
    try {
      const { code, stdout, stderr } = await runNode([
        '--import',
        'tsx',
        'test/fixtures/far-retry-batch.ts',
        dir,
      ]);
      expect(stderr).not.toMatch(/TimeoutOverflowWarning/);
      expect(code).toBe(0);
      expect(stdout).toMatch(/retry in 259200\d{4} ms/);
      const result = JSON.parse(stdout.trim().split('\n').pop() as string);
      expect(result.end).toBe('interrupted');
      // Idle for 2 s: some 10 ms of CPU. The old code spun: TimeoutOverflowWarnings, and the
      // runner asked for a refill at every turn of the event loop (about 2 s of CPU in 2 s).
      expect(result.cpuMs).toBeLessThan(250);
    } finally {
      cleanup();
    }
  }, 30_000);
});
