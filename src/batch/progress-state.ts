/** A snapshot of a running batch, for progress bars and logs. */
export interface BatchProgress {
  /** Lines recorded in the journal so far (grows while the input is still being read). */
  readonly total: number;
  /** True once the whole input has been read: `total` is final. */
  readonly inputComplete: boolean;
  readonly pending: number;
  readonly inFlight: number;
  readonly done: number;
  readonly failed: number;
  readonly invalid: number;
  /** Pending lines that already had an attempt: scheduled retries. */
  readonly retrying: number;
  /** done + failed + invalid. */
  readonly finished: number;
  /** Attempts made by this run. */
  readonly attempts: number;
  /** Lines finished per second recently (this run). */
  readonly ratePerSecond: number;
  /** Estimated time to finish, ms; undefined while unknown. */
  readonly etaMs: number | undefined;
  /** Since this run started, ms. */
  readonly elapsedMs: number;
  /** True once a stop was asked for (Ctrl-C): in-flight attempts are finishing. */
  readonly stopping: boolean;
}

/** An attempt that failed and was rescheduled. */
export interface BatchRetryEvent {
  /** The input line number. */
  readonly line: number;
  readonly key: string | undefined;
  readonly method: string;
  /** The line's URL, credentials shown as `***@` (events are for printing). */
  readonly url: string;
  /** The attempt that failed, from 1. */
  readonly attempt: number;
  /** The most attempts the policy allows (`Infinity` when unbounded). */
  readonly maxAttempts: number;
  /** The status it got, if any. */
  readonly status: number | undefined;
  /** The error code, when it failed without a status. */
  readonly errorCode: string | undefined;
  /** One line about the failure. */
  readonly message: string;
  readonly delayMs: number;
  readonly delaySource: 'retry-after' | 'backoff';
  /**
   * The host held the line (it was rate limiting, or down): the attempt did not spend a retry.
   */
  readonly held: boolean;
  /** When the line is due again, epoch ms. */
  readonly nextAttemptAt: number;
}

/** Lines finished per second over a sliding window of samples. */
export class RateMeter {
  readonly #windowMs: number;
  readonly #samples: { at: number; value: number }[] = [];

  constructor(windowMs = 10_000) {
    this.#windowMs = windowMs;
  }

  /** Records that `value` lines were finished at `at` (ms, monotonic). */
  sample(at: number, value: number): void {
    this.#samples.push({ at, value });
    while (this.#samples.length > 2 && (this.#samples[0]?.at ?? at) < at - this.#windowMs)
      this.#samples.shift();
  }

  /** Per second, over the window. */
  rate(): number {
    const first = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    if (!first || !last || last.at <= first.at) return 0;
    return ((last.value - first.value) * 1000) / (last.at - first.at);
  }
}
