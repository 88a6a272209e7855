import type { Readable } from 'node:stream';
import { formatDuration } from '../retry/describe.js';
import { type LongTimer, setLongTimeout } from '../retry/timer.js';
import { AttemptTimeoutError } from './errors.js';
import { BUFFERED_ATTEMPT_TIMEOUT_MS } from './timeouts.js';

/** What the attempt deadline's error names. */
export interface AttemptTarget {
  readonly method: string;
  readonly url: string;
  readonly attempt: number;
}

/**
 * The signal and the deadline of one attempt (`timeout.attempt`): from the moment it is sent
 * until its body has been read, drained or destroyed. When the deadline passes, the attempt's
 * signal aborts with an {@link AttemptTimeoutError}: undici then fails the pending request, or
 * destroys the body being read with that error.
 *
 * Without an explicit `timeout.attempt`, the deadline is {@link BUFFERED_ATTEMPT_TIMEOUT_MS} and
 * soft: a body handed out as a stream drops it (a long download is the caller's to bound).
 */
export class AttemptDeadline {
  /** Aborts with the caller's reason, the total deadline's, or this attempt's timeout. */
  readonly signal: AbortSignal;
  readonly #controller = new AbortController();
  readonly #soft: boolean;
  #timer: LongTimer | undefined;
  #headArrived = false;

  constructor(
    parent: AbortSignal | undefined,
    attemptMs: number | undefined,
    target: AttemptTarget,
  ) {
    this.signal = parent
      ? AbortSignal.any([parent, this.#controller.signal])
      : this.#controller.signal;
    this.#soft = attemptMs === undefined;
    const ms = attemptMs ?? BUFFERED_ATTEMPT_TIMEOUT_MS;
    if (!Number.isFinite(ms)) return;
    this.#timer = setLongTimeout(() => {
      this.#timer = undefined;
      const phase = this.#headArrived ? 'body' : 'headers';
      this.#controller.abort(
        new AttemptTimeoutError(
          `${target.method} ${target.url}: attempt ${target.attempt} was still ${phase === 'body' ? 'reading the body' : 'waiting for the response'} after ${formatDuration(ms)}, its deadline (timeout.attempt${this.#soft ? ', the default for a body read whole' : ''})`,
          {
            method: target.method,
            url: target.url,
            attempts: target.attempt,
            phase,
            timeoutMs: ms,
          },
        ),
      );
    }, ms).unref();
  }

  /** The response head arrived: the deadline now runs until `body` closes. */
  headArrived(body: Readable): void {
    this.#headArrived = true;
    if (!this.#timer) return;
    if (body.closed || body.destroyed) this.end();
    else body.once('close', () => this.end());
  }

  /** The body is handed out as a stream: a default (soft) deadline no longer applies. */
  streamed(): void {
    if (this.#soft) this.end();
  }

  /** The attempt is over: it failed, or its body was read, drained or destroyed. */
  end(): void {
    this.#timer?.clear();
    this.#timer = undefined;
  }
}
