import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Session } from '../http/session.js';
import { timeoutOptionOf } from '../http/timeouts.js';
import { clampTimerMs, type LongTimer, setLongTimeout } from '../retry/timer.js';
import { attemptOnce, keepIfFinal } from './attempt.js';
import { BodyStore } from './bodies.js';
import { releaseController, takeController } from './controllers.js';
import { HostCookieJars } from './cookie-jars.js';
import type { AttemptResult, DecisionLimits } from './decide.js';
import { decide, hostSignalOf } from './decide.js';
import type { ResponseHeaderFields } from './header-fields.js';
import { type HostsMessage, hostsChannel } from './host-events.js';
import { ingest } from './ingest.js';
import { describeInput } from './input.js';
import type { ClaimedLine, Journal, LineUpdate, StateCounts } from './journal.js';
import type { HistoryEntry } from './journal-schema.js';
import type { BatchOptions, ResolvedBatchOptions } from './options.js';
import { maxAttemptsOf, outcomeOf, retryEventOf } from './outcome.js';
import { type BatchProgress, RateMeter } from './progress-state.js';
import { Scheduler } from './scheduler.js';

/** How a run ended. */
export type BatchEnd =
  /** Every line is finished (done, failed or invalid). */
  | 'complete'
  /** Stopped by the signal (Ctrl-C); running again resumes. */
  | 'interrupted'
  /** Only lines scheduled beyond `maxWait` are left; running again later resumes them. */
  | 'deferred';

/** Outcomes are committed at least this often (ms): the most a crash can lose. */
const FLUSH_MS = 50;
/**
 * Updates of fresh lines (no row yet: no refill reads them) are written when this many are
 * waiting, or at the latest FLUSH_MS after the first: one commit for hundreds of lines, where a
 * commit for each refill (a few dozen) cost about 2 µs a line more, and one for every 256 about
 * 0.5 µs more (the journal's own time, in process on 2 × Intel Xeon). At the rates of a real
 * server the timer comes first.
 */
const WRITE_BATCH = 1024;
/**
 * An attempt's start is written once it has run this long (ms), with the next writes: within
 * twice that of the start. Most attempts end sooner, and are written once, with their outcome.
 */
const START_WRITE_MS = 50;

/** The history of a line never retried (shared: a decision copies it before adding to it). */
const NO_HISTORY: readonly HistoryEntry[] = Object.freeze([]);
/** What a host's answer adds to a decision's limits: nothing. */
const NO_HOST_SIGNAL: { hostOpenAt?: number; hostDownUntil?: number } = Object.freeze({});

/**
 * One run over one journal: reads the input into it, starts attempts as slots free up,
 * and records outcomes. All journal writes happen in one place (`#pump`), one transaction per
 * turn, whatever the number of outcomes and claims in it.
 */
export class BatchRun {
  readonly #journal: Journal;
  readonly #options: BatchOptions;
  readonly #o: ResolvedBatchOptions;
  readonly #session: Session;
  readonly #bodies: BodyStore;
  readonly #scheduler: Scheduler;
  readonly #maxAttempts: number;
  readonly #counts: StateCounts;
  readonly #inFlight = new Set<number>();
  /** Lines the last runner left in flight: counted at once when they start. */
  readonly #suspects: Set<number>;
  readonly #stopController = takeController();
  readonly #attemptsController = takeController();
  readonly #meter = new RateMeter();
  readonly #startedAt = performance.now();
  #updates: LineUpdate[] = [];
  /**
   * Updates of `#updates` of lines that have a row: written before the next refill, which would
   * read those lines as they were.
   */
  #rowUpdates = 0;
  /** The flush timer fired: the next turn writes. */
  #flushNow = false;
  /** Lines whose outcome is in the batch being written (see `#write`); reused. */
  readonly #ended = new Set<number>();
  /** Lines released in the batch being written (see `#write`); reused. */
  readonly #released = new Set<number>();
  #pumpQueued = false;
  #dirty = true;
  /**
   * The last refill found no due line: until something changes (an outcome, new input, a timer
   * for the next due line), asking for another would only spin the event loop.
   */
  #dry = false;
  /** The next wake-up: it may be weeks away (a long Retry-After), so a chained timer. */
  #timer: LongTimer | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #flushTimer: NodeJS.Timeout | undefined;
  /** With `cookies`: the hosts' jars. */
  readonly #cookies: HostCookieJars | undefined;
  #graceTimer: LongTimer | undefined;
  #ingesting = false;
  #stopping = false;
  #fatal: unknown;
  #attempts = 0;
  #end: BatchEnd | undefined;
  #resolveEnd: (end: BatchEnd) => void = () => {};
  /** What {@link Scheduler.next} writes the next wake-up into (one object for the run). */
  readonly #wake = { at: Number.POSITIVE_INFINITY };
  /** The decision's limits when the host gave no signal (one object for the run). */
  readonly #limits: DecisionLimits;
  /** Encodes a final response's headers as the outcome is made (see `outcomeOf`). */
  readonly #encodeHeaders: (headers: ResponseHeaderFields) => string;

