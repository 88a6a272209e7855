export { type BodiesOption, parseBodiesOption } from './bodies.js';
export {
  type AttemptResult,
  type Decision,
  type DecisionInput,
  type DecisionLimits,
  decide,
  replayPolicy,
} from './decide.js';
export {
  QueueUnavailableError,
  StoreUnavailableError,
  UnknownJobError,
} from './distributed/errors.js';
export {
  FLEET_BUDGET_DEFAULTS,
  type FleetBudgetSpec,
  type JobConfig,
  policyFromSpec,
  policyOptionsFromSpec,
  type RetryJitter,
  type RetrySpec,
} from './distributed/job-config.js';
export type {
  DistributedBatchOptions,
  DistributedTarget,
  WorkerTuning,
} from './distributed/options.js';
export type {
  ResetFailedJobOptions,
  ResetFailedJobResult,
} from './distributed/retry-failed-job.js';
export type { HostStatus, JobStatus, WorkerStatus } from './distributed/status.js';
export type { RunWorkerOptions, WorkerResult } from './distributed/worker.js';
export {
  collectJobReport,
  exportJobRecords,
  jobStatus,
  resetFailedJob,
  runWorker,
  summarizeJob,
} from './distributed-api.js';
export {
  InputChangedError,
  InputUnreadableError,
  JournalFormatError,
  JournalLockedError,
  type LockHolder,
} from './errors.js';
export {
  CSV_COLUMNS,
  csvCell,
  type ExportOptions,
  type ExportRecord,
  exportRecords,
  toCsvRow,
  writeExport,
  writeRecords,
} from './export.js';
export { HostLimits, parseRate } from './host-limits.js';
export type { BatchInput } from './input.js';
export { type BatchRequest, type ParsedLine, parseInputLine } from './input-line.js';
export { Journal, type JournalOpenOptions, type StateCounts } from './journal.js';
export type { EndReason, HistoryEntry, LineState } from './journal-schema.js';
export { lockHolder } from './lock.js';
export {
  type BatchHooks,
  type MetricsServer,
  type MetricsServerOptions,
  startMetricsServer,
  type WorkerHooks,
} from './metrics-api.js';
export { BATCH_RETRY_DEFAULTS, type BatchOptions } from './options.js';
export type { BatchProgress, BatchRetryEvent } from './progress-state.js';
export { writeReport } from './report.js';
export {
  ATTEMPTS_CAP,
  collectReport,
  DELAY_BUCKET_LABELS,
  DELAY_BUCKETS,
  type DelaySource,
  type ReportData,
  type ReportHost,
  type ReportLine,
  type ReportOptions,
  type ReportTally,
  type ThroughputBucket,
} from './report-data.js';
export { renderReport } from './report-html.js';
export { type FailedFilter, resetFailed } from './retry-failed.js';
export { type BatchEnd, type BatchResult, isDistributed, runBatch } from './runner.js';
export {
  type BatchSummary,
  type FailureTally,
  type HostSummary,
  summarize,
  type Tally,
} from './summary.js';
export { describeKind, type FormatSummaryOptions, formatSummary } from './summary-format.js';
