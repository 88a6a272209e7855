import { getEventListeners } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { AttemptDeadline } from '../../src/http/attempt-deadline.js';
import { AttemptTimeoutError, ReadTimeoutError, Session } from '../../src/index.js';
import { runCli, tempDir } from '../batch/batch-support.js';
import { type HostileServer, startDrip } from './hostile-servers.js';

/** A byte every 700 ms: never quiet for the 1 s read timeout, never finished either. */
let drip: HostileServer;
beforeAll(async () => {
  drip = await startDrip(700, 10_000);
});
afterAll(async () => {
  await drip.close();
});

describe('a body that drips a byte every 700 ms', () => {
  it('ends at the attempt deadline with a retriable AttemptTimeoutError (a read timeout)', async () => {
    await using session = new Session({ timeout: { read: 1000, attempt: 2500 }, retry: false });
    const started = performance.now();
    const response = await session.get(`${drip.url}/drip`);
    const error = await response.text().catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(AttemptTimeoutError);
    expect(error).toBeInstanceOf(ReadTimeoutError);
    expect(error).toMatchObject({
      code: 'ERR_DOGGED_ATTEMPT_TIMEOUT',
      retriable: true,
      phase: 'body',
      timeoutMs: 2500,
    });
    expect((error as Error).message).toMatch(/still reading the body after 2\.5 s/);
    expect(elapsed).toBeGreaterThanOrEqual(2400);
    expect(elapsed).toBeLessThan(5000);
  });

  it('is retried within the policy, each attempt with its own deadline', async () => {
    await using session = new Session({
      timeout: { read: 1000, attempt: 1200 },
      retry: { total: 1, backoffFactor: 0 },
    });
    const before = drip.requests();
    const response = await session.get(`${drip.url}/drip-again`);
    const error = await response.bytes().catch((e: unknown) => e);
    expect((error as Error).name).toMatch(/MaxRetryError|AttemptTimeoutError/);
    expect(drip.requests() - before).toBe(2);
  });

  it('dogged get --timeout 1s,1s,2s exits 28 instead of running for ever', async () => {
    const started = performance.now();
    const { code, stderr } = await runCli([
      'get',
      `${drip.url}/cli`,
      '--timeout',
      '1s,1s,2s',
      '--retries',
      '0',
    ]);
    expect(code).toBe(28);
    expect(stderr).toMatch(/still reading the body after 2 s/);
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('in a batch, the line ends (attempt timeout) instead of staying in flight', async () => {
    const { dir, cleanup } = tempDir('dogged-hostile-');
    try {
      const input = join(dir, 'urls.txt');
      const db = join(dir, 'run.sqlite');
      writeFileSync(input, `${drip.url}/batch\n`);
      const { code } = await runCli([
        'batch',
        input,
        '--db',
        db,
        '--timeout',
        '1s,1s,2s',
        '--retries',
        '0',
        '-q',
      ]);
      expect(code).toBe(10);
      const journal = new Database(db, { readonly: true });
      const row = journal.prepare('SELECT state, error_code FROM requests').get();
      journal.close();
      expect(row).toEqual({ state: 'failed', error_code: 'ERR_DOGGED_ATTEMPT_TIMEOUT' });
    } finally {
      cleanup();
    }
  });
});

describe('AttemptDeadline (fake timers)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  const target = { method: 'GET', url: 'http://127.0.0.1:9/x', attempt: 1 };

  it('defaults to 10 minutes for a body read whole, and a stream drops that default', () => {
    vi.useFakeTimers();
    const whole = new AttemptDeadline(undefined, undefined, target);
    const streamed = new AttemptDeadline(undefined, undefined, target);
    streamed.headArrived(new Readable({ read() {} }));
    streamed.streamed();
    vi.advanceTimersByTime(599_999);
    expect(whole.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(whole.signal.reason).toBeInstanceOf(AttemptTimeoutError);
    expect((whole.signal.reason as AttemptTimeoutError).phase).toBe('headers');
    vi.advanceTimersByTime(3_600_000);
    expect(streamed.signal.aborted).toBe(false);
  });

  it('keeps an explicit deadline for a stream, and Infinity means none', () => {
    vi.useFakeTimers();
    const explicit = new AttemptDeadline(undefined, 5000, target);
    explicit.headArrived(new Readable({ read() {} }));
    explicit.streamed();
    const none = new AttemptDeadline(undefined, Number.POSITIVE_INFINITY, target);
    vi.advanceTimersByTime(5000);
    expect(explicit.signal.reason).toMatchObject({ phase: 'body', timeoutMs: 5000 });
    vi.advanceTimersByTime(40 * 86_400_000);
    expect(none.signal.aborted).toBe(false);
  });

  it('follows a parent signal with one listener, whatever the attempts under it', () => {
    const parent = new AbortController();
    const other = new AbortController();
    const listeners = (c: AbortController): number => getEventListeners(c.signal, 'abort').length;
    const under = Array.from(
      { length: 20 },
      () => new AttemptDeadline(parent.signal, undefined, target),
    );
    const elsewhere = new AttemptDeadline(other.signal, undefined, target);
    expect(listeners(parent)).toBe(1);
    expect(listeners(other)).toBe(1);
    // Attempts that end leave; the listener goes with the last one.
    for (const d of under.slice(0, 19)) d.end();
    expect(listeners(parent)).toBe(1);
    (under[19] as AttemptDeadline).end();
    expect(listeners(parent)).toBe(0);
    // A new attempt under the same parent listens again; the parent's abort reaches every
    // attempt in flight under it, with its reason, and no other.
    const next = [0, 1, 2].map(() => new AttemptDeadline(parent.signal, undefined, target));
    next[1]?.end();
    const reason = new Error('stop');
    parent.abort(reason);
    expect(next.map((d) => d.signal.reason)).toEqual([reason, undefined, reason]);
    expect(under.every((d) => !d.signal.aborted)).toBe(true);
    expect(elsewhere.signal.aborted).toBe(false);
    expect(listeners(parent)).toBe(0);
    // An attempt under an aborted parent starts aborted.
    expect(new AttemptDeadline(parent.signal, undefined, target).signal.reason).toBe(reason);
    elsewhere.end();
    expect(listeners(other)).toBe(0);
  });

  it('reaches exactly the attempts still under a parent when it aborts, whichever ended', () => {
    const parent = new AbortController();
    const listeners = (): number => getEventListeners(parent.signal, 'abort').length;
    const under = Array.from({ length: 8 }, (_, i) => {
      return new AttemptDeadline(parent.signal, undefined, { ...target, attempt: i + 1 });
    });
    // The newest, the oldest, two in the middle (neighbours), and one twice.
    for (const i of [7, 0, 3, 4, 3]) under[i]?.end();
    expect(listeners()).toBe(1);
    // Joining again after others left: still one listener.
    const late = new AttemptDeadline(parent.signal, undefined, target);
    late.end();
    const reason = new Error('shutdown');
    parent.abort(reason);
    expect(under.map((d) => d.signal.reason === reason)).toEqual([
      false,
      true,
      true,
      false,
      false,
      true,
      true,
      false,
    ]);
    expect(late.signal.aborted).toBe(false);
    expect(listeners()).toBe(0);
    // The ones that aborted end without effect.
    for (const d of under) d.end();
  });

  it('drops its listener on the parent when the last attempt under it ends, in any order', () => {
    const parent = new AbortController();
    const listeners = (): number => getEventListeners(parent.signal, 'abort').length;
    const under = Array.from({ length: 5 }, () => new AttemptDeadline(parent.signal, 1000, target));
    for (const i of [2, 0, 4, 1]) {
      under[i]?.end();
      expect(listeners()).toBe(1);
    }
    under[3]?.end();
    expect(listeners()).toBe(0);
  });

  it('fires the deadlines of one length in order, whichever of them ended first', () => {
    vi.useFakeTimers();
    const ms = 1234; // a length no other test uses: its queue is this test's alone
    const deadlines: AttemptDeadline[] = [];
    for (let i = 0; i < 6; i++) {
      deadlines.push(new AttemptDeadline(undefined, ms, { ...target, attempt: i + 1 }));
      vi.advanceTimersByTime(100);
    }
    const aborted = (): number[] => deadlines.flatMap((d, i) => (d.signal.aborted ? [i] : []));
    // The first (the one the timer is armed for), one in the middle and the last end early;
    // ending one twice changes nothing.
    for (const i of [0, 2, 5, 2]) deadlines[i]?.end();
    vi.advanceTimersByTime(ms - 600 + 99); // 1 ms before the second is due
    expect(aborted()).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(aborted()).toEqual([1]);
    vi.advanceTimersByTime(199);
    expect(aborted()).toEqual([1]);
    vi.advanceTimersByTime(1);
    expect(aborted()).toEqual([1, 3]);
    vi.advanceTimersByTime(100);
    expect(aborted()).toEqual([1, 3, 4]);
    expect(
      deadlines.map((d) => (d.signal.reason as AttemptTimeoutError | undefined)?.attempts),
    ).toEqual([undefined, 2, undefined, 4, 5, undefined]);
    // Ending one that already fired changes nothing; the queue is empty, and a new deadline
    // arms its timer again.
    deadlines[3]?.end();
    const later = new AttemptDeadline(undefined, ms, target);
    vi.advanceTimersByTime(ms - 1);
    expect(later.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(later.signal.reason).toBeInstanceOf(AttemptTimeoutError);
  });

  it('ends when the body closes', () => {
    vi.useFakeTimers();
    const body = new Readable({ read() {} });
    const deadline = new AttemptDeadline(undefined, 1000, target);
    deadline.headArrived(body);
    body.destroy();
    return new Promise<void>((resolve) => {
      body.once('close', () => {
        vi.advanceTimersByTime(5000);
        expect(deadline.signal.aborted).toBe(false);
        resolve();
      });
      vi.advanceTimersByTime(0);
    });
  });
});
