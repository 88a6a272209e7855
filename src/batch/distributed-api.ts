/**
 * The distributed backend's entry points, loaded on first use: `import 'dogged'` stays cheap
 * for programs that never touch BullMQ, ioredis or pg.
 */

import type { DistributedTarget } from './distributed/options.js';
import type {
  ResetFailedJobOptions,
  ResetFailedJobResult,
} from './distributed/retry-failed-job.js';
import type { JobStatus } from './distributed/status.js';
import type { RunWorkerOptions, WorkerResult } from './distributed/worker.js';
import type { ExportOptions, ExportRecord } from './export.js';
import type { ReportData, ReportOptions } from './report-data.js';
import type { FailedFilter } from './retry-failed.js';
import type { BatchSummary } from './summary.js';

/**
 * Works on distributed batches until `signal` aborts (`dogged worker`): see
 * docs/scaling-out.md.
 * @example await runWorker({ queue: 'redis://127.0.0.1:6379/0', store: 'postgres://127.0.0.1/crawl', signal });
 */
export async function runWorker(options: RunWorkerOptions): Promise<WorkerResult> {
  return (await import('./distributed/worker.js')).runWorker(options);
}

/**
 * Where a distributed job stands, from Redis (`dogged status --queue --job`).
 * @example console.log((await jobStatus('redis://127.0.0.1:6379/0', 'crawl')).ratePerSecond);
 */
export async function jobStatus(queue: string, job: string): Promise<JobStatus> {
  return (await import('./distributed/status.js')).jobStatus(queue, job);
}

/**
 * Gives the failed lines of a distributed job another chance (`dogged retry-failed --queue
 * --store --job`): back to pending with a fresh retry budget, in PostgreSQL and in the job's
 * counters in Redis. Then `runBatch({ queue, store, job })` fetches them (or, with
 * `{ enqueue: true }`, the workers at work do).
 * @example await resetFailedJob({ queue, store, job: 'nightly' }, { statuses: ['5xx'] });
 */
export async function resetFailedJob(
  target: DistributedTarget,
  filter: FailedFilter = {},
  options: ResetFailedJobOptions = {},
): Promise<ResetFailedJobResult> {
  return (await import('./distributed/retry-failed-job.js')).resetFailedJob(
    target,
    filter,
    options,
  );
}

/** Opens the store, runs `fn`, closes it. */
async function withStore<T>(
  store: string,
  fn: (pg: import('./distributed/store.js').PgStore) => Promise<T>,
): Promise<T> {
  const { parseStoreUrl } = await import('./distributed/connections.js');
  const { PgStore } = await import('./distributed/store.js');
  const opened = await PgStore.open(parseStoreUrl(store));
  try {
    return await fn(opened);
  } finally {
    await opened.close();
  }
}

/**
 * The summary of a distributed job from its store: the same {@link BatchSummary} as
 * `summarize(journal)`.
 * @example formatSummary(await summarizeJob('postgres://127.0.0.1/crawl', 'nightly'))
 */
export async function summarizeJob(store: string, job: string): Promise<BatchSummary> {
  const { summarizeStore } = await import('./distributed/store-reports.js');
  const config: typeof import('./distributed/job-config.js') = await import(
    './distributed/job-config.js'
  );
  config.assertJobName(job);
  return withStore(store, (pg) => summarizeStore(pg, job));
}

/**
 * Every record of a distributed job, in line order, as `exportRecords(journal)` gives them.
 * @example for await (const r of exportJobRecords('postgres://127.0.0.1/crawl', 'nightly')) console.log(r.url);
 */
export async function* exportJobRecords(
  store: string,
  job: string,
  options: ExportOptions = {},
): AsyncGenerator<ExportRecord> {
  const { storeRecords } = await import('./distributed/store-reports.js');
  const config: typeof import('./distributed/job-config.js') = await import(
    './distributed/job-config.js'
  );
  const { UnknownJobError } = await import('./distributed/errors.js');
  config.assertJobName(job);
  const { parseStoreUrl } = await import('./distributed/connections.js');
  const { PgStore } = await import('./distributed/store.js');
  const location = parseStoreUrl(store);
  const pg = await PgStore.open(location);
  try {
    if (!(await pg.hasJob(job))) throw new UnknownJobError(job, location.where);
    yield* storeRecords(pg, job, options);
  } finally {
    await pg.close();
  }
}

/**
 * What the report of a distributed job shows, from its store: the same {@link ReportData} as
 * `collectReport(journal)`; `renderReport` turns it into the HTML page.
 * @example writeFileSync('report.html', renderReport(await collectJobReport('postgres://127.0.0.1/crawl', 'nightly')));
 */
export async function collectJobReport(
  store: string,
  job: string,
  options: ReportOptions = {},
): Promise<ReportData> {
  const { collectStoreReport } = await import('./distributed/store-report.js');
  const config: typeof import('./distributed/job-config.js') = await import(
    './distributed/job-config.js'
  );
  const { UnknownJobError } = await import('./distributed/errors.js');
  config.assertJobName(job);
  const { parseStoreUrl } = await import('./distributed/connections.js');
  const location = parseStoreUrl(store);
  return withStore(store, async (pg) => {
    if (!(await pg.hasJob(job))) throw new UnknownJobError(job, location.where);
    return collectStoreReport(pg, job, options);
  });
}
