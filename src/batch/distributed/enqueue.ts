import type { JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { InputChangedError } from '../errors.js';
import { type BatchInput, readLines } from '../input.js';
import { hashLine, parseInputLine } from '../input-line.js';
import { lineJobOptions } from './job-worker.js';
import type { JobCounters } from './stats.js';
import type { PgStore, QueuedLine, StoreLine } from './store.js';

/** Lines per round trip: one insert in PostgreSQL, one pipeline and one addBulk in Redis. */
const BATCH_LINES = 1000;

/** The one thing enqueueing needs of a BullMQ queue. */
export interface LineQueue {
  addBulk(jobs: { name: string; data: QueuedLine; opts: JobsOptions }[]): Promise<unknown>;
}

/** Where enqueued lines go. */
export interface EnqueueTarget {
  readonly job: string;
  readonly store: PgStore;
  readonly queue: LineQueue;
  readonly redis: Redis;
  readonly counters: JobCounters;
}

async function addToQueue(target: EnqueueTarget, lines: readonly QueuedLine[]): Promise<void> {
  if (!lines.length) return;
  await target.queue.addBulk(
    lines.map((data) => ({ name: 'line', data, opts: { ...lineJobOptions(data.line) } })),
  );
}

/**
 * Streams the input into the store (each line once, keyed by (job, line), its fingerprint
 * checked against a recorded line) and the queue (one BullMQ job per pending line, with a
 * stable id: a line enqueued again is not added twice). Lines appended to the input since the
 * last run add work. Order matters for a crash: the store first, then the queue; a line recorded
 * but not enqueued is found again by {@link enqueuePending}.
 */
export async function enqueueInput(
  target: EnqueueTarget,
  input: BatchInput,
  signal: AbortSignal,
): Promise<number> {
  let lineNumber = 0;
  let batch: StoreLine[] = [];
  const flush = async (): Promise<void> => {
    if (!batch.length) return;
    const lines = batch;
    batch = [];
    const result = await target.store.insertLines(target.job, lines);
    if (result.changedLine !== undefined)
      throw new InputChangedError(`job ${target.job}`, result.changedLine);
    // Every line of the batch is counted: the counters keep a bitmap of lines, so a line counts
    // once even when an earlier run recorded it but died before counting it.
    const pipeline = target.redis.pipeline();
    for (const l of lines)
      target.counters.added(
        pipeline,
        l.line,
        l.kind === 'request' ? l.host : null,
        l.kind === 'request' ? 'pending' : 'invalid',
      );
    await pipeline.exec();
    await addToQueue(target, result.pending);
  };
  for await (const text of readLines(input, signal)) {
    lineNumber++;
    const parsed = parseInputLine(text);
    if (parsed.kind === 'skip') continue;
    const hash = hashLine(text);
    batch.push(
      parsed.kind === 'request'
        ? {
            kind: 'request',
            hash,
            line: lineNumber,
            method: parsed.request.method,
            url: parsed.request.url,
            host: parsed.request.host,
            ...(Object.keys(parsed.request.headers).length && { headers: parsed.request.headers }),
            ...(parsed.request.body !== undefined && { body: parsed.request.body }),
            ...(parsed.request.key !== undefined && { key: parsed.request.key }),
          }
        : {
            kind: 'invalid',
            line: lineNumber,
            hash,
            key: parsed.key,
            raw: text,
            reason: parsed.reason,
          },
    );
    if (batch.length >= BATCH_LINES) await flush();
  }
  if (!signal.aborted) await flush();
  return lineNumber;
}

/**
 * Enqueues every pending line of the store again (BullMQ keeps one job per id, so lines it still
 * holds are not duplicated): what repairs a queue that lost jobs (a Redis without persistence
 * that restarted, jobs removed after infrastructure failures). Returns the lines looked at.
 */
export async function enqueuePending(target: EnqueueTarget): Promise<number> {
  let after = 0;
  let count = 0;
  for (;;) {
    const lines = await target.store.pendingLines(target.job, after, BATCH_LINES);
    await addToQueue(target, lines);
    count += lines.length;
    const last = lines[lines.length - 1];
    if (!last || lines.length < BATCH_LINES) return count;
    after = last.line;
  }
}
