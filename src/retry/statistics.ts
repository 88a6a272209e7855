/** How the most recent run of a `Retrying` went. */
export interface RunStatistics {
  /** Attempts made so far in that run. */
  readonly attempts: number;
  /** Milliseconds from the first attempt's start to the end of the run (or to now, if running). */
  readonly elapsedMs: number;
  /** Milliseconds slept in that run. */
  readonly idleMs: number;
  /** How it ended. */
  readonly outcome: 'running' | 'succeeded' | 'failed' | 'gave-up' | 'aborted';
}

/**
 * Counters of a `Retrying` (and of the functions it wrapped or decorated), since it was created
 * or last reset. Read with `retrying.statistics`; each read is a frozen snapshot.
 */
export interface RetryStatistics {
  /** Runs started. */
  readonly calls: number;
  /** Attempts made, over all runs. */
  readonly attempts: number;
  /** Sleeps taken, i.e. attempts that were followed by another one. */
  readonly retries: number;
  /** Runs that returned a value (including `onGiveUp` results). */
  readonly successes: number;
  /** Runs that threw, giving up or not. */
  readonly failures: number;
  /** Runs ended by the stop strategy. */
  readonly giveUps: number;
  /** Runs ended by their abort signal. */
  readonly aborts: number;
  /** Milliseconds slept, over all runs. */
  readonly idleMs: number;
  /** The most recently started run, if any. */
  readonly lastRun: RunStatistics | undefined;
}

/** Mutable counters behind the snapshots. One per `Retrying`; runs report into it. */
export class StatisticsRecorder {
  calls = 0;
  attempts = 0;
  retries = 0;
  successes = 0;
  failures = 0;
  giveUps = 0;
  aborts = 0;
  idleMs = 0;
  last: MutableRun | undefined;

  begin(startedAt: number): MutableRun {
    this.calls++;
    const run: MutableRun = {
      attempts: 0,
      startedAt,
      endedAt: undefined,
      idleMs: 0,
      outcome: 'running',
    };
    this.last = run;
    return run;
  }

  snapshot(now: number): RetryStatistics {
    const last = this.last;
    return Object.freeze({
      calls: this.calls,
      attempts: this.attempts,
      retries: this.retries,
      successes: this.successes,
      failures: this.failures,
      giveUps: this.giveUps,
      aborts: this.aborts,
      idleMs: this.idleMs,
      lastRun: last
        ? Object.freeze({
            attempts: last.attempts,
            elapsedMs: (last.endedAt ?? now) - last.startedAt,
            idleMs: last.idleMs,
            outcome: last.outcome,
          })
        : undefined,
    });
  }
}

export interface MutableRun {
  attempts: number;
  startedAt: number;
  endedAt: number | undefined;
  idleMs: number;
  outcome: RunStatistics['outcome'];
}
