import { HostLimits, type HostLimitsOptions } from './host-limits.js';
import type { ClaimedLine, DueKind, Journal } from './journal.js';

const NONE: readonly number[] = [];

/** Rows read per refill beyond the first window, when the due lines belong to busy hosts. */
const MAX_SCAN = 1024;
/** After a scan that found only busy hosts, read only the head of the queue for this long. */
const CROWDED_MS = 100;

/** Limits of a {@link Scheduler}. */
export interface SchedulerLimits extends HostLimitsOptions {
  readonly concurrency: number;
}

/** How a {@link Scheduler} claims lines. */
export interface SchedulerOptions {
  /**
   * Mark claimed lines `in_flight` in the journal (one UPDATE per refill). Without it, a claimed
   * line stays `pending` in the journal until its start or outcome is written (the runner writes
   * it with them: `LineUpdate`'s `at` and `startedAt`), and a refill reads past the ready lines.
   * A runner that dies leaves them pending either way.
   * @default true
   */
  readonly claimInJournal?: boolean;
}

/**
 * Picks the lines to attempt. Due lines are claimed from the journal in batches (marked
 * `in_flight` in the caller's transaction) into a small ready queue (at most four times
 * `concurrency` lines), so that when an attempt ends the next one starts at once, without
 * touching the database. Due retries are claimed first and go to the front of the queue: a line
 * whose retry is due never waits behind the fresh lines of its host. Per-host limits apply when
 * a line starts; at most four times a host's concurrency of its lines wait in the queue, so one
 * busy host cannot fill it while others wait.
 */
export class Scheduler {
  readonly #journal: Journal;
  readonly hosts: HostLimits;
  readonly #capacity: number;
  readonly #readyPerHost: number;
  readonly #ready: ClaimedLine[] = [];
  /** The lines of the ready queue. */
  readonly #readyLines = new Set<number>();
  readonly #claimInJournal: boolean;
  /** The first `#retries` lines of the ready queue are retries (they go first). */
  #retries = 0;
  /** Ready lines per host. */
  readonly #held = new Map<string, number>();
  #crowdedUntil = 0;

  constructor(journal: Journal, limits: SchedulerLimits, options: SchedulerOptions = {}) {
    this.#journal = journal;
    this.#claimInJournal = options.claimInJournal ?? true;
    this.hosts = new HostLimits(limits);
    // Room for several rounds of attempts: one refill transaction serves many of them.
    this.#capacity = Math.max(8, limits.concurrency * 4);
    this.#readyPerHost = Math.min(this.#capacity, limits.perHost * 4);
  }

  /** Lines claimed and waiting to start. */
  get readyCount(): number {
    return this.#ready.length;
  }

