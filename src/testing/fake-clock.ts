import type { Clock } from '../retry/clock.js';

/** Options of {@link FakeClock}. */
export interface FakeClockOptions {
  /**
   * The time `now()` starts at, in milliseconds.
   * @default 0
   */
  now?: number;
  /**
   * Resolve every sleep at once, moving the clock forward by its duration: retry code runs at
   * full speed while seeing time pass as it would. Off: sleeps wait for `advance()` or `runAll()`.
   * @default false
   */
  autoAdvance?: boolean;
}

interface Timer {
  at: number;
  seq: number;
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * A clock under the test's control, for the `clock` option of `retry()`, `Retrying` and
 * `Session`: no test ever waits for real time.
 *
 * @example
 * const clock = new FakeClock();
 * const pending = retry(flaky, { clock, wait: wait.fixed(1000) });
 * await clock.advance(1000); // the retry happens now
 * // or: const clock = new FakeClock({ autoAdvance: true }) and just await the call.
 */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: Timer[] = [];
  readonly #autoAdvance: boolean;
  readonly #sleeps: number[] = [];

  constructor(options: FakeClockOptions = {}) {
    const start = options.now ?? 0;
    if (typeof start !== 'number' || !Number.isFinite(start)) {
      throw new TypeError(`FakeClock: now must be a finite number, got ${String(start)}`);
    }
    this.#now = start;
    this.#autoAdvance = options.autoAdvance === true;
  }

  now(): number {
    return this.#now;
  }

  /** Every duration passed to `sleep()`, in order. */
  get sleeps(): readonly number[] {
    return [...this.#sleeps];
  }

  /** Sleeps not yet resolved. */
  get pending(): number {
    return this.#timers.length;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 0) {
      return Promise.reject(
        new TypeError(`FakeClock.sleep: ms must be a non-negative number, got ${String(ms)}`),
      );
    }
    this.#sleeps.push(ms);
    if (this.#autoAdvance) {
      this.#now += ms;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const timer: Timer = {
        at: this.#now + ms,
        seq: this.#seq++,
        resolve,
        reject,
        signal,
        onAbort: undefined,
      };
      if (signal) {
        timer.onAbort = () => {
          this.#remove(timer);
          reject(signal.reason);
        };
        signal.addEventListener('abort', timer.onAbort, { once: true });
      }
      this.#timers.push(timer);
    });
  }

  /**
   * Moves time forward by `ms`, resolving every sleep that falls due, in order, and letting the
   * code woken by each one run (and schedule its next sleep) before the next is due.
   */
  async advance(ms: number): Promise<void> {
    if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 0) {
      throw new TypeError(`FakeClock.advance: ms must be a non-negative number, got ${String(ms)}`);
    }
    const target = this.#now + ms;
    for (;;) {
      await flush();
      const next = this.#earliest();
      if (!next || next.at > target) break;
      this.#fire(next);
    }
    this.#now = Math.max(this.#now, target);
    await flush();
  }

  /** Fires the next sleep, whenever it is due; false when none is pending. */
  async runNext(): Promise<boolean> {
    await flush();
    const next = this.#earliest();
    if (!next) return false;
    this.#fire(next);
    await flush();
    return true;
  }

  /**
   * Fires sleeps until none is pending. Throws after `limit` of them: code that sleeps forever
   * (`stop.never` with a permanent failure) is a bug to report, not a test that hangs.
   */
  async runAll(limit = 10_000): Promise<void> {
    for (let fired = 0; await this.runNext(); fired++) {
      if (fired >= limit)
        throw new Error(
          `FakeClock.runAll: still sleeping after ${limit} timers; is something retrying forever?`,
        );
    }
  }

  #earliest(): Timer | undefined {
    let best: Timer | undefined;
    for (const t of this.#timers)
      if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    return best;
  }

  #fire(timer: Timer): void {
    this.#remove(timer);
    if (timer.at > this.#now) this.#now = timer.at;
    if (timer.signal && timer.onAbort) timer.signal.removeEventListener('abort', timer.onAbort);
    timer.resolve();
  }

  #remove(timer: Timer): void {
    const i = this.#timers.indexOf(timer);
    if (i >= 0) this.#timers.splice(i, 1);
  }
}
