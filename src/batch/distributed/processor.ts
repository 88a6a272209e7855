import { DelayedError, type Job } from 'bullmq';
import type { RetryPolicy } from '../../http/policy.js';
import { parseRetryAfter } from '../../http/retry-after.js';
import type { Session } from '../../http/session.js';
import { attemptOnce } from '../attempt.js';
import type { BodyStore } from '../bodies.js';
import { type AttemptResult, decide } from '../decide.js';
import { maxAttemptsOf, outcomeOf, retryEventOf } from '../outcome.js';
import type { BatchRetryEvent } from '../progress-state.js';
import type { FleetGate } from './fleet-gate.js';
import type { JobConfig } from './job-config.js';
import type { JobCounters } from './stats.js';
import type { PgStore, QueuedLine } from './store.js';

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

/** Puts the BullMQ job back as delayed until `at` (then BullMQ wants DelayedError thrown). */
async function delayUntil(job: Job<QueuedLine>, token: string, at: number): Promise<never> {
  await job.moveToDelayed(Math.max(Date.now(), Math.ceil(at)), token);
  throw new DelayedError();
}

function retryAfterOf(result: AttemptResult): string | undefined {
  if (result.kind !== 'response' || (result.status !== 429 && result.status !== 503))
    return undefined;
  const raw = result.rawHeaders?.['retry-after'];
  if (raw !== undefined) return Array.isArray(raw) ? raw[0] : raw;
  return result.headers.get('retry-after') ?? undefined;
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

  const admission = await ctx.gate.admit(line.host, {
    isRetry: record.attempts > 0,
    signal: ctx.attemptsSignal,
  });
  if (!admission.ok) return delayUntil(job, token, admission.until);
  const startedAt = Date.now();
  let result: AttemptResult | undefined;
  try {
    result = await attemptOnce(
      ctx.session,
      { url: line.url, method: line.method, headers: line.headers, body: line.body },
      ctx.attemptsSignal,
    );
  } finally {
    await admission.release();
  }
  // Cut off by a stop: the attempt does not count; the line is due again at once.
  if (!result) return delayUntil(job, token, Date.now());
  ctx.onAttempt?.();

  const now = Date.now();
  const decision = decide(
    ctx.policy,
    {
      method: line.method,
      url: line.url,
      replaySafe: line.headers?.['idempotency-key'] !== undefined,
      history: record.history,
    },
    result,
    now,
    { maxRetryAfterMs: ctx.config.maxRetryAfter },
  );
  const retryAfter = retryAfterOf(result);
  if (retryAfter !== undefined) {
    const ms = parseRetryAfter(retryAfter, now);
    if (ms !== undefined)
      await ctx.gate.holdHost(line.host, Math.min(ms, ctx.config.maxRetryAfter));
  }
  if (record.attempts > 0 && decision.state === 'done') await ctx.gate.refundRetry(line.host);

  const isFinal = decision.state !== 'pending';
  const stored =
    isFinal && result.kind === 'response'
      ? await ctx.bodies.store(line.line, result.body)
      : undefined;
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
