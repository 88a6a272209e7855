import { afterEach, describe, expect, it } from 'vitest';
import type { HostRate } from '../../src/batch/host-limits.js';
import { Journal, type NewLine } from '../../src/batch/journal.js';
import { Scheduler } from '../../src/batch/scheduler.js';
import { seededRandom } from '../../src/retry/index.js';
import { attemptOutcome } from './outcome-support.js';

/**
 * The batch scheduler against a real (in-memory) journal: which due lines it claims, in which
 * order it hands them out, and how it treats busy hosts. All times are plain numbers (no clock).
 */

let journal: Journal;
afterEach(() => journal?.close());

function open(): Journal {
  journal?.close();
  journal = Journal.open(':memory:');
  return journal;
}

function scheduler(concurrency: number, perHost: number, rate: HostRate = 'none'): Scheduler {
  return new Scheduler(journal, {
    concurrency,
    perHost,
    rate,
    maxPauseMs: 30_000,
    random: seededRandom(7),
  });
}

/** Inserts lines `from`..`to` of `host`, all due at `dueAt`. */
function insert(from: number, to: number, host = 'a:80', dueAt = 0): void {
  const lines: NewLine[] = [];
  for (let n = from; n <= to; n++) {
    lines.push({
      kind: 'request',
      line: n,
      hash: `h${n}`,
      key: undefined,
      method: 'GET',
      url: `http://${host}/${n}`,
      host,
      headers: {},
      body: undefined,
      dueAt,
    });
  }
  journal.insertLines(lines);
}

/** Makes a pending line a due retry (one attempt recorded, due at `dueAt`). */
function makeRetry(line: number, dueAt: number): void {
  expect(journal.markInFlight(line, 0)).toBe(true);
  journal.record({
    kind: 'retry',
    line,
    state: 'pending',
    attempts: 1,
    nextAttemptAt: dueAt,
    history: [{ at: 0, status: 503, delayMs: dueAt, source: 'backoff' }],
    status: 503,
    errorCode: null,
    errorMessage: null,
    reason: null,
    responseHeaders: null,
    body: null,
    bodySize: null,
    bodyPath: null,
    finishedAt: null,
    ttfbMs: 1,
    durationMs: 1,
  });
}

/** Takes every line the scheduler lets start at `now`, in order. */
function takeAll(s: Scheduler, now: number): number[] {
  const taken: number[] = [];
  for (;;) {
    const row = s.next(now, { at: Number.POSITIVE_INFINITY });
    if (!row) return taken;
    taken.push(row.line);
  }
}

const lines = (claimed: { line: number }[]) => claimed.map((row) => row.line);

