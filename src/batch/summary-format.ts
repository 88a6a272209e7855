import { formatDuration } from '../retry/describe.js';
import type { BatchSummary, FailureTally } from './summary.js';

/** Short names for the error codes a batch meets most. */
const ERROR_NAMES: Readonly<Record<string, string>> = {
  ERR_DOGGED_CONNECT: 'connect failed',
  ERR_DOGGED_CONNECT_TIMEOUT: 'connect timeout',
  ERR_DOGGED_CONNECTION_RESET: 'connection reset',
  ERR_DOGGED_NAME_RESOLUTION: 'DNS failure',
  ERR_DOGGED_READ_TIMEOUT: 'read timeout',
  ERR_DOGGED_INCOMPLETE_BODY: 'body cut short',
  ERR_DOGGED_TLS: 'TLS failure',
  ERR_DOGGED_PROXY: 'proxy failure',
  ERR_DOGGED_TOTAL_TIMEOUT: 'total timeout',
  ERR_DOGGED_ATTEMPT_TIMEOUT: 'attempt timeout',
  ERR_DOGGED_BODY_TOO_LARGE: 'body too large',
  ERR_DOGGED_RETRY_AFTER_TOO_LONG: 'Retry-After too long',
  ERR_DOGGED_INVALID_LINE: 'invalid line',
  ERR_DOGGED_CRASHED_RUNNER: 'runner died with it',
  ERR_DOGGED_INVALID_RESPONSE: 'unusable answer',
  ERR_DOGGED_HEADERS_TOO_LARGE: 'response head too large',
};

const REASONS: Readonly<Record<string, string>> = {
  'http-status': 'not retried',
  'retries-exhausted': 'retries exhausted',
  'not-retriable': 'not retriable',
  'retry-after-too-long': 'Retry-After beyond --max-retry-after',
  'rate-limited': 'rate limited past --give-up-after',
  'body-too-large': 'body over --max-body',
  'crashed-runner': 'in flight when the runner died 3 times',
  invalid: 'invalid',
};

/** `ERR_DOGGED_CONNECTION_RESET` -> `connection reset`; a status stays a status. */
export function describeKind(kind: string): string {
  if (/^\d{3}$/.test(kind)) return `HTTP ${kind}`;
  return ERROR_NAMES[kind] ?? cell(kind);
}

const number = (n: number): string => n.toLocaleString('en-US');

/** The widest a table cell of free text (a host name, an error kind) is shown. */
export const MAX_CELL = 60;

/**
 * `text` cut to `max` characters with an ellipsis (`…`) as its last: a 1 MB host name must not
 * make a 2 MB summary (its column padded to the longest).
 * @example cell('a'.repeat(100)) // 59 a's and '…'
 */
export function cell(text: string, max = MAX_CELL): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function failureLabel(f: FailureTally): string {
  const what = f.status !== null ? `HTTP ${f.status}` : describeKind(f.errorCode ?? 'unknown');
  return `${what} (${REASONS[f.reason] ?? cell(f.reason)})`;
}

function bar(count: number, max: number, width: number): string {
  if (max <= 0 || count <= 0) return '';
  return '█'.repeat(Math.max(1, Math.round((count / max) * width)));
}

/** Options of {@link formatSummary}. */
export interface FormatSummaryOptions {
  /**
   * The first line's label, e.g. the journal's path.
   * @default 'batch'
   * @example { title: 'run.sqlite' }
   */
  title?: string;
  /**
   * The run's duration, shown on the first line.
   * @default undefined
   * @example { elapsedMs: result.elapsedMs }
   */
  elapsedMs?: number;
  /**
   * Width of the histogram bars, in characters.
   * @default 30
   * @example { barWidth: 50 }
   */
  barWidth?: number;
}

/**
 * The summary as people read it: lines per state, status codes, why lines failed, the
 * failures that retries overcame, a histogram of attempts, and the busiest hosts.
 * @example process.stdout.write(formatSummary(result.summary, { title: 'run.sqlite', elapsedMs: result.elapsedMs }));
 */
export function formatSummary(summary: BatchSummary, options: FormatSummaryOptions = {}): string {
  const c = summary.counts;
  const left = c.pending + c.in_flight;
  const out: string[] = [];
  const elapsed = options.elapsedMs === undefined ? '' : ` in ${formatDuration(options.elapsedMs)}`;
  out.push(
    `${options.title ?? 'batch'}: ${number(summary.total)} lines${elapsed}: ${number(c.done)} done, ${number(c.failed)} failed, ${number(c.invalid)} invalid, ${number(left)} left`,
  );
  const row = (label: string, text: string): void => {
    out.push(`  ${label.padEnd(10)} ${text}`);
  };
  if (summary.statuses.length)
    row('statuses', summary.statuses.map((s) => `${s.value} ×${number(s.count)}`).join('   '));
  if (summary.failures.length) {
    for (const [i, f] of summary.failures.entries())
      row(i === 0 ? 'failed' : '', `${number(f.count).padStart(7)}  ${failureLabel(f)}`);
  }
  if (summary.retried.length) {
    row(
      'retried',
      `${number(summary.retries)} retries after: ${summary.retried
        .map((r) => `${describeKind(r.value)} ×${number(r.count)}`)
        .join(', ')}`,
    );
  }
  if (summary.held.length) {
    const times = summary.held.reduce((n, h) => n + h.count, 0);
    row(
      'held',
      `${number(times)} ${times === 1 ? 'time' : 'times'} by the host, no retry spent: ${summary.held
        .map((h) => `${describeKind(h.value)} ×${number(h.count)}`)
        .join(', ')}`,
    );
  }
  if (summary.attempts.length) {
    const max = Math.max(...summary.attempts.map((a) => a.count));
    const width = options.barWidth ?? 30;
    for (const [i, a] of summary.attempts.entries())
      row(
        i === 0 ? 'attempts' : '',
        `${String(a.value).padStart(2)}  ${number(a.count).padStart(9)}  ${bar(a.count, max, width)}`,
      );
  }
  if (summary.hosts.length) {
    const hostWidth = Math.max(...summary.hosts.map((h) => cell(h.host).length));
    for (const [i, h] of summary.hosts.entries())
      row(
        i === 0 ? 'hosts' : '',
        `${cell(h.host).padEnd(hostWidth)}  ${number(h.lines)} lines: ${number(h.done)} done, ${number(h.failed)} failed${h.left ? `, ${number(h.left)} left` : ''}, ${number(h.retries)} retries`,
      );
    if (summary.hostCount > summary.hosts.length)
      row('', `... and ${number(summary.hostCount - summary.hosts.length)} more hosts`);
  }
  if (left > 0 && summary.nextDueAt !== undefined) {
    const inMs = summary.nextDueAt - Date.now();
    row(
      'next',
      inMs > 0
        ? `the next pending line is due at ${new Date(summary.nextDueAt).toISOString()} (in ${formatDuration(inMs)})`
        : 'pending lines are due now',
    );
  }
  return `${out.join('\n')}\n`;
}
