import { DelayedError, type Job } from 'bullmq';
import type { RetryPolicy } from '../../http/policy.js';
import type { Session } from '../../http/session.js';
import { attemptOnce, type BatchAttempt, keepIfFinal } from '../attempt.js';
import type { BodyStore } from '../bodies.js';
import { type AttemptResult, decide, hostSignalOf } from '../decide.js';
import { type HistoryEntry, MAX_CRASHES } from '../journal-schema.js';
import { GIVE_UP_AFTER_MS } from '../options.js';
import { maxAttemptsOf, outcomeOf, retryEventOf } from '../outcome.js';
import type { BatchRetryEvent } from '../progress-state.js';
import type { FleetGate } from './fleet-gate.js';
import type { JobConfig } from './job-config.js';
import type { JobCounters } from './stats.js';
import type { LineRecordState, PgStore, QueuedLine } from './store.js';

/** What a worker shares between the lines of one job. */
export interface LineContext {
  readonly job: string;
  readonly config: JobConfig;
  readonly policy: RetryPolicy;
  readonly store: PgStore;
  readonly gate: FleetGate;
  readonly counters: JobCounters;
  readonly session: Session;
  readonly bodies: BodyStore;
  readonly workerId: string;
  /** Aborted to cut attempts off (a stop past its grace period). */
  readonly attemptsSignal: AbortSignal;
  readonly onRetry?: ((event: BatchRetryEvent) => void) | undefined;
  readonly onAttempt?: (() => void) | undefined;
}

/** How one execution of a line ended. */
export type LineOutcome = 'done' | 'failed' | 'delayed' | 'duplicate' | 'missing';

/**
 * Puts the BullMQ job back as delayed until `at` (then BullMQ wants DelayedError thrown), at
 * priority 0: when it is due, it goes before the fresh lines (a due retry never waits behind the
 * input).
 */
async function delayUntil(job: Job<QueuedLine>, token: string, at: number): Promise<never> {
  if (job.priority !== 0) await job.changePriority({ priority: 0 });
  await job.moveToDelayed(Math.max(Date.now(), Math.ceil(at)), token);
  throw new DelayedError();
}

/** A line whose last attempt failed on its own (not held by its host): a real retry. */
function isRetry(history: readonly HistoryEntry[]): boolean {
  const last = history[history.length - 1];
  return last !== undefined && !last.throttled && !last.down;
}

/**
 * Tells the host's fleet-wide pace and pauses what the attempt got (as the local runner does):
 * when a throttled host opens again, or when a host in an outage is probed again.
 */
async function hostSignal(
  ctx: LineContext,
  host: string,
  result: AttemptResult,
  now: number,
  sentAt: number,
): Promise<{ hostOpenAt?: number; hostDownUntil?: number }> {
  const pace = ctx.gate.pace;
  const signal = hostSignalOf(result, now, ctx.config.maxRetryAfter);
  if (signal.kind === 'failure') {
    const hostDownUntil = await pace.failed(host, now, sentAt);
    return hostDownUntil === undefined ? {} : { hostDownUntil };
  }
  if (signal.kind === 'throttle')
    return { hostOpenAt: await pace.throttled(host, now, sentAt, signal.retryAfterMs) };
  if (signal.kind === 'answer') pace.answered(host, now, sentAt);
  return {};
}

/**
 * One execution of one line: check the record, get admitted fleet-wide, send one request, decide
 * (the same pure `decide()` as the local runner), and record the outcome once. A retry becomes a
 * BullMQ delayed job due at the decision's time (backoff or Retry-After).
 */
