import type { HistoryEntry, LineState } from '../../src/batch/journal-schema.js';

/** One synthetic journal row: what a report reads. */
export interface FakeRow {
  line: number;
  url: string | null;
  host: string | null;
  state: LineState;
  status?: number | null;
  errorCode?: string | null;
  errorMessage?: string | null;
  reason?: string | null;
  attempts: number;
  history?: HistoryEntry[];
  firstAttemptAt?: number | null;
  finishedAt?: number | null;
  durationMs?: number | null;
}

export const COLUMNS = [
  'line',
  'line_hash',
  'method',
  'url',
  'host',
  'state',
  'attempts',
  'history',
  'status',
  'error_code',
  'error_message',
  'reason',
  'first_attempt_at',
  'finished_at',
  'duration_ms',
] as const;

/** A row's values in {@link COLUMNS} order (history as JSON text). */
export function valuesOf(row: FakeRow): unknown[] {
  return [
    row.line,
    `h${row.line}`,
    row.url === null ? null : 'GET',
    row.url,
    row.host,
    row.state,
    row.attempts,
    row.history ? JSON.stringify(row.history) : null,
    row.status ?? null,
    row.errorCode ?? null,
    row.errorMessage ?? null,
    row.reason ?? null,
    row.firstAttemptAt ?? null,
    row.finishedAt ?? null,
    row.durationMs ?? null,
  ];
}

const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);

/**
 * A small batch with known numbers: 20 lines over 3 hosts. Lines 1-12 done 200 (lines 3, 6
 * after a 503 and a backoff of 250 ms; line 9 after a 429 and Retry-After 2 s), lines 13-15
 * failed 404 (http-status), 16-17 failed ECONNRESET (retries-exhausted, 3 backoffs each), 18
 * pending, 19 invalid, 20 done 500 ms slow. Finished one per second from T0.
 */
export function knownRows(): FakeRow[] {
  const rows: FakeRow[] = [];
  for (let line = 1; line <= 20; line++) {
    const host = `h${line % 3}.test:80`;
    const url = `http://${host}/item/${line}`;
    const at = T0 + line * 1000;
    const base = {
      line,
      url,
      host,
      firstAttemptAt: at - 500,
      finishedAt: at,
      durationMs: 10 + line,
    };
    if (line <= 12 || line === 20) {
      const history: HistoryEntry[] = [];
      if (line === 3 || line === 6)
        history.push({ at: at - 300, status: 503, delayMs: 250, source: 'backoff' });
      if (line === 9)
        history.push({ at: at - 300, status: 429, delayMs: 2000, source: 'retry-after' });
      rows.push({
        ...base,
        state: 'done',
        status: 200,
        reason: 'ok',
        attempts: history.length + 1,
        history,
        ...(line === 20 && { durationMs: 500 }),
      });
    } else if (line <= 15) {
      rows.push({ ...base, state: 'failed', status: 404, reason: 'http-status', attempts: 1 });
    } else if (line <= 17) {
      rows.push({
        ...base,
        state: 'failed',
        errorCode: 'ECONNRESET',
        errorMessage: 'socket hang up',
        reason: 'retries-exhausted',
        attempts: 4,
        history: [10, 20, 40].map((d) => ({
          at,
          code: 'ECONNRESET',
          delayMs: d,
          source: 'backoff' as const,
        })),
      });
    } else if (line === 18) {
      rows.push({ line, url, host, state: 'pending', attempts: 0 });
    } else {
      rows.push({ line, url: null, host: null, state: 'invalid', attempts: 0 });
    }
  }
  return rows;
}
