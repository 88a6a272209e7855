import { DelayedError, type Job } from 'bullmq';
import type { RetryPolicy } from '../../http/policy.js';
import type { Session } from '../../http/session.js';
import { pause } from '../../retry/timer.js';
import { attemptOnce, type BatchAttempt, keepIfFinal } from '../attempt.js';
import type { BodyStore } from '../bodies.js';
import { type AttemptResult, decide, hostSignalOf } from '../decide.js';
import { type HeldMessage, heldChannel } from '../host-events.js';
import { type HistoryEntry, MAX_CRASHES } from '../journal-schema.js';
import { GIVE_UP_AFTER_MS } from '../options.js';
import { maxAttemptsOf, outcomeOf, retryEventOf } from '../outcome.js';
import type { BatchRetryEvent } from '../progress-state.js';
import type { Admission, FleetGate } from './fleet-gate.js';
import type { JobConfig, LineJitter } from './job-config.js';
import type { HostTurns, LineSlots, LineStarts } from './line-slots.js';
import type { ResultWriter } from './result-writer.js';
import type { JobCounters } from './stats.js';
import type { PgStore } from './store.js';
import { type ChunkLine, encodeWrite, loadChunk } from './store-chunks.js';

/** What a BullMQ job carries: a range of input lines (its pending lines are loaded from the store). */
export interface ChunkData {
  /** The first line of the range (1-based, inclusive). */
  readonly from: number;
  /** The last line of the range (inclusive). */
  readonly to: number;
}

/**
 * A line due again within this long is waited for in-process; one due later is left to the
 * chunk's next run (the chunk goes back to the queue, delayed until its earliest line is due).
 */
export const HOLD_MS = 1000;

/** What a worker shares between the chunks of one job. */
export interface LineContext {
  readonly job: string;
  readonly config: JobConfig;
  readonly policy: RetryPolicy;
  /** A seeded job's jitter: set to the line and attempt before each decision. */
  readonly jitter?: LineJitter | undefined;
  readonly store: PgStore;
  readonly gate: FleetGate;
  readonly counters: JobCounters;
  readonly session: Session;
  readonly bodies: BodyStore;
  readonly writer: ResultWriter;
  /** The worker's concurrency: lines in flight at once, whatever their chunk. */
  readonly slots: LineSlots;
  /** The lines of each host, in turn. */
  readonly turns: HostTurns;
  /** Starts the chunks' lines a few at a time per host. */
  readonly starts: LineStarts;
  readonly workerId: string;
  /** Aborted to cut attempts off (a stop past its grace period). */
  readonly attemptsSignal: AbortSignal;
  readonly onRetry?: ((event: BatchRetryEvent) => void) | undefined;
  readonly onAttempt?: (() => void) | undefined;
  /** Lines of this worker in flight and waiting for a retry (for the heartbeat). */
  readonly load: { inFlight: number; retrying: number };
}

/** How one run of a chunk ended. */
export type ChunkOutcome = { readonly finished: number; readonly left: number };

/** How a line's run in this chunk ended: final, another execution has it, or due again later. */
type LineEnd = 'final' | 'gone' | { readonly dueAt: number };

/** A line as the chunk's run knows it (what the store holds for it, as last written). */
interface LineState {
  attempts: number;
  history: readonly HistoryEntry[];
  nextAttemptAt: number;
  firstAttemptAt: number | null;
}

/**
 * Puts the chunk back as delayed until `at` (then BullMQ wants DelayedError thrown), at priority
 * 0: when it is due, it goes before the fresh chunks (a due retry never waits behind the input).
 */
async function delayUntil(job: Job<ChunkData>, token: string, at: number): Promise<never> {
  if (job.priority !== 0) await job.changePriority({ priority: 0 });
  await job.moveToDelayed(Math.max(Date.now(), Math.ceil(at)), token);
  throw new DelayedError();
}

