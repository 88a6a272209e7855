import { Queue } from 'bullmq';
import { redactHeaders } from '../../http/redact.js';
import { cell } from '../summary-format.js';
import { openRedis } from './backend-connections.js';
import { bullConnection, parseQueueUrl, probeQueue } from './connections.js';
import { UnknownJobError } from './errors.js';
import { assertJobName, type JobConfig, parseJobConfig } from './job-config.js';
import { type QueueCounts, queueCounts } from './job-progress.js';
import { jobKeys, PREFIX } from './keys.js';
import { JobCounters } from './stats.js';

/** One host of a job, as the queue sees it. */
export interface HostStatus {
  readonly host: string;
  readonly lines: number;
  readonly done: number;
  readonly failed: number;
  /** Its slots the workers hold now (leased a few at a time: requests in flight or about to start), all workers together. */
  readonly inFlight: number;
  /** Milliseconds left of a Retry-After hold (0: none). */
  readonly cooldownMs: number;
}

/** A worker that reported in the last minute. */
export interface WorkerStatus {
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  readonly concurrency: number;
  readonly seenMsAgo: number;
}

/** Where a distributed job stands, from Redis alone (`dogged status --queue --job`). */
export interface JobStatus {
  readonly job: string;
  readonly queue: string;
  /** The job's config; the values of secret headers (Authorization, Cookie...) shown as `***`. */
  readonly config: JobConfig;
  readonly lines: number;
  readonly done: number;
  readonly failed: number;
  readonly invalid: number;
  readonly left: number;
  readonly inputComplete: boolean;
  readonly states: QueueCounts;
  /** Lines finished per second over the last 10 s, fleet-wide. */
  readonly ratePerSecond: number;
  /** The busiest hosts (at most 20) and how many hosts there are. */
  readonly hosts: readonly HostStatus[];
  readonly hostCount: number;
  readonly workers: readonly WorkerStatus[];
}

/**
 * Reads a job's status from the queue: lines per state, per host (with the requests in flight
 * and any Retry-After hold), the current rate and the workers at work.
 * @example const s = await jobStatus('redis://127.0.0.1:6379/0', 'crawl'); console.log(s.done, s.ratePerSecond);
 */
export async function jobStatus(queueUrl: string, job: string): Promise<JobStatus> {
  assertJobName(job);
  const location = parseQueueUrl(queueUrl);
  await probeQueue(location);
  const redis = await openRedis(location);
  const queue = new Queue(job, {
    connection: bullConnection(location),
    prefix: PREFIX,
  });
  queue.on('error', () => {});
  try {
    const keys = jobKeys(job);
    const text = await redis.get(keys.config);
    if (text === null) throw new UnknownJobError(job, location.where);
    const config = parseJobConfig(text, job);
    const counters = new JobCounters(redis, keys);
    const [stats, states, rate, workersRaw] = await Promise.all([
      counters.read(),
      queueCounts(queue),
      counters.rate(10),
      redis.hgetall(keys.workers),
    ]);
    const now = Date.now();
    const busiest = [...stats.hosts.entries()]
      .sort((a, b) => b[1].lines - a[1].lines || a[0].localeCompare(b[0]))
      .slice(0, 20);
    const hosts: HostStatus[] = [];
    for (const [host, h] of busiest) {
      const [leases, cool] = await Promise.all([
        redis.hvals(`${keys.slots}:lease:${host}`),
        redis.hget(`${keys.pause}:${host}`, 'until'),
      ]);
      // The slots the workers hold (leased a few at a time: in flight or about to be).
      let inFlight = 0;
      for (const lease of leases) {
        const [granted, expires] = lease.split(':').map(Number);
        if ((expires ?? 0) >= now) inFlight += granted ?? 0;
      }
      hosts.push({ host, ...h, inFlight, cooldownMs: Math.max(0, Number(cool ?? 0) - now) });
    }
    const workers: WorkerStatus[] = [];
    for (const [id, value] of Object.entries(workersRaw)) {
      const beat = JSON.parse(value) as {
        pid: number;
        host: string;
        at: number;
        concurrency: number;
      };
      if (now - beat.at < 60_000)
        workers.push({
          id,
          host: beat.host,
          pid: beat.pid,
          concurrency: beat.concurrency,
          seenMsAgo: now - beat.at,
        });
    }
    const finished = stats.done + stats.failed + stats.invalid;
    return {
      job,
      queue: location.where,
      // For display: the values of Authorization, Cookie... given with -H are not shown.
      config: { ...config, headers: redactHeaders(config.headers) as Record<string, string> },
      lines: stats.lines,
      done: stats.done,
      failed: stats.failed,
      invalid: stats.invalid,
      left: Math.max(0, stats.lines - finished),
      inputComplete: stats.inputComplete,
      states,
      ratePerSecond: rate,
      hosts,
      hostCount: stats.hosts.size,
      workers,
    };
  } finally {
    await queue.close().catch(() => {});
    redis.disconnect();
  }
}

const n = (value: number): string => Math.round(value).toLocaleString('en-US');

/** The status as people read it. */
export function formatJobStatus(s: JobStatus): string {
  const out = [
    `job ${s.job} on ${s.queue}: ${n(s.lines)}${s.inputComplete ? '' : '+'} lines: ${n(s.done)} done, ${n(s.failed)} failed, ${n(s.invalid)} invalid, ${n(s.left)} left`,
  ];
  const row = (label: string, text: string): void => {
    out.push(`  ${label.padEnd(10)} ${text}`);
  };
  row(
    'queue',
    `chunks of ${n(s.config.chunkSize ?? 250)} lines: waiting ${n(s.states.waiting)} · running ${n(s.states.active)} · delayed ${n(s.states.delayed)} (retries and holds)${s.states.failed ? ` · given up ${n(s.states.failed)}` : ''}`,
  );
  row('rate', `${s.ratePerSecond.toFixed(1)} lines/s (last 10 s, all workers)`);
  const width = Math.max(0, ...s.hosts.map((h) => cell(h.host).length));
  for (const [i, h] of s.hosts.entries())
    row(
      i === 0 ? 'hosts' : '',
      `${cell(h.host).padEnd(width)}  ${n(h.lines)} lines: ${n(h.done)} done, ${n(h.failed)} failed · slots held ${h.inFlight}/${s.config.perHost}${s.config.rate === 'adaptive' ? ' · adaptive pace' : s.config.rate ? ` · ${s.config.rate}/s` : ''}${h.cooldownMs > 0 ? ` · Retry-After hold ${(h.cooldownMs / 1000).toFixed(1)} s` : ''}`,
    );
  if (s.hostCount > s.hosts.length)
    row('', `... and ${n(s.hostCount - s.hosts.length)} more hosts`);
  row(
    'workers',
    s.workers.length
      ? s.workers.map((w) => `${cell(w.host)} pid ${w.pid} (×${w.concurrency})`).join(', ')
      : 'none at work',
  );
  return `${out.join('\n')}\n`;
}