  /** The lines claimed and waiting to start. */
  readyLines(): number[] {
    return [...this.#readyLines];
  }

  /** True when the queue runs low (a refill then claims many lines in one transaction). */
  get wantsRefill(): boolean {
    return this.#ready.length <= this.#capacity >> 2;
  }

  /** Something changed that may make busy-host lines deeper in the queue reachable. */
  uncrowd(): void {
    this.#crowdedUntil = 0;
  }

  #hold(host: string, delta: number): void {
    const n = (this.#held.get(host) ?? 0) + delta;
    // Stryker disable next-line ConditionalExpression,EqualityOperator: a count of 0 kept in the map reads as no entry (`?? 0`), and a count never goes below 0; only the map's size differs
    if (n <= 0) this.#held.delete(host);
    else this.#held.set(host, n);
  }

  /**
   * Claims due lines into the ready queue (call inside a transaction): due retries first, then
   * fresh lines. Returns the claimed lines and the earliest time worth waking up for
   * (`Infinity`: none).
   */
  refill(now: number): { claimed: ClaimedLine[]; wake: number } {
    const claimed: ClaimedLine[] = [];
    let room = this.#capacity - this.#ready.length;
    let wake = Number.POSITIVE_INFINITY;
    if (room <= 0) return { claimed, wake };
    const crowded = now < this.#crowdedUntil;
    let skipped = false;
    for (const kind of ['retry', 'fresh'] as const) {
      const scan = this.#scan(kind, now, room, crowded, claimed);
      room = scan.room;
      skipped ||= scan.skipped;
      if (room === 0) break;
    }
    // Then the lines this run read and has not handed out yet (no row: see `Journal.deferRows`).
    if (room > 0 && !this.#claimInJournal && this.#journal.hasFresh) {
      const window = crowded ? Math.min(room, 4) : room;
      const taken = this.#journal.takeFresh(window, crowded ? window : MAX_SCAN, (row) => {
        if ((this.#held.get(row.host) ?? 0) >= this.#readyPerHost) {
          skipped = true;
          return false;
        }
        this.#hold(row.host, 1);
        return true;
      });
      for (const row of taken) {
        this.#ready.push(row);
        this.#readyLines.add(row.line);
        claimed.push(row);
      }
      room -= taken.length;
    }
    // Room is left but the due lines belong to busy hosts: until something changes, read only
    // the head of the queue instead of rescanning it after every attempt.
    if (room > 0 && skipped && !crowded) this.#crowdedUntil = now + CROWDED_MS;
    if (room > 0 && now < this.#crowdedUntil) wake = this.#crowdedUntil;
    return { claimed, wake };
  }

  /** Claims due lines of one kind while there is room; reads further past busy hosts' lines. */
  #scan(
    kind: DueKind,
    now: number,
    room: number,
    crowded: boolean,
    claimed: ClaimedLine[],
  ): { room: number; skipped: boolean } {
    // Read exactly what fits first; read further only when busy hosts' lines were skipped.
    // Lines claimed without a write are still pending in the journal: read past them too.
    const unwritten = this.#claimInJournal
      ? 0
      : kind === 'retry'
        ? this.#retries
        : this.#ready.length - this.#retries;
    let window = (crowded ? Math.min(room, 4) : room) + unwritten;
    let after: { at: number; line: number } | undefined;
    let scanned = 0;
    let skipped = false;
    for (;;) {
      const rows = this.#journal.dueLines(kind, now, window, after);
      const page: ClaimedLine[] = [];
      for (const row of rows) {
        scanned++;
        if (unwritten > 0 && this.#readyLines.has(row.line)) continue;
        if ((this.#held.get(row.host) ?? 0) >= this.#readyPerHost) {
          skipped = true;
          continue;
        }
        this.#hold(row.host, 1);
        page.push(row);
        room--;
        if (room === 0) break;
      }
      // The page's lines claimed in one statement; a line that was not pending is not claimed.
      const missed = this.#claimInJournal
        ? this.#journal.claim(
            page.map((row) => row.line),
            now,
          )
        : NONE;
      for (const row of page) {
        if (missed.length > 0 && missed.includes(row.line)) {
          this.#hold(row.host, -1);
          room++;
          continue;
        }
        if (kind === 'retry') this.#ready.splice(this.#retries++, 0, row);
        else this.#ready.push(row);
        this.#readyLines.add(row.line);
        claimed.push(row);
      }
      const last = rows[rows.length - 1];
      if (room === 0 || crowded) break;
      // Stryker disable next-line LogicalOperator,ConditionalExpression: without the short-page test the loop reads once more and gets no row (the rows not claimed are at or before `last`), so it claims the same lines; `!last` implies a short page
      if (rows.length < window || !last || scanned >= MAX_SCAN) break;
      after = { at: last.nextAttemptAt, line: last.line };
      window = Math.min(256, Math.max(32, room * 2));
    }
    return { room, skipped };
  }

  /**
   * The next ready line whose host may start now (it counts as started), or undefined. `wake`
   * receives the earliest time a paced or paused ready line may start.
   */
  next(now: number, wake: { at: number }): ClaimedLine | undefined {
    for (let i = 0; i < this.#ready.length; i++) {
      const row = this.#ready[i] as ClaimedLine;
      const at = this.hosts.readyAt(row.host, now);
      if (at === 0) {
        // The head, most often: `shift` moves no element and makes no array, as `splice` does.
        if (i === 0) this.#ready.shift();
        else this.#ready.splice(i, 1);
        this.#readyLines.delete(row.line);
        if (i < this.#retries) this.#retries--;
        this.#hold(row.host, -1);
        this.hosts.start(row.host, now);
        return row;
      }
      // Stryker disable next-line EqualityOperator: `<=` assigns the same value again
      if (at < wake.at) wake.at = at;
    }
    return undefined;
  }

  /** A started line ended. */
  finished(host: string): void {
    this.hosts.finish(host);
  }

  /** Empties the ready queue (a stop): those lines go back to pending. */
  drainReady(): ClaimedLine[] {
    const rows = this.#ready.splice(0);
    this.#readyLines.clear();
    this.#retries = 0;
    for (const row of rows) this.#hold(row.host, -1);
    return rows;
  }
}