/** A line whose last attempt failed on its own (not held by its host): a real retry. */
function isRetry(history: readonly HistoryEntry[]): boolean {
  const last = history[history.length - 1];
  return last !== undefined && !last.throttled && !last.down;
}

/** What the host's answer to an attempt meant for it, and when it was taken in. */
interface HostAnswer {
  readonly now: number;
  readonly hostOpenAt: number | undefined;
  readonly hostDownUntil: number | undefined;
}

/**
 * Tells the host's fleet-wide pace and pauses what the attempt got (as the local runner does):
 * when a throttled host opens again, or when a host in an outage is probed again. An answer
 * that is neither (most of them) is taken in at once: no promise.
 */
function hostSignal(
  ctx: LineContext,
  host: string,
  result: AttemptResult,
  now: number,
  sentAt: number,
): HostAnswer | Promise<HostAnswer> {
  const pace = ctx.gate.pace;
  const signal = hostSignalOf(result, now, ctx.config.maxRetryAfter);
  if (signal.kind === 'failure')
    return pace
      .failed(host, now, sentAt)
      .then((hostDownUntil) => ({ now, hostOpenAt: undefined, hostDownUntil }));
  if (signal.kind === 'throttle')
    return pace
      .throttled(host, now, sentAt, signal.retryAfterMs)
      .then((hostOpenAt) => ({ now, hostOpenAt, hostDownUntil: undefined }));
  if (signal.kind === 'answer') pace.answered(host, now, sentAt);
  return { now, hostOpenAt: undefined, hostDownUntil: undefined };
}

/**
 * One run of a chunk: loads its pending lines (one query), runs those due (each: admitted
 * fleet-wide, one request, the same pure `decide()` as the local runner, the outcome written once
 * in a batch), waits in-process for retries due within {@link HOLD_MS}, and puts the chunk back,
 * delayed, while lines are due later.
 *
 * Careful mode: when a worker died with the chunk (BullMQ found it stalled) or a line of it has
 * attempts never recorded, each line's attempt is counted as started before it is sent and its
 * outcome is written at once, so the next death is pinned on the lines in flight: a line in
 * flight when workers died {@link MAX_CRASHES} times fails with `crashed-runner` (the first death,
 * which cannot tell which line it held, counts against every line found in flight after it).
 */
export async function processChunk(
  ctx: LineContext,
  job: Job<ChunkData>,
  token: string,
): Promise<ChunkOutcome> {
  // A job of dogged 0.1 queued one BullMQ job per line: { line, ... }.
  const data = job.data as ChunkData | { readonly line: number };
  const [from, to] = 'line' in data ? [data.line, data.line] : [data.from, data.to];
  const lines = await loadChunk(ctx.store, ctx.job, from, to);
  const died = (job.stalledCounter ?? 0) > 0;
  const careful = died || lines.some((l) => l.unfinished > 0);
  const ends = await ctx.starts.run(
    lines,
    (line) => line.host,
    (line, release) => runLine(ctx, line, careful, died, release),
  );
  let dueAt = Number.POSITIVE_INFINITY;
  let finished = 0;
  let left = 0;
  for (const end of ends) {
    if (end === 'final') finished++;
    else if (end !== 'gone') {
      left++;
      dueAt = Math.min(dueAt, end.dueAt);
    }
  }
  if (left > 0) return delayUntil(job, token, dueAt);
  return { finished, left };
}

