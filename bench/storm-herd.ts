/**
 * Scenario (ii) of bench/storm.ts: 200 clients fail at the same instant (every request gets 503
 * for 200 ms), then retry per their wait strategy. Not a benchmark itself (bench/run.ts skips it).
 */
import type { AttemptState, RandomSource, RetryPolicyOptions } from '../src/index.js';
import {
  AttemptCounter,
  attempt,
  countedSession,
  now,
  readLog,
  startRun,
  sumBins,
  WINDOW_MS,
  warm,
  windows,
} from './storm-kit.js';

export const FAILURE_MS = 200;

export interface HerdVariant {
  name: string;
  /** The retry options of the session (the backoff under test). */
  retry: RetryPolicyOptions;
  /** Per-request retry options instead, when the strategy keeps state per logical request. */
  perRequest?: () => RetryPolicyOptions;
}

export interface HerdResult {
  retries: number;
  /** Retries per 100 ms window, from the failure to the last retry. */
  windows: number[];
  /** The most retries in any 100 ms (a window sliding in 10 ms steps). */
  peak: number;
  /** The most retries in one 10 ms bin. */
  peak10: number;
  /** Peak over the mean of every window from the failure to the last retry. */
  peakToMean: number;
  /** The same over the windows up to the one by which 95% of the retries had arrived. */
  peakToMean95: number;
  /** When the last client got its 200, ms after the failure. */
  lastSuccessMs: number;
  succeeded: number;
  /** How long the synchronized first attempts took to arrive (ms, 10 ms bins). */
  firstWaveMs: number;
}

/**
 * Brooker's decorrelated jitter with its state kept per logical request:
 * `min(cap, U(base, 3 · previous sleep))`, `previous` starting at `base`.
 */
export function decorrelated(
  base: number,
  cap: number,
  random: RandomSource,
): (state: AttemptState<unknown>) => number {
  let previous = base;
  return (state) => {
    if (state.attempt <= 1) previous = base;
    previous = Math.min(cap, base + random() * (previous * 3 - base));
    return previous;
  };
}

export async function herd(
  base: string,
  run: string,
  variant: HerdVariant,
  clients: number,
): Promise<HerdResult> {
  const counter = new AttemptCounter();
  const session = countedSession({ retry: variant.retry, budget: false }, counter);
  await warm(session, `${base}/`, clients);
  const t0 = await startRun(base, run, { downAt: 0, downFor: FAILURE_MS });
  let last = 0;
  const outcomes = await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      const url = `${base}/?storm=${run}&i=${i}`;
      const ok = await attempt(() =>
        session.get(url, variant.perRequest ? { retry: variant.perRequest() } : {}),
      );
      last = Math.max(last, now() - t0);
      return ok;
    }),
  );
  await session.close();
  const log = await readLog(base, run);
  const bins = log.retries;
  const total = bins.reduce((a, b) => a + b, 0);
  const lastBin = bins.length - 1;
  const count = Math.floor((lastBin * log.binMs) / WINDOW_MS) + 1;
  const per = windows(bins, log.binMs, 0, count);
  // The peak over any 100 ms (sliding in 10 ms steps), so that a spike is not split in two by
  // where the fixed windows happen to fall.
  const per10 = WINDOW_MS / log.binMs;
  let peak = 0;
  for (let i = 0; i <= lastBin; i++) peak = Math.max(peak, sumBins(bins, i, i + per10));
  let cumulative = 0;
  const w95 = per.findIndex((n) => {
    cumulative += n;
    return cumulative >= 0.95 * total;
  });
  const span95 = per.slice(0, w95 + 1);
  const firsts = log.arrivals.map((n, i) => n - (bins[i] ?? 0));
  const firstBins = firsts.map((n, i) => (n > 0 ? i : -1)).filter((i) => i >= 0);
  return {
    retries: total,
    windows: per,
    peak,
    peak10: Math.max(...bins),
    peakToMean: peak / (total / count),
    peakToMean95: peak / (span95.reduce((a, b) => a + b, 0) / span95.length),
    lastSuccessMs: last,
    succeeded: outcomes.filter(Boolean).length,
    firstWaveMs: ((firstBins[firstBins.length - 1] ?? 0) - (firstBins[0] ?? 0) + 1) * log.binMs,
  };
}
