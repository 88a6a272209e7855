import { readFileSync, statSync } from 'node:fs';
import { sleep } from './limiter-process.js';

/**
 * What a limiter saw: its request log (nginx's access log, HAProxy's stdout), one line a request,
 * read once it has settled, as arrivals and totals per status.
 */

/** One request the limiter answered: when (epoch ms, millisecond precision), status, URI. */
export interface Arrival {
  readonly ms: number;
  readonly status: number;
  readonly uri: string;
}

/** Requests per status, and the first and last arrival (epoch ms; 0 when there were none). */
export interface LimiterStats {
  readonly total: number;
  readonly byStatus: Record<number, number>;
  readonly firstMs: number;
  readonly lastMs: number;
}

/** Totals of `arrivals`. */
export function summarizeArrivals(arrivals: readonly Arrival[]): LimiterStats {
  const byStatus: Record<number, number> = {};
  let firstMs = Number.POSITIVE_INFINITY;
  let lastMs = 0;
  for (const a of arrivals) {
    byStatus[a.status] = (byStatus[a.status] ?? 0) + 1;
    firstMs = Math.min(firstMs, a.ms);
    lastMs = Math.max(lastMs, a.ms);
  }
  return { total: arrivals.length, byStatus, firstMs: arrivals.length ? firstMs : 0, lastMs };
}

/** `1733231234.567 429 /item/1` (nginx `$msec $status $request_uri`, HAProxy `%Ts.%ms %ST %HU`). */
function parseLogLines(text: string): Arrival[] {
  const rows: Arrival[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+)\.(\d{3}) (\d{3}) (\S*)/.exec(line);
    if (!m) continue;
    rows.push({
      ms: Number(m[1]) * 1000 + Number(m[2]),
      status: Number(m[3]),
      uri: m[4] ?? '',
    });
  }
  return rows;
}

/**
 * A limiter writes its log line a moment after the client has its response: waits until the
 * log stops growing (250 ms without a new line, at most 3 s) before reading it. (50 ms was too
 * short on a loaded machine: HAProxy's last two lines of a run once came after such a pause.)
 */
async function settled(size: () => number): Promise<void> {
  const deadline = Date.now() + 3000;
  let last = size();
  let quiet = 0;
  while (quiet < 250 && Date.now() < deadline) {
    await sleep(50);
    const now = size();
    quiet = now === last ? quiet + 50 : 0;
    last = now;
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** The file's text, '' when it cannot be read. */
export function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * A limiter's request log, read once it has settled. With `minimum` (the requests the client
 * already had answers to), it is read again until it holds at least that many, for up to 10 s:
 * on a loaded machine HAProxy once wrote a run's last line more than 250 ms after the others.
 */
export interface RequestLog {
  /** Requests per status. */
  stats(minimum?: number): Promise<LimiterStats>;
  /** Every request, in log order. */
  arrivals(minimum?: number): Promise<Arrival[]>;
}

/** The request log that `read()` returns whole, `size()` its length so far. */
export function requestLog(read: () => string, size: () => number): RequestLog {
  const arrivals = async (minimum = 0): Promise<Arrival[]> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      await settled(size);
      const rows = parseLogLines(read());
      if (rows.length >= minimum || Date.now() >= deadline) return rows;
    }
  };
  return { arrivals, stats: async (minimum) => summarizeArrivals(await arrivals(minimum)) };
}

/** The request log in the file at `path`. */
export function fileRequestLog(path: string): RequestLog {
  return requestLog(
    () => readText(path),
    () => fileSize(path),
  );
}
