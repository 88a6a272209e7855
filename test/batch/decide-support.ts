import type { AttemptResult } from '../../src/batch/decide.js';
import type { HistoryEntry } from '../../src/batch/journal-schema.js';

/** Shared inputs of the decision tests: a clock time, a URL, attempt results, a GET line. */
export const NOW = 1_700_000_000_000;
export const url = 'http://127.0.0.1:9/x';

export function response(status: number, headers: Record<string, string> = {}): AttemptResult {
  return { kind: 'response', status, headers: new Headers(headers), ttfbMs: 1, durationMs: 2 };
}

export function failure(error: unknown): AttemptResult {
  return { kind: 'error', error, status: undefined, ttfbMs: undefined, durationMs: 1 };
}

export const get = (history: HistoryEntry[] = [], firstAttemptAt = NOW) => ({
  method: 'GET',
  url,
  replaySafe: false,
  history,
  firstAttemptAt,
});