/** A line's run within its chunk's run, until it is final or due later than {@link HOLD_MS}. */
async function runLine(
  ctx: LineContext,
  line: ChunkLine,
  careful: boolean,
  chunkDied: boolean,
  /** Lets the chunk start its next line of this host: called when this one stops being fresh. */
  release: () => void,
): Promise<LineEnd> {
  const state: LineState = {
    attempts: line.attempts,
    history: line.history,
    nextAttemptAt: line.nextAttemptAt,
    firstAttemptAt: line.firstAttemptAt,
  };
  const retryingNow = (): boolean => isRetry(state.history);
  let counted = false;
  const waiting = (on: boolean): void => {
    if (on === counted) return;
    counted = on;
    ctx.load.retrying += on ? 1 : -1;
  };
  try {
    for (;;) {
      if (ctx.attemptsSignal.aborted) return { dueAt: Date.now() };
      const now = Date.now();
      if (state.nextAttemptAt - now > HOLD_MS) return { dueAt: state.nextAttemptAt };
      waiting(state.attempts > 0);
      if (state.nextAttemptAt > now) {
        release();
        await pause(state.nextAttemptAt - now, ctx.attemptsSignal).catch(() => {});
        continue;
      }
      const end = await attemptLine(
        ctx,
        line,
        state,
        retryingNow(),
        careful,
        chunkDied,
        () => waiting(false),
        release,
      );
      if (end !== undefined) return end;
    }
  } finally {
    waiting(false);
  }
}

/**
 * One attempt of a due line: a worker slot, fleet-wide admission, the request, the decision and
 * its record. Undefined when the line goes on in this run (`state` then says when it is due).
 */
async function attemptLine(
  ctx: LineContext,
  line: ChunkLine,
  state: LineState,
  retrying: boolean,
  careful: boolean,
  chunkDied: boolean,
  /** The line leaves the waiting ones (`retrying`): its attempt starts. */
  flying: () => void = () => {},
  /** The attempt is answered (or cut off): the chunk may start another line of this host. */
  answered: () => void,
): Promise<LineEnd | undefined> {
  // The host's lines take turns: the line whose turn it is takes a worker slot and waits on
  // the host (the others hold nothing meanwhile), then passes the turn on.
  const turn = ctx.turns.take(line.host);
  const passTurn = typeof turn === 'function' ? turn : await turn;
  let slotHeld = false;
  const freeSlot = (): void => {
    if (slotHeld) ctx.slots.release();
    slotHeld = false;
  };
  let admission: Admission;
  try {
    if (!ctx.slots.tryAcquire()) await ctx.slots.acquire();
    slotHeld = true;
    const admitted = ctx.gate.admit(line.host, {
      isRetry: retrying,
      signal: ctx.attemptsSignal,
    });
    admission = admitted instanceof Promise ? await admitted : admitted;
  } catch (error) {
    freeSlot();
    throw error;
  } finally {
    passTurn();
  }
  if (!admission.ok) {
    // Held by its host (a pause, its slots, its pace, the budget): not an attempt.
    freeSlot();
    if (heldChannel.hasSubscribers)
      heldChannel.publish({
        job: ctx.job,
        host: line.host,
        reason: admission.reason,
      } satisfies HeldMessage);
    state.nextAttemptAt = Math.max(state.nextAttemptAt, admission.until);
    return undefined;
  }
  // Outcomes not yet written bound what a worker that dies has sent without recording.
  if (!ctx.writer.hasRoom()) await ctx.writer.room();
  try {
    if (careful) {
      // Every attempt started and never recorded is a worker that died with the line in
      // flight: past MAX_CRASHES, no poison line.
      const unfinished = await ctx.store.startAttempt(ctx.job, line.line);
      if (unfinished === undefined || unfinished + (chunkDied ? 1 : 0) > MAX_CRASHES) {
        admission.release();
        if (unfinished === undefined) return 'gone';
        const failed = await ctx.store.failCrashed(
          ctx.job,
          line.line,
          unfinished - 1 + (chunkDied ? 1 : 0),
          ctx.workerId,
          Date.now(),
        );
        if (!failed) return 'gone';
        await ctx.counters.finishedMany([{ line: line.line, host: line.host, state: 'failed' }]);
        return 'final';
      }
    }
    const startedAt = Date.now();
    let result: BatchAttempt | undefined;
    let signal: HostAnswer | undefined;
    // In flight, not waiting: a line is counted as one or the other, never both.
    flying();
    ctx.load.inFlight++;
    try {
      result = await attemptOnce(
        ctx.session,
        { url: line.url, method: line.method, headers: line.headers, body: line.body },
        ctx.attemptsSignal,
        ctx.bodies,
      );
      // What the host said is known (a throttle pauses it, for this worker at once) before its
      // slot goes to the next line: else a line waiting for the slot is sent into the pause.
      if (result) {
        const now = Date.now();
        const answer = hostSignal(ctx, line.host, result, now, startedAt);
        signal = answer instanceof Promise ? await answer : answer;
      }
    } catch (error) {
      if (careful) await ctx.store.abandonAttempt(ctx.job, line.line).catch(() => {});
      throw error;
    } finally {
      ctx.load.inFlight--;
      admission.release();
      freeSlot();
      answered();
    }
    // Cut off by a stop: the attempt does not count (nor as a crash); the line is due again.
    if (!result) {
      if (careful) await ctx.store.abandonAttempt(ctx.job, line.line);
      return { dueAt: Date.now() };
    }
    ctx.onAttempt?.();
    return record(ctx, line, state, result, retrying, startedAt, careful, signal);
  } finally {
    freeSlot();
    admission.release();
  }
}