describe('the batch scheduler', () => {
  it('claims four rounds of concurrency (at least 8) and marks them in flight', () => {
    open();
    insert(1, 40);
    const s = scheduler(3, 100);
    const { claimed, wake } = s.refill(0);
    expect(lines(claimed)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(wake).toBe(Number.POSITIVE_INFINITY);
    expect(s.readyCount).toBe(12);
    expect(journal.counts()).toMatchObject({ in_flight: 12, pending: 28 });
    // Full: a refill claims nothing.
    expect(s.refill(0)).toEqual({ claimed: [], wake: Number.POSITIVE_INFINITY });
    expect(journal.counts()).toMatchObject({ in_flight: 12 });

    open();
    insert(1, 40);
    const small = scheduler(1, 100);
    expect(lines(small.refill(0).claimed)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('without claims in the journal, leaves claimed lines pending and never claims them twice', () => {
    open();
    insert(1, 30);
    makeRetry(30, 5);
    const s = new Scheduler(
      journal,
      { concurrency: 2, perHost: 100, rate: 'none', maxPauseMs: 30_000 },
      { claimInJournal: false },
    );
    expect(lines(s.refill(10).claimed)).toEqual([30, 1, 2, 3, 4, 5, 6, 7]);
    expect(journal.counts()).toMatchObject({ pending: 30, in_flight: 0 });
    expect(s.readyLines().sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 30]);
    expect(journal.nextDueAt(s.readyLines())).toBe(0);
    // Three start (the retry first), their starts written as the runner writes them: the next
    // refill reads past the five still waiting.
    const started = [s.next(10, { at: 0 })?.line, s.next(10, { at: 0 })?.line];
    started.push(s.next(10, { at: 0 })?.line);
    expect(started).toEqual([30, 1, 2]);
    for (const line of [30, 1, 2]) journal.record({ kind: 'started', line, at: 10 });
    expect(journal.counts()).toMatchObject({ pending: 27, in_flight: 3 });
    expect(lines(s.refill(10).claimed)).toEqual([8, 9, 10]);
    expect(takeAll(s, 10)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('wants a refill once the queue is down to a quarter', () => {
    open();
    insert(1, 40);
    const s = scheduler(1, 100); // room for 8
    expect(s.wantsRefill).toBe(true);
    s.refill(0);
    expect(s.wantsRefill).toBe(false);
    for (let i = 0; i < 5; i++) s.next(0, { at: Number.POSITIVE_INFINITY });
    expect(s.readyCount).toBe(3);
    expect(s.wantsRefill).toBe(false);
    s.next(0, { at: Number.POSITIVE_INFINITY });
    expect(s.readyCount).toBe(2);
    expect(s.wantsRefill).toBe(true);
    // A refill tops the queue up to its room again.
    expect(lines(s.refill(0).claimed)).toEqual([9, 10, 11, 12, 13, 14]);
  });

  it('claims only lines that are due', () => {
    open();
    insert(1, 3, 'a:80', 0);
    insert(4, 6, 'a:80', 500);
    const s = scheduler(1, 100);
    expect(lines(s.refill(100).claimed)).toEqual([1, 2, 3]);
    expect(lines(s.refill(500).claimed)).toEqual([4, 5, 6]);
  });

  it('claims due retries before fresh lines, and puts them at the front of the queue', () => {
    open();
    insert(1, 20);
    makeRetry(15, 50);
    makeRetry(12, 40);
    const s = scheduler(1, 100);
    // Retries first (in due order), then fresh lines.
    expect(lines(s.refill(100).claimed)).toEqual([12, 15, 1, 2, 3, 4, 5, 6]);
    expect(s.next(100, { at: Number.POSITIVE_INFINITY })?.line).toBe(12);
    // A retry due later goes after the retries still queued, before the fresh lines.
    makeRetry(20, 200);
    expect(lines(s.refill(300).claimed)).toEqual([20]);
    expect(takeAll(s, 300)).toEqual([15, 20, 1, 2, 3, 4, 5, 6]);
    // The queue has no retries left: the next one goes first.
    insert(21, 30);
    expect(lines(s.refill(300).claimed)).toEqual([7, 8, 9, 10, 11, 13, 14, 16]);
    makeRetry(21, 250);
    s.next(300, { at: Number.POSITIVE_INFINITY });
    expect(lines(s.refill(300).claimed)).toEqual([21]);
    expect(s.next(300, { at: Number.POSITIVE_INFINITY })?.line).toBe(21);
  });

  it('does not read fresh lines when the due retries fill the queue', () => {
    open();
    insert(1, 20);
    for (let n = 11; n <= 19; n++) makeRetry(n, 10);
    const s = scheduler(1, 100);
    const { claimed } = s.refill(100);
    expect(lines(claimed)).toEqual([11, 12, 13, 14, 15, 16, 17, 18]);
    expect(journal.counts()).toMatchObject({ in_flight: 8 });
  });

  it('holds at most four times perHost lines of one host, and reads past them for other hosts', () => {
    open();
    insert(1, 20, 'a:80');
    insert(21, 24, 'b:80');
    const s = scheduler(2, 1); // room for 8, 4 lines a host
    const { claimed, wake } = s.refill(0);
    expect(lines(claimed)).toEqual([1, 2, 3, 4, 21, 22, 23, 24]);
    expect(wake).toBe(Number.POSITIVE_INFINITY);
    // The lines skipped stay pending.
    expect(journal.counts()).toMatchObject({ in_flight: 8, pending: 16 });
  });

  it('reads no further than 1024 lines past busy hosts', () => {
    open();
    insert(1, 1100, 'a:80');
    insert(1101, 1104, 'b:80');
    const s = scheduler(1, 1);
    expect(lines(s.refill(0).claimed)).toEqual([1, 2, 3, 4]);
  });

  it('claims nothing when the queue is full, even with lines of idle hosts due', () => {
    open();
    insert(1, 8, 'a:80');
    insert(9, 12, 'b:80');
    const s = scheduler(1, 100); // room for 8
    expect(lines(s.refill(0).claimed)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(s.refill(0)).toEqual({ claimed: [], wake: Number.POSITIVE_INFINITY });
    expect(journal.counts()).toMatchObject({ in_flight: 8, pending: 4 });
    // Nor a due retry.
    makeRetry(9, 0);
    expect(s.refill(0)).toEqual({ claimed: [], wake: Number.POSITIVE_INFINITY });
    expect(journal.counts()).toMatchObject({ in_flight: 8, pending: 4, retrying: 1 });
  });

  it('claims exactly its room, whatever else is due', () => {
    open();
    for (let n = 1; n <= 20; n++) insert(n, n, n % 2 ? 'a:80' : 'b:80');
    const s = scheduler(1, 100);
    expect(lines(s.refill(0).claimed)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(journal.counts()).toMatchObject({ in_flight: 8, pending: 12 });
    // Due retries that fill the room leave the fresh lines of other hosts alone.
    open();
    insert(1, 9, 'a:80');
    insert(11, 20, 'b:80');
    for (let n = 1; n <= 9; n++) makeRetry(n, 10);
    const t = scheduler(1, 100);
    expect(lines(t.refill(100).claimed)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(journal.counts()).toMatchObject({ in_flight: 8 });
  });

  it('reads exactly 1024 rows at most in a refill', () => {
    // Room for 24, 4 lines a host: past the host's 4 lines, 1020 rows are read; no more.
    open();
    insert(1, 1020, 'a:80');
    insert(1021, 1024, 'b:80');
    expect(lines(scheduler(6, 1).refill(0).claimed)).toEqual([1, 2, 3, 4, 1021, 1022, 1023, 1024]);
    open();
    insert(1, 1024, 'a:80');
    insert(1025, 1028, 'b:80');
    expect(lines(scheduler(6, 1).refill(0).claimed)).toEqual([1, 2, 3, 4]);
    // Room for 256: the same bound.
    open();
    insert(1, 1024, 'a:80');
    insert(1025, 1025, 'b:80');
    expect(lines(scheduler(64, 1).refill(0).claimed)).toEqual([1, 2, 3, 4]);
  });

  it('while crowded, reads at most four rows of the head, whatever the room', () => {
    open();
    insert(1, 4, 'a:80', 0);
    insert(5, 8, 'a:80', 10);
    insert(9, 30, 'a:80', 20);
    const s = scheduler(3, 1); // room for 12, 4 lines a host
    expect(lines(s.refill(1000).claimed)).toEqual([1, 2, 3, 4]);
    // Due after the four head rows (5 to 8), before the rest.
    insert(40, 40, 'b:80', 15);
    expect(s.refill(1050)).toEqual({ claimed: [], wake: 1100 });
    expect(lines(s.refill(1100).claimed)).toEqual([40]);
  });

  it('a refill that fills the queue while crowded has nothing to wake for', () => {
    open();
    insert(1, 30, 'a:80');
    const s = scheduler(1, 1);
    expect(s.refill(1000).wake).toBe(1100);
    insert(31, 34, 'b:80', -1);
    const { claimed, wake } = s.refill(1050);
    expect(lines(claimed)).toEqual([31, 32, 33, 34]);
    expect(wake).toBe(Number.POSITIVE_INFINITY);
  });

  it('a refill that fills the queue past busy hosts does not make the next one read only the head', () => {
    open();
    insert(1, 20, 'a:80');
    insert(21, 24, 'b:80');
    const s = scheduler(2, 1); // room for 8, 4 lines a host
    expect(lines(s.refill(1000).claimed)).toEqual([1, 2, 3, 4, 21, 22, 23, 24]);
    expect(takeAll(s, 1000)).toEqual([1, 21]);
    insert(25, 30, 'c:80');
    // Room for 2: one more line of a:80, then past the rest of its lines to c:80.
    const { claimed, wake } = s.refill(1050);
    expect(lines(claimed)).toEqual([5, 25]);
    expect(wake).toBe(Number.POSITIVE_INFINITY);
  });

  it('once the crowded time is over, a refill that skips nothing has nothing to wake for', () => {
    open();
    insert(1, 6, 'a:80');
    const s = scheduler(1, 1);
    expect(s.refill(1000).wake).toBe(1100);
    for (const n of [5, 6]) {
      journal.markInFlight(n, 1000);
      journal.record({
        kind: 'final',
        line: n,
        ...attemptOutcome({
          attempts: 1,
          responseHeaders: null,
          body: null,
          bodySize: null,
          finishedAt: 1000,
          ttfbMs: 1,
          durationMs: 1,
        }),
      });
    }
    expect(s.refill(1100)).toEqual({ claimed: [], wake: Number.POSITIVE_INFINITY });
  });

  it('a fresh line started out of turn leaves the retries at the front of the queue', () => {
    open();
    insert(1, 1, 'a:80');
    insert(2, 3, 'b:80');
    insert(4, 4, 'c:80');
    insert(5, 5, 'd:80', 500);
    makeRetry(1, 0);
    const s = scheduler(2, 1);
    expect(lines(s.refill(0).claimed)).toEqual([1, 2, 3, 4]);
    // a:80 is paused: the retry waits, a fresh line starts.
    s.hosts.throttled('a:80', 0, 0, 1000);
    expect(s.next(0, { at: Number.POSITIVE_INFINITY })?.line).toBe(2);
    makeRetry(5, 0);
    expect(lines(s.refill(0).claimed)).toEqual([5]);
    s.finished('b:80');
    expect(takeAll(s, 1000)).toEqual([1, 5, 3, 4]);
  });

  it('after a scan that found only busy hosts, reads the head of the queue for 100 ms', () => {
    open();
    insert(1, 30, 'a:80');
    const s = scheduler(1, 1); // room for 8, 4 lines a host
    const first = s.refill(1000);
    expect(lines(first.claimed)).toEqual([1, 2, 3, 4]);
    expect(first.wake).toBe(1100);
    // Lines of another host, due later than the busy host's: out of reach while crowded.
    insert(31, 32, 'b:80', 500);
    const crowded = s.refill(1050);
    expect(crowded).toEqual({ claimed: [], wake: 1100 });
    // 100 ms later, a full scan again.
    const later = s.refill(1100);
    expect(lines(later.claimed)).toEqual([31, 32]);
    expect(later.wake).toBe(1200);
  });

  it('while crowded, still claims what the head of the queue offers', () => {
    open();
    insert(1, 10, 'a:80');
    const s = scheduler(1, 1);
    s.refill(1000);
    // A due retry of another host is at the head of its queue.
    insert(11, 11, 'b:80');
    makeRetry(11, 0);
    expect(lines(s.refill(1010).claimed)).toEqual([11]);
    // A fresh line of another host due before the busy host's lines.
    insert(12, 12, 'c:80', -5);
    expect(lines(s.refill(1020).claimed)).toEqual([12]);
  });

  it('uncrowd: something changed, the next refill scans the whole queue', () => {
    open();
    insert(1, 30, 'a:80');
    const s = scheduler(1, 1);
    s.refill(1000);
    insert(31, 32, 'b:80', 500);
    s.uncrowd();
    const { claimed } = s.refill(1010);
    expect(lines(claimed)).toEqual([31, 32]);
  });

  it('a refill that skipped no busy host does not make the next one read only the head', () => {
    open();
    insert(1, 3, 'a:80');
    const s = scheduler(1, 1);
    const first = s.refill(1000);
    expect(first).toMatchObject({ wake: Number.POSITIVE_INFINITY });
    expect(lines(first.claimed)).toEqual([1, 2, 3]);
    insert(4, 10, 'b:80');
    insert(11, 20, 'c:80');
    expect(lines(s.refill(1010).claimed)).toEqual([4, 5, 6, 7, 11]);
  });

  it('starts lines whose host has room, and says when a paused or paced host may start', () => {
    open();
    insert(1, 2, 'a:80');
    insert(3, 4, 'b:80');
    const s = scheduler(2, 1);
    s.refill(0);
    // One in flight per host: the first line of each.
    expect(takeAll(s, 0)).toEqual([1, 3]);
    expect(s.readyCount).toBe(2);
    const wake = { at: Number.POSITIVE_INFINITY };
    expect(s.next(0, wake)).toBeUndefined();
    expect(wake.at).toBe(Number.POSITIVE_INFINITY);
    // a:80 ends; its second line may start.
    s.finished('a:80');
    expect(s.next(0, wake)?.line).toBe(2);
    expect(s.hosts.readyAt('a:80', 0)).toBe(Number.POSITIVE_INFINITY);
    // b:80 ends and is paused for 300 ms by a Retry-After.
    s.finished('b:80');
    s.hosts.throttled('b:80', 10, 0, 300);
    const paused = { at: Number.POSITIVE_INFINITY };
    expect(s.next(10, paused)).toBeUndefined();
    expect(paused.at).toBe(310);
    expect(s.next(310, paused)?.line).toBe(4);
  });

  it('wake is the earliest start among the ready lines', () => {
    open();
    insert(1, 1, 'a:80');
    insert(2, 2, 'b:80');
    insert(3, 3, 'c:80');
    const s = scheduler(2, 1);
    s.refill(0);
    s.hosts.throttled('a:80', 0, 0, 300);
    s.hosts.throttled('b:80', 0, 0, 100);
    s.hosts.throttled('c:80', 0, 0, 200);
    const wake = { at: Number.POSITIVE_INFINITY };
    expect(s.next(0, wake)).toBeUndefined();
    expect(wake.at).toBe(100);
    const earlier = { at: 50 };
    expect(s.next(0, earlier)).toBeUndefined();
    expect(earlier.at).toBe(50);
  });

  it('paces the starts of a host at a fixed rate', () => {
    open();
    insert(1, 3, 'a:80');
    const s = scheduler(1, 10, 10); // one start every 100 ms
    s.refill(0);
    expect(s.next(0, { at: Number.POSITIVE_INFINITY })?.line).toBe(1);
    const wake = { at: Number.POSITIVE_INFINITY };
    expect(s.next(50, wake)).toBeUndefined();
    expect(wake.at).toBe(100);
    expect(s.next(100, wake)?.line).toBe(2);
  });

  it('drainReady empties the queue and forgets what it held', () => {
    open();
    insert(1, 10, 'a:80');
    makeRetry(9, 0);
    makeRetry(10, 0);
    const s = scheduler(1, 1); // 4 lines a host
    expect(lines(s.refill(0).claimed)).toEqual([9, 10, 1, 2]);
    const drained = s.drainReady();
    expect(lines(drained)).toEqual([9, 10, 1, 2]);
    expect(s.readyCount).toBe(0);
    for (const row of drained) journal.record({ kind: 'released', line: row.line, started: false });
    // The host's lines may be claimed again (none is held), and the retries come back first.
    s.uncrowd();
    expect(lines(s.refill(0).claimed)).toEqual([9, 10, 1, 2]);
  });

  it('after drainReady, a new retry goes to the front (the queue holds no retries)', () => {
    open();
    insert(1, 5, 'b:80');
    makeRetry(4, 0);
    makeRetry(5, 0);
    const s = scheduler(1, 1);
    expect(lines(s.refill(0).claimed)).toEqual([4, 5, 1, 2]);
    s.drainReady();
    for (const n of [1, 2]) journal.record({ kind: 'released', line: n, started: false });
    insert(6, 8, 'c:80');
    insert(9, 9, 'd:80', 500);
    s.uncrowd();
    expect(lines(s.refill(0).claimed)).toEqual([1, 2, 3, 6, 7, 8]);
    makeRetry(9, 0);
    expect(lines(s.refill(0).claimed)).toEqual([9]);
    expect(s.next(0, { at: Number.POSITIVE_INFINITY })?.line).toBe(9);
  });
});
