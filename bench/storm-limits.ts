/**
 * Scenarios (iii) and (iv) of bench/storm.ts: random 503s, and a server rate limit of
 * 100 requests/s. Not a benchmark itself (bench/run.ts skips it).
 */
import { setMaxListeners } from 'node:events';
import type { SessionOptions } from '../src/index.js';
import {
  AttemptCounter,
  attempt,
  countedSession,
  loop,
  now,
  readLog,
  readStats,
  startRun,
  sumBins,
} from './storm-kit.js';

export interface FlakyResult {
  logical: number;
  succeeded: number;
  attempts: number;
  serverArrivals: number;
  server503: number;
  /** Why the failed requests failed: error name → count. */
  failures: Map<string, number>;
}

function tally(failures: Map<string, number>): (error: unknown) => void {
  return (error) => {
    const name = error instanceof Error ? error.name : typeof error;
    failures.set(name, (failures.get(name) ?? 0) + 1);
  };
}

/** (iii) `logical` requests by `clients` workers against a seeded `p` share of 503s. */
export async function flaky(
  base: string,
  run: string,
  options: SessionOptions,
  p: number,
  logical: number,
  clients: number,
): Promise<FlakyResult> {
  const counter = new AttemptCounter();
  const session = countedSession(options, counter);
  let next = 0;
  let succeeded = 0;
  const failures = new Map<string, number>();
  const onError = tally(failures);
  await loop(
    clients,
    () => next >= logical,
    async () => {
      const id = next++;
      const url = `${base}/?p503=${p}&seed=7&run=${run}&i=${id}`;
      if (await attempt(() => session.get(url), onError)) succeeded++;
    },
  );
  await session.close();
  const stats = await readStats(base, run);
  return {
    logical,
    succeeded,
    attempts: counter.total,
    serverArrivals: stats.arrivals,
    server503: stats.s503,
    failures,
  };
}

export interface LimitedResult {
  logical: number;
  succeeded: number;
  arrivals: number;
  ok: number;
  s429: number;
  /** The same counts after the first second. */
  arrivalsAfter1s: number;
  okAfter1s: number;
  s429After1s: number;
  seconds: number;
}

/** (iv) `clients` closed-loop workers for `durationMs` against a shared server rate limit. */
export async function limited(
  base: string,
  run: string,
  options: SessionOptions,
  limit: { rps: number; burst: number },
  durationMs: number,
  clients: number,
): Promise<LimitedResult> {
  const counter = new AttemptCounter();
  const session = countedSession(options, counter);
  const deadline = new AbortController();
  setMaxListeners(clients * 4, deadline.signal);
  let next = 0;
  let logical = 0;
  let succeeded = 0;
  const t0 = await startRun(base, run);
  const timer = setTimeout(() => deadline.abort(), durationMs);
  await loop(
    clients,
    () => now() - t0 >= durationMs,
    async () => {
      const id = next++;
      const url = `${base}/?storm=${run}&rps=${limit.rps}&burst=${limit.burst}&i=${id}`;
      const ok = await attempt(() => session.get(url, { signal: deadline.signal }));
      if (deadline.signal.aborted) return; // cut by the end of the run: neither outcome
      logical++;
      if (ok) succeeded++;
    },
  );
  clearTimeout(timer);
  await session.close();
  const log = await readLog(base, run);
  const end = Math.round(durationMs / log.binMs);
  const second = Math.round(1000 / log.binMs);
  return {
    logical,
    succeeded,
    arrivals: sumBins(log.arrivals, 0, end),
    ok: sumBins(log.ok, 0, end),
    s429: sumBins(log.s429, 0, end),
    arrivalsAfter1s: sumBins(log.arrivals, second, end),
    okAfter1s: sumBins(log.ok, second, end),
    s429After1s: sumBins(log.s429, second, end),
    seconds: durationMs / 1000,
  };
}