/** How a line whose final outcome was written (or found written by another execution) ends. */
function finalEnd(written: boolean): LineEnd {
  return written ? 'final' : 'gone';
}

/** Decides what the attempt means for the line and writes it (once). */
async function record(
  ctx: LineContext,
  line: ChunkLine,
  state: LineState,
  result: BatchAttempt,
  retrying: boolean,
  startedAt: number,
  careful: boolean,
  answer: HostAnswer | undefined,
): Promise<LineEnd | undefined> {
  const known = answer ?? hostSignal(ctx, line.host, result, Date.now(), startedAt);
  const { now, hostOpenAt, hostDownUntil } = known instanceof Promise ? await known : known;
  ctx.jitter?.at(line.line, state.attempts);
  const decision = decide(
    ctx.policy,
    {
      method: line.method,
      url: line.url,
      replaySafe: line.headers?.['idempotency-key'] !== undefined,
      history: state.history,
      firstAttemptAt: state.firstAttemptAt ?? startedAt,
    },
    result,
    now,
    {
      maxRetryAfterMs: ctx.config.maxRetryAfter,
      giveUpAfterMs: ctx.config.giveUpAfter ?? GIVE_UP_AFTER_MS,
      hostOpenAt,
      hostDownUntil,
    },
  );
  if (retrying && decision.state === 'done') await ctx.gate.refundRetry(line.host);

  const isFinal = decision.state !== 'pending';
  // A body held in memory or only counted is kept at once (no promise to wait for).
  const keeping = keepIfFinal(result, isFinal, line.line);
  const stored = keeping instanceof Promise ? await keeping : keeping;
  const outcome = outcomeOf(
    line.line,
    startedAt,
    decision,
    result,
    stored,
    state.attempts + 1,
    now,
  );
  const written = ctx.writer.write(
    encodeWrite(line.line, state.attempts, outcome, startedAt, ctx.workerId),
    line.host,
    { now: careful },
  );
  // Another execution of this line recorded this attempt first: it goes on from there. A final
  // outcome keeps nothing of the attempt alive while it waits for its batch.
  if (isFinal) return written.then(finalEnd);
  const event = ctx.onRetry
    ? retryEventOf(line, state.attempts + 1, maxAttemptsOf(ctx.policy), decision, result)
    : undefined;
  if (!(await written)) return 'gone';
  if (event) ctx.onRetry?.(event);
  state.attempts = outcome.attempts;
  state.history = outcome.history;
  state.nextAttemptAt = outcome.nextAttemptAt;
  state.firstAttemptAt ??= startedAt;
  return undefined;
}