export async function processLine(
  ctx: LineContext,
  job: Job<QueuedLine>,
  token: string,
): Promise<LineOutcome> {
  const line = job.data;
  const record = await ctx.store.loadLine(ctx.job, line.line);
  if (!record) return 'missing';
  if (record.state !== 'pending') {
    // Executed again after its outcome was recorded (a worker died before completing the job).
    if (record.state === 'done' || record.state === 'failed')
      await ctx.counters.finished(line.line, record.host, record.state);
    return 'duplicate';
  }
  if (record.nextAttemptAt > Date.now() + 50) return delayUntil(job, token, record.nextAttemptAt);

  const retrying = isRetry(record.history);
  const admission = await ctx.gate.admit(line.host, {
    isRetry: retrying,
    signal: ctx.attemptsSignal,
  });
  if (!admission.ok) return delayUntil(job, token, admission.until);
  // Every attempt started and never recorded is a worker that died with the line in flight
  // (BullMQ's stalled-job check handed the line on): past MAX_CRASHES, no poison line.
  const unfinished = await ctx.store.startAttempt(ctx.job, line.line);
  if (unfinished === undefined || unfinished > MAX_CRASHES) {
    await admission.release();
    if (unfinished === undefined) return 'duplicate';
    const failed = await ctx.store.failCrashed(
      ctx.job,
      line.line,
      unfinished - 1,
      ctx.workerId,
      Date.now(),
    );
    if (!failed) return 'duplicate';
    await ctx.counters.finished(line.line, line.host, 'failed');
    return 'failed';
  }
  try {
    return await attemptAndRecord(ctx, job, token, record, retrying, admission);
  } catch (error) {
    // An infrastructure failure (the store, Redis) is not a worker that died: BullMQ retries
    // the job, and this attempt does not count towards MAX_CRASHES.
    if (!(error instanceof DelayedError))
      await ctx.store.abandonAttempt(ctx.job, line.line).catch(() => {});
    throw error;
  }
}

/** The attempt of an admitted line, its decision and its record (see {@link processLine}). */
async function attemptAndRecord(
  ctx: LineContext,
  job: Job<QueuedLine>,
  token: string,
  record: LineRecordState,
  retrying: boolean,
  admission: { release(): Promise<void> },
): Promise<LineOutcome> {
  const line = job.data;
  const startedAt = Date.now();
  let result: BatchAttempt | undefined;
  try {
    result = await attemptOnce(
      ctx.session,
      { url: line.url, method: line.method, headers: line.headers, body: line.body },
      ctx.attemptsSignal,
      ctx.bodies,
    );
  } finally {
    await admission.release();
  }
  // Cut off by a stop: the attempt does not count (nor as a crash); the line is due again at once.
  if (!result) {
    await ctx.store.abandonAttempt(ctx.job, line.line);
    return delayUntil(job, token, Date.now());
  }
  ctx.onAttempt?.();

  const now = Date.now();
  const signal = await hostSignal(ctx, line.host, result, now, startedAt);
  const decision = decide(
    ctx.policy,
    {
      method: line.method,
      url: line.url,
      replaySafe: line.headers?.['idempotency-key'] !== undefined,
      history: record.history,
      firstAttemptAt: record.firstAttemptAt ?? startedAt,
    },
    result,
    now,
    {
      maxRetryAfterMs: ctx.config.maxRetryAfter,
      giveUpAfterMs: ctx.config.giveUpAfter ?? GIVE_UP_AFTER_MS,
      ...signal,
    },
  );
  if (retrying && decision.state === 'done') await ctx.gate.refundRetry(line.host);

  const isFinal = decision.state !== 'pending';
  const stored = await keepIfFinal(result, isFinal, line.line);
  const written = await ctx.store.recordAttempt(ctx.job, line.line, record.attempts, {
    ...outcomeOf(decision, result, stored, record.attempts + 1, now),
    startedAt,
    worker: ctx.workerId,
  });
  if (!written) {
    // Another execution of this line recorded this attempt first: follow what it recorded.
    const current = await ctx.store.loadLine(ctx.job, line.line);
    if (current?.state === 'pending') return delayUntil(job, token, current.nextAttemptAt);
    if (current?.state === 'done' || current?.state === 'failed')
      await ctx.counters.finished(line.line, current.host, current.state);
    return 'duplicate';
  }
  if (decision.state === 'pending') {
    ctx.onRetry?.(
      retryEventOf(line, record.attempts + 1, maxAttemptsOf(ctx.policy), decision, result),
    );
    return delayUntil(job, token, decision.nextAttemptAt);
  }
  await ctx.counters.finished(line.line, line.host, decision.state);
  return decision.state;
}
