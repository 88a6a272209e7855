import { performance } from 'node:perf_hooks';
import type { Queue } from 'bullmq';
import type { BatchProgress } from '../progress-state.js';
import type { JobCounters } from './stats.js';

/** The queue's side of a job: chunks waiting, being run, delayed (retries and holds). */
export interface QueueCounts {
  readonly waiting: number;
  readonly active: number;
  readonly delayed: number;
  /** Chunks BullMQ gave up on after infrastructure failures (they are enqueued again). */
  readonly failed: number;
}

/** Reads the queue's counts of a job. */
export async function queueCounts(queue: Queue): Promise<QueueCounts> {
  const c = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed');
  return {
    waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
    active: c.active ?? 0,
    delayed: c.delayed ?? 0,
    failed: c.failed ?? 0,
  };
}

/**
 * A job's progress fleet-wide, in the shape the local runner reports (`BatchProgress`), so the
 * same progress bar and lines show it.
 */
export async function jobProgress(
  counters: JobCounters,
  queue: Queue,
  local: {
    attempts: number;
    startedAt: number;
    stopping: boolean;
    /**
     * The lines in flight and waiting in this process's own worker, which sends no heartbeat
     * (`dogged batch` works on its job too): added to the workers' heartbeats.
     */
    load?: { readonly inFlight: number; readonly retrying: number };
  },
): Promise<{ progress: BatchProgress; queue: QueueCounts }> {
  const [stats, q, rate, beats] = await Promise.all([
    counters.read(),
    queueCounts(queue),
    counters.rate(5),
    counters.load(),
  ]);
  const load = {
    inFlight: beats.inFlight + (local.load?.inFlight ?? 0),
    retrying: beats.retrying + (local.load?.retrying ?? 0),
  };
  const finished = stats.done + stats.failed + stats.invalid;
  const left = Math.max(0, stats.lines - finished);
  const inFlight = Math.min(left, load.inFlight);
  const progress: BatchProgress = {
    total: stats.lines,
    inputComplete: stats.inputComplete,
    pending: Math.max(0, left - inFlight),
    inFlight,
    done: stats.done,
    failed: stats.failed,
    invalid: stats.invalid,
    // Lines the workers hold for a retry (those of chunks back in the queue are not seen).
    retrying: Math.min(left - inFlight, load.retrying),
    finished,
    attempts: local.attempts,
    ratePerSecond: rate,
    etaMs: left === 0 ? 0 : rate > 0 && stats.inputComplete ? (left / rate) * 1000 : undefined,
    elapsedMs: performance.now() - local.startedAt,
    stopping: local.stopping,
  };
  return { progress, queue: q };
}
