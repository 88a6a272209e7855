import { setMaxListeners } from 'node:events';
import { type Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Dispatcher } from 'undici';
import type { ProxyPool } from '../../http/proxy-pool.js';
import { Session } from '../../http/session.js';
import { resolveTimeouts, timeoutOptionOf } from '../../http/timeouts.js';
import { setLongTimeout } from '../../retry/timer.js';
import { BodyStore } from '../bodies.js';
import { releaseController, takeController } from '../controllers.js';
import { HostCookieJars } from '../cookie-jars.js';
import type { HostSnapshot } from '../host-events.js';
import { BATCH_TIMEOUTS } from '../options.js';
import type { BatchRetryEvent } from '../progress-state.js';
import { bullConnection, type QueueLocation } from './connections.js';
import { FleetGate } from './fleet-gate.js';
import {
  hostRateOf,
  type JobConfig,
  jobChunkSize,
  jobMaxBodySize,
  LineJitter,
  policyFromSpec,
} from './job-config.js';
import { recountJob, restoreJob } from './job-restore.js';
import { jobKeys, PREFIX } from './keys.js';
import { HostTurns, LineSlots, LineStarts } from './line-slots.js';
import { type ChunkData, type LineContext, processChunk } from './processor.js';
import { ResultWriter } from './result-writer.js';
import { JobCounters } from './stats.js';
import type { PgStore } from './store.js';

/** Options of one job's worker. */
export interface JobWorkerOptions {
  readonly queue: QueueLocation;
  readonly redis: Redis;
  readonly store: PgStore;
  readonly config: JobConfig;
  readonly concurrency: number;
  readonly workerId: string;
  readonly lockDurationMs: number;
  readonly dispatcher?: Dispatcher | undefined;
  readonly proxies?: ProxyPool | readonly (string | URL)[] | undefined;
  readonly onRetry?: ((event: BatchRetryEvent) => void) | undefined;
  readonly onError?: ((error: unknown) => void) | undefined;
}

/** Infrastructure failures (the store unreachable for a minute...) are retried by BullMQ. */
const INFRA_ATTEMPTS = 50;

/** The BullMQ priority of a chunk never run (a chunk due again goes to 0, served first). */
export const FRESH_PRIORITY = 1;

/** BullMQ options of a chunk's job: a stable id (so enqueueing twice adds it once) and cleanup. */
export function chunkJobOptions(chunk: number) {
  return {
    jobId: `c${chunk}`,
    // Fresh chunks wait among the prioritized jobs; a chunk put back for later (retries,
    // throttles, a busy host) goes to priority 0, and BullMQ serves those first when they are due.
    priority: FRESH_PRIORITY,
    removeOnComplete: true,
    removeOnFail: true,
    attempts: INFRA_ATTEMPTS,
    backoff: { type: 'infra' },
  } as const;
}

/**
 * A BullMQ worker for one job: a few chunks at once, each through {@link processChunk}, their
 * lines sharing `concurrency` slots, their outcomes written in batches. A worker that dies
 * leaves its chunks locked; once their lock (`lockDurationMs`) runs out, BullMQ's stalled-job
 * check hands them to another worker.
 */
export class JobWorker {
  readonly job: string;
  readonly #worker: Worker<ChunkData>;
  readonly #writer: ResultWriter;
  readonly #config: JobConfig;
  readonly #store: PgStore;
  readonly #redis: Redis;
  /** Lines of this worker in flight and waiting for a retry now. */
  readonly load = { inFlight: 0, retrying: 0 };
  /** The job's queue, for its counts (one connection for the worker's life, not one per look). */
  readonly #queue: Queue;
  /** The job's fleet-wide counters. */
  readonly counters: JobCounters;
  readonly #session: Session;
  readonly #gate: FleetGate;
  /** The job's attempts' signal: a controller an earlier job of this process gave back. */
  readonly #attempts = takeController();
  #attemptCount = 0;

