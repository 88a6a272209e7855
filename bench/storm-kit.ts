/**
 * Helpers of bench/storm.ts: the storm endpoints of bench/server.ts (start a run, read its
 * arrival log), sessions that tag every attempt, worker loops and 100 ms window arithmetic.
 * Not a benchmark itself (bench/run.ts skips it).
 */
import { request } from 'undici';
import { type BeforeRequestContext, Session, type SessionOptions } from '../src/index.js';

/** Monotonic milliseconds of this process. */
export const now = (): number => performance.now();

export const WINDOW_MS = 100;

/** What `GET /storm/log?run=ID` answers: counts per `binMs` bin from the run's start. */
export interface StormLog {
  binMs: number;
  arrivals: number[];
  retries: number[];
  ok: number[];
  s503: number[];
  s429: number[];
}

async function getJson(url: string): Promise<unknown> {
  const response = await request(url);
  const value: unknown = await response.body.json();
  if (response.statusCode !== 200) throw new Error(`${url} answered ${response.statusCode}`);
  return value;
}

/** Starts run `id` on the bench server; resolves with the run's start in this process's clock. */
export async function startRun(
  base: string,
  id: string,
  outage: { downAt: number; downFor: number } = { downAt: 0, downFor: 0 },
): Promise<number> {
  const sent = now();
  await getJson(
    `${base}/storm/start?run=${encodeURIComponent(id)}&downAt=${outage.downAt}&downFor=${outage.downFor}`,
  );
  return (sent + now()) / 2;
}

export async function readLog(base: string, id: string): Promise<StormLog> {
  return (await getJson(`${base}/storm/log?run=${encodeURIComponent(id)}`)) as StormLog;
}

/** Fault-stream counters of `GET /stats?run=ID` (the `p503` mode). */
export async function readStats(
  base: string,
  id: string,
): Promise<{ arrivals: number; s503: number; resets: number }> {
  return (await getJson(`${base}/stats?run=${encodeURIComponent(id)}`)) as {
    arrivals: number;
    s503: number;
    resets: number;
  };
}

/** Sum of `bins[from, to)` clipped to the array. */
export function sumBins(bins: readonly number[], from: number, to: number): number {
  let total = 0;
  for (let i = Math.max(0, from); i < Math.min(to, bins.length); i++) total += bins[i] ?? 0;
  return total;
}

/** Regroups 10 ms bins into windows of `WINDOW_MS`, from bin `from` for `count` windows. */
export function windows(
  bins: readonly number[],
  binMs: number,
  fromMs: number,
  count: number,
): number[] {
  const per = WINDOW_MS / binMs;
  const first = Math.round(fromMs / binMs);
  return Array.from({ length: count }, (_, w) =>
    sumBins(bins, first + w * per, first + (w + 1) * per),
  );
}

/** Counts every attempt (upstream request) per logical request, keyed by its `i` query value. */
export class AttemptCounter {
  readonly #byId = new Map<string, number>();
  total = 0;

  /** The `beforeRequest` hook: tags the attempt for the server and counts it. */
  readonly hook = (request: BeforeRequestContext): void => {
    request.headers['x-attempt'] = String(request.attempt);
    this.total++;
    const id = /[?&]i=(\d+)/.exec(request.url)?.[1];
    if (id !== undefined) this.#byId.set(id, (this.#byId.get(id) ?? 0) + 1);
  };

  /** The attempts made for logical request `id`, forgotten once read. */
  take(id: number): number {
    const key = String(id);
    const n = this.#byId.get(key) ?? 0;
    this.#byId.delete(key);
    return n;
  }
}

/** A Session with `options`, silent, whose attempts `counter` sees. */
export function countedSession(options: SessionOptions, counter: AttemptCounter): Session {
  return new Session({ ...options, logger: false, hooks: { beforeRequest: counter.hook } });
}

/** Runs `workers` loops of `body` until `until()` is true (checked before each iteration). */
export async function loop(
  workers: number,
  until: () => boolean,
  body: (worker: number) => Promise<void>,
): Promise<void> {
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      while (!until()) await body(worker);
    }),
  );
}

/**
 * One logical request: sends it, reads the whole body; true on a 200. Errors are outcomes,
 * shown to `onError` when given.
 */
export async function attempt(
  send: () => Promise<{ status: number; arrayBuffer(): Promise<ArrayBuffer> }>,
  onError?: (error: unknown) => void,
): Promise<boolean> {
  try {
    const response = await send();
    await response.arrayBuffer();
    return response.status === 200;
  } catch (error) {
    onError?.(error);
    return false;
  }
}

/** Opens `n` keep-alive connections (one request each, all at once) so a test starts warm. */
export async function warm(session: Session, url: string, n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, () => attempt(() => session.get(url))));
}

export function percent(part: number, whole: number, digits = 1): string {
  return whole === 0 ? 'n/a' : `${((100 * part) / whole).toFixed(digits)}%`;
}

export function seconds(ms: number): string {
  return ms >= 10_000
    ? `${(ms / 1000).toFixed(0)} s`
    : ms >= 1000
      ? `${(ms / 1000).toFixed(1)} s`
      : `${Math.round(ms)} ms`;
}
