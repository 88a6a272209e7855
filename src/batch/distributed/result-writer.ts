import type { HostCookieJars } from '../cookie-jars.js';
import type { FinishedLine, JobCounters } from './stats.js';
import type { PgStore } from './store.js';
import { type EncodedWrite, recordEncoded } from './store-chunks.js';

/** Outcomes written per statement at most. */
export const WRITE_BATCH = 256;
/** How long an outcome waits for others before its batch is written. */
export const WRITE_DELAY_MS = 250;
/** How often the lines that finished are counted in Redis (sooner past {@link COUNT_BATCH}). */
const COUNT_EVERY_MS = 1000;
/** Finished lines counted per round trip at most. */
const COUNT_BATCH = 2000;
/**
 * Outcomes not yet written at most (queued or being written) before new attempts wait: with the
 * attempts in flight, what a worker that dies may have sent without recording.
 */
export const MAX_UNWRITTEN = 2 * WRITE_BATCH;
/** Body bytes per statement at most (a larger body is written alone). */
const WRITE_BYTES = 8 * 1024 * 1024;

interface Waiting {
  readonly write: EncodedWrite;
  readonly host: string;
  readonly resolve: (written: boolean) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Writes a worker's attempt outcomes to the store in batches: one statement per
 * {@link WRITE_BATCH} outcomes or {@link WRITE_DELAY_MS}, whichever comes first, each outcome
 * written once (guarded by the attempt count it follows); the lines that finished are counted
 * once in Redis, in one round trip a second. A crash loses at most the outcomes not yet written
 * (those lines are fetched again) and counts not yet sent (made good when the job finishes).
 */
export class ResultWriter {
  readonly #store: PgStore;
  readonly #job: string;
  readonly #counters: JobCounters;
  #waiting: Waiting[] = [];
  #bytes = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Statements under way. */
  readonly #writing = new Set<Promise<void>>();
  /** Outcomes queued or being written. */
  #unwritten = 0;
  /** Attempts waiting for the unwritten outcomes to go below {@link MAX_UNWRITTEN}. */
  readonly #roomWaiters: (() => void)[] = [];
  /** Lines written final, not counted yet. */
  #uncounted: FinishedLine[] = [];
  #countTimer: NodeJS.Timeout | undefined;
  #counting: Promise<void> = Promise.resolve();

  /** With `--cookies`: the worker's jars, saved with each batch of outcomes. */
  readonly #cookies: HostCookieJars | undefined;

  constructor(store: PgStore, job: string, counters: JobCounters, cookies?: HostCookieJars) {
    this.#store = store;
    this.#job = job;
    this.#counters = counters;
    this.#cookies = cookies;
  }

  /**
   * Queues an outcome; resolves once it is written (true) or found already written by another
   * execution of the line (false); rejects when the store failed for good.
   */
  write(write: EncodedWrite, host: string, options: { now?: boolean } = {}): Promise<boolean> {
    const written = new Promise<boolean>((resolve, reject) => {
      this.#waiting.push({ write, host, resolve, reject });
    });
    this.#bytes += write.body?.length ?? 0;
    this.#unwritten++;
    if (options.now || this.#waiting.length >= WRITE_BATCH || this.#bytes >= WRITE_BYTES)
      this.#flush();
    else this.#timer ??= setTimeout(() => this.#flush(), WRITE_DELAY_MS);
    return written;
  }

  /** Writes what waits now. */
  #flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#waiting.length) return;
    const batch = this.#waiting;
    this.#waiting = [];
    this.#bytes = 0;
    const writing = this.#write(batch).finally(() => this.#writing.delete(writing));
    this.#writing.add(writing);
  }

  /** Whether a new attempt may start now (see {@link room}). */
  hasRoom(): boolean {
    return this.#unwritten < MAX_UNWRITTEN && this.#roomWaiters.length === 0;
  }

  /** Resolves when a new attempt may start: fewer than {@link MAX_UNWRITTEN} outcomes unwritten. */
  room(): Promise<void> {
    if (this.hasRoom()) return Promise.resolve();
    return new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
  }

  #written(count: number): void {
    this.#unwritten -= count;
    while (this.#unwritten < MAX_UNWRITTEN && this.#roomWaiters.length)
      (this.#roomWaiters.shift() as () => void)();
  }

  async #write(batch: Waiting[]): Promise<void> {
    let written: Set<number>;
    try {
      // The jars first: an outcome written is never ahead of the cookies its response set.
      const jars = this.#cookies?.takeChanged();
      if (jars?.length) await this.#store.saveCookieJars(this.#job, jars);
      written = await recordEncoded(
        this.#store,
        this.#job,
        batch.map((w) => w.write),
      );
    } catch (error) {
      this.#written(batch.length);
      for (const w of batch) w.reject(error);
      return;
    }
    this.#written(batch.length);
    for (const w of batch) {
      const state = w.write.state;
      if (written.has(w.write.line) && state !== 'pending')
        this.#uncounted.push({ line: w.write.line, host: w.host, state });
    }
    // Counted after the write: a crash in between leaves lines uncounted until the job is
    // finished (then the counters are made good from the store).
    if (this.#uncounted.length >= COUNT_BATCH) this.#count();
    else this.#countTimer ??= setTimeout(() => this.#count(), COUNT_EVERY_MS);
    for (const w of batch) w.resolve(written.has(w.write.line));
  }

  /** Counts the lines written final since the last count (one round trip). */
  #count(): void {
    if (this.#countTimer) clearTimeout(this.#countTimer);
    this.#countTimer = undefined;
    if (!this.#uncounted.length) return;
    const lines = this.#uncounted;
    this.#uncounted = [];
    this.#counting = this.#counting.then(() => this.#counters.finishedMany(lines)).catch(() => {});
  }

  /** Writes everything queued and waits for every write under way. */
  async drain(): Promise<void> {
    this.#flush();
    while (this.#writing.size) await Promise.all([...this.#writing]);
    this.#count();
    await this.#counting;
  }
}