  constructor(options: JobWorkerOptions) {
    const { config } = options;
    this.job = config.job;
    this.#config = config;
    this.#store = options.store;
    this.#redis = options.redis;
    setMaxListeners(0, this.#attempts.signal);
    const maxBodySize = jobMaxBodySize(config);
    // Lines are independent and run in parallel: by default no cookie of one line goes with
    // another's; with `cookies`, each host's lines share its jar, which starts from the jars
    // the job's workers saved in the store (loaded before the first chunk).
    let saved = new Map<string, string>();
    const cookies = config.cookies ? new HostCookieJars((host) => saved.get(host)) : undefined;
    const cookiesLoaded = cookies
      ? options.store.cookieJars(config.job).then((jars) => {
          saved = jars;
        })
      : Promise.resolve();
    this.#session = new Session({
      retry: false,
      logger: false,
      cookies: cookies ?? false,
      ...(config.http2 && { http2: true }),
      // The batch's timeouts: a finite attempt deadline unless the job set one.
      timeout: timeoutOptionOf(
        resolveTimeouts(config.timeout ?? undefined, BATCH_TIMEOUTS, `job ${config.job}: timeout`),
      ),
      ...(maxBodySize !== undefined && { maxBodySize }),
      ...(Object.keys(config.headers).length && { headers: config.headers }),
      ...(options.dispatcher !== undefined && { dispatcher: options.dispatcher }),
      ...(options.proxies !== undefined && { proxies: options.proxies }),
    });
    const keys = jobKeys(config.job);
    this.counters = new JobCounters(options.redis, keys);
    this.#queue = new Queue(config.job, {
      connection: bullConnection(options.queue),
      prefix: PREFIX,
    });
    this.#queue.on('error', () => {});
    this.#gate = new FleetGate(
      options.redis,
      keys,
      {
        perHost: config.perHost,
        workerConcurrency: options.concurrency,
        rate: hostRateOf(config),
        budget: config.budget,
        cooldown: config.cooldown,
      },
      options.workerId,
    );
    this.#writer = new ResultWriter(options.store, config.job, this.counters, cookies);
    const chunkSize = jobChunkSize(config);
    const jitter =
      config.seed !== undefined && config.seed !== null ? new LineJitter(config.seed) : undefined;
    const ctx: LineContext = {
      job: config.job,
      config,
      policy: policyFromSpec(config.retry, jitter?.random),
      jitter,
      store: options.store,
      gate: this.#gate,
      counters: this.counters,
      session: this.#session,
      bodies: new BodyStore(config.bodies),
      workerId: options.workerId,
      attemptsSignal: this.#attempts.signal,
      writer: this.#writer,
      slots: new LineSlots(options.concurrency),
      turns: new HostTurns(),
      // Twice the slots: a line is ready to take each slot as it is freed.
      starts: new LineStarts(2 * options.concurrency),
      load: this.load,
      onRetry: options.onRetry,
      onAttempt: () => {
        this.#attemptCount++;
      },
    };
    this.#worker = new Worker<ChunkData>(
      config.job,
      async (job: Job<ChunkData>, token?: string) => {
        await cookiesLoaded;
        return processChunk(ctx, job, token ?? '');
      },
      {
        connection: bullConnection(options.queue),
        prefix: PREFIX,
        name: options.workerId,
        // Chunks at once: enough lines to keep every slot busy while some lines of a chunk wait
        // for a retry, plus one (its lines queue behind the others' for the slots).
        concurrency: Math.max(2, Math.ceil((2 * options.concurrency) / chunkSize)) + 1,
        lockDuration: options.lockDurationMs,
        stalledInterval: Math.max(1000, Math.round(options.lockDurationMs / 2)),
        maxStalledCount: 1000,
        drainDelay: 1,
        settings: {
          backoffStrategy: (attemptsMade: number) => Math.min(30_000, 500 * 2 ** attemptsMade),
        },
      },
    );
    this.#worker.on('error', (error) => options.onError?.(error));
    this.#worker.on('failed', (_job, error) => options.onError?.(error));
  }

  /**
   * Puts back what Redis lost of the job (restarted without persistence) from PostgreSQL; see
   * {@link restoreJob}. True when it had to.
   */
  async restore(): Promise<boolean> {
    return restoreJob(
      {
        job: this.job,
        config: this.#config,
        store: this.#store,
        queue: this.#queue,
        redis: this.#redis,
        counters: this.counters,
        chunkSize: jobChunkSize(this.#config),
      },
      undefined,
    );
  }

  /**
   * When no line of the job is pending in the store, counts every line the counters missed (see
   * {@link recountJob}). True when the job is finished.
   */
  async recountIfFinished(): Promise<boolean> {
    if (await this.#store.anyPending(this.job)) return false;
    await recountJob(this.counters, this.#store, this.job);
    return true;
  }

  async #recountIfShort(): Promise<void> {
    const stats = await this.counters.read();
    if (stats.done + stats.failed + stats.invalid >= stats.lines) return;
    await this.recountIfFinished();
  }

  /** The job's hosts as this worker knows them (for metrics). */
  hostsSnapshot(now: number): HostSnapshot[] {
    return this.#gate.pace.snapshot(now);
  }

  /** Attempts this worker made. */
  get attempts(): number {
    return this.#attemptCount;
  }

  /** The job's queue, for its counts. */
  get queue(): Queue {
    return this.#queue;
  }

  /** Resolves once the worker is connected and fetching. */
  async ready(): Promise<void> {
    await this.#worker.waitUntilReady();
  }

  /**
   * Stops: no new lines; lines in flight get `graceMs`, then are cut off (they go back to the
   * queue, their attempt not counted).
   */
  async stop(graceMs: number): Promise<void> {
    const timer = setLongTimeout(() => this.#attempts.abort(), graceMs);
    try {
      await this.#worker.close();
    } finally {
      timer.clear();
      await this.#writer.drain().catch(() => {});
      // The job finished: counts lost by a worker that died (between a write and its count)
      // are made good before this one goes.
      await this.#recountIfShort().catch(() => {});
      await this.#queue.close().catch(() => {});
      await this.#gate.close();
      await this.#session.close();
      // Nothing listens any more: the next job's attempts reuse it (see `takeController`).
      releaseController(this.#attempts);
    }
  }
}
