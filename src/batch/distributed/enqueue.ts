import type { JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { InputChangedError } from '../errors.js';
import { type BatchInput, readLineChunks } from '../input.js';
import { hashLine, invalidLine, parseInputLine } from '../input-line.js';
import { chunkJobOptions } from './job-worker.js';
import type { ChunkData } from './processor.js';
import type { JobCounters } from './stats.js';
import type { PgStore, StoreLine } from './store.js';

/** Lines per round trip at least: one insert in PostgreSQL, one count and one addBulk in Redis. */
const BATCH_LINES = 1000;

/** The one thing enqueueing needs of a BullMQ queue. */
export interface LineQueue {
  addBulk(jobs: { name: string; data: ChunkData; opts: JobsOptions }[]): Promise<unknown>;
}

/** Where enqueued lines go. */
export interface EnqueueTarget {
  readonly job: string;
  readonly store: PgStore;
  readonly queue: LineQueue;
  readonly redis: Redis;
  readonly counters: JobCounters;
  /** Lines per BullMQ job (the job's `chunkSize`). */
  readonly chunkSize: number;
}

/** The chunk of a line: chunk k holds lines k·size + 1 to (k + 1)·size. */
export function chunkOf(line: number, size: number): number {
  return Math.floor((line - 1) / size);
}

/**
 * Adds the chunks (BullMQ jobs of `chunkSize` lines, each with a stable id: a chunk the queue
 * holds is not added twice; its next run loads every pending line of its range).
 */
async function addChunks(target: EnqueueTarget, chunks: Iterable<number>): Promise<void> {
  const jobs = [...new Set(chunks)].map((k) => ({
    name: 'chunk',
    data: { from: k * target.chunkSize + 1, to: (k + 1) * target.chunkSize },
    opts: { ...chunkJobOptions(k) },
  }));
  if (jobs.length) await target.queue.addBulk(jobs);
}

/**
 * Streams the input into the store (each line once, keyed by (job, line), its fingerprint
 * checked against a recorded line) and the queue (one BullMQ job per chunk of `chunkSize` lines
 * holding pending lines, with a stable id: a chunk enqueued again is not added twice). Lines
 * appended to the input since the last run add work. Order matters for a crash: the store
 * first, then the queue; a line recorded but not enqueued is found again by
 * {@link enqueuePending}. Batches end on chunk boundaries, so a chunk is enqueued whole.
 */
export async function enqueueInput(
  target: EnqueueTarget,
  input: BatchInput,
  signal: AbortSignal,
): Promise<number> {
  let lineNumber = 0;
  let batch: StoreLine[] = [];
  let analyzed = false;
  const flush = async (): Promise<void> => {
    if (!batch.length) return;
    const lines = batch;
    batch = [];
    const result = await target.store.insertLines(target.job, lines);
    if (!analyzed) {
      // Statistics from the first batch on: without them PostgreSQL may plan the batched
      // updates of results as a scan of every pending line of the job.
      analyzed = true;
      await target.store.analyze();
    }
    if (result.changedLine !== undefined)
      throw new InputChangedError(`job ${target.job}`, result.changedLine);
    // Every line of the batch is counted: the counters keep a bitmap of lines, so a line counts
    // once even when an earlier run recorded it but died before counting it.
    await target.counters.addedMany(
      lines.map((l) => ({
        line: l.line,
        host: l.kind === 'request' ? l.host : null,
        state: l.kind === 'request' ? 'pending' : 'invalid',
      })),
    );
    await addChunks(
      target,
      result.pending.map((l) => chunkOf(l.line, target.chunkSize)),
    );
  };
  for await (const texts of readLineChunks(input, signal))
    for (const text of texts) {
      if (signal.aborted) break;
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
              ...(Object.keys(parsed.request.headers).length && {
                headers: parsed.request.headers,
              }),
              ...(parsed.request.body !== undefined && { body: parsed.request.body }),
              ...(parsed.request.key !== undefined && { key: parsed.request.key }),
            }
          : invalidLine(lineNumber, hash, parsed, text),
      );
      if (batch.length >= BATCH_LINES && lineNumber % target.chunkSize === 0) await flush();
    }
  if (!signal.aborted) await flush();
  return lineNumber;
}

/**
 * Enqueues every chunk holding pending lines again (BullMQ keeps one job per id, so chunks it
 * still holds are not duplicated): what repairs a queue that lost jobs (a Redis without
 * persistence that restarted, jobs removed after infrastructure failures). Returns the chunks.
 */
export async function enqueuePending(target: EnqueueTarget): Promise<number> {
  const chunks = await target.store.pendingChunks(target.job, target.chunkSize);
  for (let i = 0; i < chunks.length; i += BATCH_LINES)
    await addChunks(target, chunks.slice(i, i + BATCH_LINES));
  return chunks.length;
}