  /**
   * @param suspects - lines the last runner left in flight (it died): their attempts are counted
   *   as unfinished at once when they start (see `#markStarted`)
   */
  constructor(
    journal: Journal,
    options: BatchOptions,
    resolved: ResolvedBatchOptions,
    suspects: Iterable<number> = [],
  ) {
    this.#journal = journal;
    this.#suspects = new Set(suspects);
    this.#options = options;
    this.#o = resolved;
    // Lines are independent and run in parallel: by default no cookie of one line goes with
    // another's; with `cookies`, each host's lines share its jar (kept in the journal).
    this.#cookies = resolved.cookies
      ? new HostCookieJars((host) => journal.cookieJar(host))
      : undefined;
    this.#session = new Session({
      retry: false,
      logger: false,
      cookies: this.#cookies ?? false,
      ...(resolved.http2 && { http2: true }),
      ...(options.tls !== undefined && { tls: options.tls }),
      timeout: timeoutOptionOf(resolved.timeouts),
      ...(resolved.maxBodySize !== undefined && { maxBodySize: resolved.maxBodySize }),
      ...(options.headers !== undefined && { headers: options.headers }),
      ...(options.dispatcher !== undefined && { dispatcher: options.dispatcher }),
      ...(options.proxies !== undefined && { proxies: options.proxies }),
    });
    this.#bodies = new BodyStore(options.bodies ?? 'db');
    // A claimed line stays pending in the journal until its start or outcome is written (one
    // UPDATE less per line: most lines start and end between two writes).
    this.#scheduler = new Scheduler(journal, resolved, { claimInJournal: false });
    this.#maxAttempts = maxAttemptsOf(resolved.policy);
    this.#limits = {
      maxRetryAfterMs: resolved.maxRetryAfter,
      giveUpAfterMs: resolved.giveUpAfter,
    };
    this.#counts = journal.counts();
    this.#encodeHeaders = (headers) => journal.encodeHeaders(headers);
    // Every attempt in flight listens to this one signal.
    setMaxListeners(0, this.#attemptsController.signal);
  }

  /** Runs until every line is finished, a stop, or only far-off lines are left. */
  async run(): Promise<{ end: BatchEnd; attempts: number; elapsedMs: number }> {
    const journal = this.#journal;
    const options = this.#options;
    if (options.input !== undefined) journal.setMeta('input', describeInput(options.input));
    journal.setMeta('bodies', this.#bodies.describe());
    journal.setMeta('last_run_at', new Date().toISOString());
    // The lines this run reads get their rows with their first start or outcome.
    journal.deferRows(true);
    for (const [name, value] of Object.entries(options.meta ?? {})) journal.setMeta(name, value);
    const ended = new Promise<BatchEnd>((resolve) => {
      this.#resolveEnd = resolve;
    });
    const onAbort = (): void => this.stop();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const progressTimer = options.onProgress
      ? setInterval(() => this.#report(), clampTimerMs(this.#o.progressIntervalMs))
      : undefined;
    let ingestion: Promise<unknown> = Promise.resolve();
    if (options.input !== undefined && !options.signal?.aborted) {
      this.#ingesting = true;
      ingestion = ingest(journal, options.input, this.#stopController.signal, (added) => {
        this.#counts.pending += added.pending;
        this.#counts.invalid += added.invalid;
        this.#changed();
      })
        .catch((error: unknown) => this.#failWith(error))
        .finally(() => {
          this.#ingesting = false;
          this.#changed();
        });
    }
    if (options.signal?.aborted) this.stop();
    this.#queuePump();
    const end = await ended;
    clearInterval(progressTimer);
    // A run that ends with its input still being read (a stop, a deferred end) stops reading it.
    if (this.#ingesting) this.#stopController.abort();
    await ingestion;
    this.#clearTimers();
    this.#journal.transaction(() => this.#write());
    // The lines read and not attempted become pending rows, as between runs.
    this.#journal.deferRows(false);
    await this.#session.close();
    options.signal?.removeEventListener('abort', onAbort);
    releaseController(this.#stopController);
    releaseController(this.#attemptsController);
    if (this.#fatal !== undefined) throw this.#fatal;
    this.#report();
    return { end, attempts: this.#attempts, elapsedMs: performance.now() - this.#startedAt };
  }

  /** Graceful stop: no new attempts; in-flight ones get `graceMs`, then are cut off. */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#stopController.abort();
    for (const line of this.#scheduler.drainReady()) this.#release(line);
    if (this.#inFlight.size > 0)
      this.#graceTimer = setLongTimeout(() => this.#attemptsController.abort(), this.#o.graceMs);
    this.#queuePump();
  }

  #failWith(error: unknown): void {
    this.#fatal ??= error;
    this.stop();
    this.#attemptsController.abort();
  }

  #clearTimers(): void {
    this.#timer?.clear();
    clearTimeout(this.#flushTimer);
    this.#graceTimer?.clear();
    this.#timer = undefined;
    this.#flushTimer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  /** New work may be reachable: refill soon. */
  #changed(): void {
    this.#dirty = true;
    this.#dry = false;
    this.#scheduler.uncrowd();
    this.#queuePump();
  }

  #queuePump(): void {
    if (this.#pumpQueued || this.#end !== undefined) return;
    this.#pumpQueued = true;
    setImmediate(() => {
      this.#pumpQueued = false;
      try {
        this.#pump();
      } catch (error) {
        this.#failWith(error);
        this.#finishIfIdle();
      }
    });
  }

  /**
   * Records the buffered outcomes (inside a transaction). A claimed line is not marked in the
   * journal: it stays `pending` there until its start (which marks it `in_flight`) or its
   * outcome is written, and a refill, which always follows the writes, reads past the lines
   * waiting in the ready queue. An attempt that started and ended within the same batch has its
   * start left out: its outcome, in the same transaction, sets the unfinished count the start
   * would have raised back to 0 (a line is claimed only after the previous batch is written, so
   * a batch never holds the start of one attempt and the outcome of another of the same line).
   * The start of a fresh line's attempt (a line with no row yet, which no refill reads) that
   * began less than {@link START_WRITE_MS} ago waits for a later batch: most attempts end before
   * that, and their line's row is then written once, with the outcome. Unless the line is
   * released in this batch: a release undoes a start written before it. The start of a line
   * that has a row is written with the next batch, as the refill that follows reads past it.
   */
  #write(now = Date.now()): void {
    // The jars first: an outcome committed is never ahead of the cookies its response set.
    if (this.#cookies) this.#journal.saveCookieJars(this.#cookies.takeChanged());
    const updates = this.#updates;
    if (updates.length === 0) return;
    this.#updates = [];
    this.#rowUpdates = 0;
    const ended = this.#ended;
    const released = this.#released;
    ended.clear();
    released.clear();
    for (const update of updates)
      if (update.kind === 'released') released.add(update.line);
      else if (update.kind !== 'started') ended.add(update.line);
    const written: LineUpdate[] = [];
    for (const update of updates) {
      if (update.kind === 'started' && !released.has(update.line)) {
        if (ended.has(update.line)) continue;
        if (update.fresh && update.at !== undefined && now - update.at < START_WRITE_MS) {
          this.#updates.push(update);
          continue;
        }
      }
      written.push(update);
    }
    this.#journal.recordAll(written);
  }

  /**
   * One turn: record outcomes and claim due lines in one transaction, then start what can. The
   * outcomes are left for a later turn (within FLUSH_MS) when all of them are of fresh lines,
   * fewer than WRITE_BATCH, and attempts are in flight (an idle runner decides what is left to
   * do from the journal).
   */
  #pump(): void {
    if (this.#end !== undefined) return;
    const write =
      this.#flushNow ||
      this.#stopping ||
      this.#rowUpdates > 0 ||
      this.#updates.length >= WRITE_BATCH ||
      this.#inFlight.size === 0;
    if (write) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
      this.#flushNow = false;
      // Outcomes left by earlier turns may make lines due (a retry): read them this turn.
      if (this.#updates.length > 0) {
        this.#dirty = true;
        this.#dry = false;
      }
    }
    const now = Date.now();
    let wake = Number.POSITIVE_INFINITY;
    const refill = !this.#stopping && this.#dirty && this.#counts.pending > 0;
    this.#dirty = false;
    const turn = (): void => {
      if (write) this.#write(now);
      if (refill) {
        const { claimed, wake: at } = this.#scheduler.refill(now);
        this.#dry = claimed.length === 0;
        wake = at;
        for (const line of claimed) {
          this.#counts.pending--;
          this.#counts.in_flight++;
          if (line.attempts > 0) this.#counts.retrying--;
        }
      }
    };
    // A refill's reads in the turn's transaction too: SQLite takes its file locks (a system
    // call each) once for the turn, not for each statement.
    if (write || refill) this.#journal.transaction(turn);
    else turn();
    // Updates left for a later turn (see `#write`), and starts left for a later batch.
    if (this.#updates.length > 0) this.#armFlush();
    wake = Math.min(wake, this.#startReady(now));
    if (this.#finishIfIdle()) return;
    if (this.#stopping) return;
    const idle = this.#inFlight.size === 0 && this.#scheduler.readyCount === 0;
    if (this.#counts.pending > 0 && this.#inFlight.size < this.#o.concurrency) {
      const due = this.#journal.nextDueAt(
        this.#scheduler.readyCount > 0 ? this.#scheduler.readyLines() : undefined,
      );
      if (due !== undefined && due > now) {
        if (idle && !this.#ingesting && wake === Number.POSITIVE_INFINITY) {
          if (due - now > this.#o.maxWait) {
            this.#finish('deferred');
            return;
          }
        }
        wake = Math.min(wake, due);
      } else if (due !== undefined && idle) {
        // Due lines and nothing running: a safety net, so a run can never stall.
        wake = Math.min(wake, now + 50);
      }
    }
    if (wake !== Number.POSITIVE_INFINITY) this.#wakeAt(wake, now);
  }

  /** Starts ready lines while slots are free; returns when a rate-limited one may start. */
  #startReady(now: number): number {
    const wake = this.#wake;
    wake.at = Number.POSITIVE_INFINITY;
    while (this.#inFlight.size < this.#o.concurrency && !this.#stopping) {
      const line = this.#scheduler.next(now, wake);
      if (!line) break;
      this.#markStarted(line, now);
      this.#launch(line);
    }
    if (this.#scheduler.wantsRefill && this.#counts.pending > 0 && !this.#dry) {
      this.#dirty = true;
      this.#queuePump();
    }
    return wake.at;
  }

  /** Writes the updates waiting within FLUSH_MS (a timer, unless one is armed). */
  #armFlush(): void {
    this.#flushTimer ??= setTimeout(() => {
      this.#flushTimer = undefined;
      this.#flushNow = true;
      this.#queuePump();
    }, FLUSH_MS);
  }

  #wakeAt(at: number, now: number): void {
    if (this.#timer && this.#timerAt <= at) return;
    this.#timer?.clear();
    this.#timerAt = at;
    this.#timer = setLongTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = Number.POSITIVE_INFINITY;
        this.#changed();
      },
      Math.max(0, at - now),
    );
  }

  /**
   * Counts the line's attempt as unfinished (no poison lines). A line that was in flight when
   * the last runner died is counted at once, in its own transaction, before its request goes
   * out: if it kills this runner too, that counts even when it does so at once. Any other line
   * is counted with the next turn's writes (within FLUSH_MS), which costs no commit per attempt;
   * a line read by this run, once its attempt has run START_WRITE_MS (see `#write`).
   */
  #markStarted(line: ClaimedLine, now: number): void {
    const update = {
      kind: 'started',
      line: line.line,
      at: now,
      fresh: line.fresh ? line : undefined,
    } as const;
    if (this.#suspects.delete(line.line)) {
      this.#journal.record(update);
      return;
    }
    this.#updates.push(update);
    if (!update.fresh) this.#rowUpdates++;
    this.#armFlush();
  }

  #release(line: ClaimedLine, started = false): void {
    this.#updates.push({
      kind: 'released',
      line: line.line,
      started,
      fresh: line.fresh ? line : undefined,
    });
    if (!line.fresh) this.#rowUpdates++;
    this.#counts.in_flight--;
    this.#counts.pending++;
    if (line.attempts > 0) this.#counts.retrying++;
  }

  /** Starts the line's attempt (its failure fails the run: see `#attempt`). */
  #launch(line: ClaimedLine): void {
    this.#inFlight.add(line.line);
    void this.#attempt(line);
  }

  /** The line leaves the in-flight set (its slot and host slot are free). */
  #settle(line: ClaimedLine): void {
    if (!this.#inFlight.delete(line.line)) return;
    this.#scheduler.finished(line.host);
  }

  /**
   * After an outcome: start the next ready line now; commit outcomes within FLUSH_MS. `now`: the
   * time, when the caller has just read the clock.
   */
  #afterOutcome(now = Date.now()): void {
    this.#dirty = true;
    this.#dry = false;
    const wake = this.#startReady(now);
    if (wake !== Number.POSITIVE_INFINITY) this.#wakeAt(wake, now);
    if (this.#stopping || this.#inFlight.size === 0) this.#queuePump();
    else this.#armFlush();
  }

  /**
   * One attempt of the line, and its outcome. A failure of its own (a body file not written...)
   * fails the run: caught here, where a `.catch` on its promise would cost a closure and a
   * promise a line.
   */
  async #attempt(line: ClaimedLine): Promise<void> {
    try {
      const headers = line.requestHeaders
        ? (JSON.parse(line.requestHeaders) as Record<string, string>)
        : undefined;
      const sentAt = Date.now();
      const result = await attemptOnce(
        this.#session,
        { url: line.url, method: line.method, headers, body: line.requestBody ?? undefined },
        this.#attemptsController.signal,
        this.#bodies,
      );
      if (!result) {
        this.#settle(line);
        this.#release(line, true);
        this.#afterOutcome();
        return;
      }
      const now = Date.now();
      const host = this.#hostSignal(line.host, result, now, sentAt);
      const history = line.history ? (JSON.parse(line.history) as HistoryEntry[]) : NO_HISTORY;
      const decision = decide(
        this.#o.policy,
        {
          method: line.method,
          url: line.url,
          replaySafe: headers?.['idempotency-key'] !== undefined,
          history,
          firstAttemptAt: line.firstAttemptAt ?? sentAt,
        },
        result,
        now,
        host === NO_HOST_SIGNAL ? this.#limits : Object.assign({}, this.#limits, host),
      );
      const isFinal = decision.state !== 'pending';
      // A body held in memory or only counted is kept at once (no promise to wait for).
      const keeping = keepIfFinal(result, isFinal, line.line);
      const waits = keeping instanceof Promise;
      const stored = waits ? await keeping : keeping;
      this.#settle(line);
      this.#attempts++;
      this.#updates.push(
        outcomeOf(
          line.line,
          sentAt,
          decision,
          result,
          stored,
          line.attempts + 1,
          now,
          line.fresh ? line : undefined,
          this.#encodeHeaders,
        ),
      );
      if (!line.fresh) this.#rowUpdates++;
      this.#counts.in_flight--;
      if (decision.state === 'pending') {
        this.#counts.pending++;
        this.#counts.retrying++;
        this.#options.onRetry?.(
          retryEventOf(line, line.attempts + 1, this.#maxAttempts, decision, result),
        );
      } else {
        this.#counts[decision.state]++;
      }
      // The clock read for the outcome is still now, unless a body file was waited for or
      // `onRetry` ran.
      this.#afterOutcome(waits || decision.state === 'pending' ? undefined : now);
    } catch (error) {
      this.#failWith(error);
      this.#settle(line);
      this.#queuePump();
    }
  }

  /**
   * Tells the line's host what the attempt got: a throttle pauses the host and lowers its pace
   * (`hostOpenAt`: when it takes requests again), a failure that may be the host's counts
   * towards an outage (`hostDownUntil`: when it is probed again, while it is down), an answer
   * lets its pace grow.
   */
  #hostSignal(
    host: string,
    result: AttemptResult,
    now: number,
    sentAt: number,
  ): { hostOpenAt?: number; hostDownUntil?: number } {
    const hosts = this.#scheduler.hosts;
    const signal = hostSignalOf(result, now, this.#o.maxRetryAfter);
    if (signal.kind === 'failure') {
      const hostDownUntil = hosts.failed(host, now, sentAt);
      return hostDownUntil === undefined ? NO_HOST_SIGNAL : { hostDownUntil };
    }
    if (signal.kind === 'throttle')
      return { hostOpenAt: hosts.throttled(host, now, sentAt, signal.retryAfterMs) };
    if (signal.kind === 'answer') hosts.answered(host, now, sentAt);
    return NO_HOST_SIGNAL;
  }

  /** Ends the run when nothing is left to do now; true if it ended. */
  #finishIfIdle(): boolean {
    if (this.#end !== undefined) return true;
    if (this.#inFlight.size > 0 || this.#scheduler.readyCount > 0) return false;
    if (this.#stopping) {
      if (this.#ingesting) return false;
      this.#finish('interrupted');
      return true;
    }
    if (!this.#ingesting && this.#counts.pending === 0) {
      this.#finish('complete');
      return true;
    }
    return false;
  }

  #finish(end: BatchEnd): void {
    if (this.#end !== undefined) return;
    this.#end = end;
    this.#graceTimer?.clear();
    this.#resolveEnd(end);
  }

  #report(): void {
    const onProgress = this.#options.onProgress;
    if (!onProgress) return;
    if (hostsChannel.hasSubscribers)
      hostsChannel.publish({
        job: undefined,
        hosts: this.#scheduler.hosts.snapshot(Date.now()),
      } satisfies HostsMessage);
    const c = this.#counts;
    const finished = c.done + c.failed + c.invalid;
    const now = performance.now();
    this.#meter.sample(now, finished);
    const rate = this.#meter.rate();
    const left = c.pending + c.in_flight;
    const progress: BatchProgress = {
      total: finished + left,
      inputComplete: !this.#ingesting,
      pending: c.pending + this.#scheduler.readyCount,
      inFlight: this.#inFlight.size,
      done: c.done,
      failed: c.failed,
      invalid: c.invalid,
      retrying: c.retrying,
      finished,
      attempts: this.#attempts,
      ratePerSecond: rate,
      etaMs: left === 0 ? 0 : rate > 0 && !this.#ingesting ? (left / rate) * 1000 : undefined,
      elapsedMs: now - this.#startedAt,
      stopping: this.#stopping,
    };
    onProgress(progress);
  }
}
