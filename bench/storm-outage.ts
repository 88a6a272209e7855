/**
 * Scenario (i) of bench/storm.ts: 200 closed-loop clients, a full outage of 10 s, recovery.
 * Not a benchmark itself (bench/run.ts skips it).
 */
import { BudgetExhaustedError, type SessionOptions } from '../src/index.js';
import {
  AttemptCounter,
  attempt,
  countedSession,
  loop,
  now,
  readLog,
  startRun,
  sumBins,
  WINDOW_MS,
} from './storm-kit.js';

export const OUTAGE_MS = 10_000;
const RECOVERY_MS = 3_000;

export interface OutageVariant {
  name: string;
  options: SessionOptions;
  /** Healthy traffic before the outage (10 s fills the default budget's window). */
  warmupMs: number;
}

/** Mean attempts per logical request, over some of them. */
export interface Amplification {
  requests: number;
  attempts: number;
  /** attempts / requests (NaN when there are none). */
  value: number;
}

export interface OutageResult {
  /** Logical requests started during the outage. */
  logical: number;
  /** Upstream requests the server saw during the outage. */
  upstream: number;
  /** Over the logical requests that started and ended inside the outage (every attempt failed). */
  amplification: Amplification;
  /** When the retry budget first refused a retry, ms after the outage began. */
  budgetOutMs: number | undefined;
  /** The amplification of the requests (wholly inside) started before and after that moment. */
  beforeBudgetOut: Amplification;
  afterBudgetOut: Amplification;
  /** End of the first 100 ms window after the outage where ≥ 95% of completions succeed. */
  recoveredMs: number | undefined;
  /** When 95% of the clients had had a success after the outage, ms after its end. */
  clientsBackMs: number | undefined;
  /** Successful logical requests per second before the outage (undefined without a warm-up). */
  healthyPerSecond: number | undefined;
  /** Attempts counted by the client over the whole run, and arrivals seen by the server. */
  clientAttempts: number;
  serverArrivals: number;
}

class Mean {
  requests = 0;
  attempts = 0;
  add(attempts: number): void {
    this.requests++;
    this.attempts += attempts;
  }
  done(): Amplification {
    return {
      requests: this.requests,
      attempts: this.attempts,
      value: this.attempts / this.requests,
    };
  }
}

/** Runs one variant against `base` (the bench server). */
export async function outage(
  base: string,
  run: string,
  variant: OutageVariant,
  clients: number,
): Promise<OutageResult> {
  const counter = new AttemptCounter();
  const session = countedSession(variant.options, counter);
  const starts: number[] = [];
  const ends: number[] = [];
  const oks: boolean[] = [];
  const attempts: number[] = [];
  const workers: number[] = [];
  let budgetOut: number | undefined;
  const onError = (error: unknown): void => {
    if (budgetOut === undefined && error instanceof BudgetExhaustedError) budgetOut = now();
  };
  let next = 0;
  const t0 = await startRun(base, run, { downAt: variant.warmupMs, downFor: OUTAGE_MS });
  const from = t0 + variant.warmupMs;
  const to = from + OUTAGE_MS;
  const stop = to + RECOVERY_MS;
  await loop(
    clients,
    () => now() >= stop,
    async (worker) => {
      const id = next++;
      const started = now();
      const ok = await attempt(() => session.get(`${base}/?storm=${run}&i=${id}`), onError);
      starts.push(started);
      ends.push(now());
      oks.push(ok);
      attempts.push(counter.take(id));
      workers.push(worker);
    },
  );
  await session.close();
  const log = await readLog(base, run);

  let logical = 0;
  const inside = new Mean();
  const before = new Mean();
  const after = new Mean();
  let warmOk = 0;
  const warmFrom = t0 + Math.min(1000, variant.warmupMs / 2);
  const windowsAfter = Math.ceil(RECOVERY_MS / WINDOW_MS);
  const back = new Array<number>(clients).fill(Number.POSITIVE_INFINITY);
  const done = new Array<number>(windowsAfter).fill(0);
  const good = new Array<number>(windowsAfter).fill(0);
  for (let i = 0; i < starts.length; i++) {
    const start = starts[i] as number;
    const end = ends[i] as number;
    const ok = oks[i] as boolean;
    const n = attempts[i] as number;
    if (start >= from && start < to) logical++;
    if (start >= from && end < to) {
      inside.add(n);
      if (budgetOut === undefined || start < budgetOut) before.add(n);
      else after.add(n);
    }
    if (ok && end >= warmFrom && end < from) warmOk++;
    const worker = workers[i] as number;
    if (ok && end >= to)
      back[worker] = Math.min(back[worker] ?? Number.POSITIVE_INFINITY, end - to);
    const w = Math.floor((end - to) / WINDOW_MS);
    if (w >= 0 && w < windowsAfter) {
      done[w] = (done[w] ?? 0) + 1;
      if (ok) good[w] = (good[w] ?? 0) + 1;
    }
  }
  const healthy = from > warmFrom ? (warmOk * WINDOW_MS) / (from - warmFrom) : undefined;
  const recovered = done.findIndex((n, w) => n > 0 && (good[w] ?? 0) >= 0.95 * n);
  back.sort((a, b) => a - b);
  const back95 = back[Math.ceil(0.95 * clients) - 1] ?? Number.POSITIVE_INFINITY;
  const bin = (ms: number) => Math.round(ms / log.binMs);
  return {
    logical,
    upstream: sumBins(log.arrivals, bin(variant.warmupMs), bin(variant.warmupMs + OUTAGE_MS)),
    amplification: inside.done(),
    budgetOutMs: budgetOut === undefined ? undefined : budgetOut - from,
    beforeBudgetOut: before.done(),
    afterBudgetOut: after.done(),
    recoveredMs: recovered === -1 ? undefined : (recovered + 1) * WINDOW_MS,
    clientsBackMs: Number.isFinite(back95) ? back95 : undefined,
    healthyPerSecond: healthy === undefined ? undefined : (healthy * 1000) / WINDOW_MS,
    clientAttempts: counter.total,
    serverArrivals: sumBins(log.arrivals, 0, log.arrivals.length),
  };
}
