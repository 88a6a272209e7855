import type { ProxyEntry } from './proxy-pool.js';

/** What a pool knows about one proxy; a snapshot, readable at any time. */
export interface ProxyStatistics {
  /** The proxy, without credentials. */
  readonly url: string;
  /** `benched` while it sits out a ban or failures. */
  readonly state: 'available' | 'benched';
  /** Requests (attempts) sent through it. */
  readonly requests: number;
  /** Responses it delivered that were not bans. */
  readonly successes: number;
  /** Ban statuses the target answered through it. */
  readonly bans: number;
  /** Times the proxy itself failed (refused, CONNECT refused, tunnel failed). */
  readonly failures: number;
  /** Failures since its last success. */
  readonly consecutiveFailures: number;
  /** Times it was benched. */
  readonly benchings: number;
  /** Benchings with no success in between: what makes the next bench longer. */
  readonly strikes: number;
  /** Milliseconds until it returns; 0 when available. */
  readonly benchedForMs: number;
  /** Time to the response head of its last success, ms. */
  readonly lastLatencyMs: number | undefined;
  /** Mean time to the response head of its successes, ms. */
  readonly meanLatencyMs: number | undefined;
  readonly minLatencyMs: number | undefined;
  readonly maxLatencyMs: number | undefined;
  /** The last ban or failure, described (`403 Forbidden`, `ProxyError: ...`), credentials removed. */
  readonly lastProblem: string | undefined;
}

/** The mutable record a pool keeps per proxy. */
export interface ProxyState {
  readonly entry: ProxyEntry;
  requests: number;
  successes: number;
  bans: number;
  failures: number;
  consecutiveFailures: number;
  benchings: number;
  strikes: number;
  benchedUntil: number;
  latencySum: number;
  latencyCount: number;
  lastLatencyMs: number | undefined;
  minLatencyMs: number | undefined;
  maxLatencyMs: number | undefined;
  lastProblem: string | undefined;
}

/** A frozen snapshot of one proxy's record at `now`. */
export function snapshot(s: ProxyState, now: number): ProxyStatistics {
  const benchedForMs = Math.max(0, Math.ceil(s.benchedUntil - now));
  return Object.freeze({
    url: s.entry.url,
    state: benchedForMs > 0 ? 'benched' : 'available',
    requests: s.requests,
    successes: s.successes,
    bans: s.bans,
    failures: s.failures,
    consecutiveFailures: s.consecutiveFailures,
    benchings: s.benchings,
    strikes: s.strikes,
    benchedForMs,
    lastLatencyMs: s.lastLatencyMs,
    meanLatencyMs: s.latencyCount === 0 ? undefined : s.latencySum / s.latencyCount,
    minLatencyMs: s.minLatencyMs,
    maxLatencyMs: s.maxLatencyMs,
    lastProblem: s.lastProblem,
  });
}
