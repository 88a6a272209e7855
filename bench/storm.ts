/**
 * Retry-storm simulation (issue 6): real sockets, many concurrent clients in this process,
 * against bench/server.ts in another process. Four scenarios, one table:
 *
 * (i)   a full outage of 10 s then recovery: load amplification and time to recover;
 * (ii)  a synchronized failure (every request gets 503 for 200 ms): retry arrivals per 100 ms;
 * (iii) 20% random 503s: success rate and attempts per request;
 * (iv)  a server limit of 100 requests/s shared by 50 clients: share of 429s.
 *
 * All randomness is seeded (`seededRandom` for the clients' jitter, a seeded PRNG per run in the
 * server), so runs are comparable; what still varies is the interleaving of real sockets.
 * `npx tsx bench/storm.ts` (about 2.5 minutes); `npx tsx bench/storm.ts ii iv` runs only those.
 */
import { type RetryPolicyOptions, seededRandom, wait } from '../src/index.js';
import { fmt, machine, startBenchServer, table, verdict } from './lib.js';
import { decorrelated, FAILURE_MS, type HerdVariant, herd } from './storm-herd.js';
import { percent, seconds } from './storm-kit.js';
import { flaky, limited } from './storm-limits.js';
import { OUTAGE_MS, type OutageVariant, outage } from './storm-outage.js';

const CLIENTS = 200;
const LIMIT_CLIENTS = 50;
const P503 = 0.2;
const FLAKY_REQUESTS = 20_000;
const LIMIT_MS = 10_000;

type Row = [string, string, string, string, string, string, string];
const rows: Row[] = [];
const goals: string[] = [];
const notes: string[] = [];
const n = (value: number): string => value.toLocaleString('en-US');
const only = new Set(process.argv.slice(2));
const runs = (scenario: string): boolean => only.size === 0 || only.has(scenario);

function goal(label: string, met: boolean, detail: string): string {
  goals.push(`${met ? 'met    ' : 'NOT met'}  ${label}: ${detail}`);
  return verdict(met);
}

const server = await startBenchServer();
const base = server.url;
const started = performance.now();
try {
  // (i) Full outage. One Session per variant shared by all 200 workers: one budget per origin
  // for the whole fleet, as in one process.
  const outageVariants: (OutageVariant & { role?: 'goal' | 'cold' | 'candidate' | 'urllib3' })[] = [
    {
      name: 'dogged defaults, after 10 s of traffic',
      options: { retry: { random: seededRandom(11) } },
      warmupMs: 10_000,
      role: 'goal',
    },
    {
      name: 'dogged defaults, cold (outage from the start)',
      options: { retry: { random: seededRandom(12) } },
      warmupMs: 0,
      role: 'cold',
    },
    {
      name: 'dogged, budget: { ttlMs: 2000 }, after 3 s of traffic',
      options: { retry: { random: seededRandom(13) }, budget: { ttlMs: 2000 } },
      warmupMs: 3_000,
      role: 'candidate',
    },
    {
      name: 'dogged, budget: false',
      options: { retry: { random: seededRandom(14) }, budget: false },
      warmupMs: 2_000,
    },
    {
      name: 'urllib3-like: total 5, backoffFactor 100',
      options: {
        retry: { total: 5, backoffFactor: 100, random: seededRandom(15) },
        budget: false,
      },
      warmupMs: 2_000,
      role: 'urllib3',
    },
    {
      name: 'got-like: 2 retries, 1 s·2ⁿ⁻¹ + U(0, 100)',
      options: {
        retry: {
          total: 2,
          backoff: wait.exponentialJitter({ multiplier: 1000, jitter: 100 }),
          random: seededRandom(16),
        },
        budget: false,
      },
      warmupMs: 2_000,
    },
  ];
  for (const [i, variant] of (runs('i') ? outageVariants : []).entries()) {
    const r = await outage(base, `outage-${i}`, variant, CLIENTS);
    const amp = r.amplification.value;
    const budget =
      r.budgetOutMs === undefined
        ? ''
        : `budget out at ${seconds(r.budgetOutMs)}: ${fmt(r.beforeBudgetOut.value)} before, ${fmt(r.afterBudgetOut.value)} after; `;
    const healthy =
      r.healthyPerSecond === undefined ? '' : ` (healthy ${n(Math.round(r.healthyPerSecond))}/s)`;
    rows.push([
      i === 0 ? `(i) outage ${OUTAGE_MS / 1000} s` : '',
      `${variant.name} (1 session)`,
      n(r.logical),
      n(r.upstream),
      `amplification ${fmt(amp, 3)}`,
      `${budget}recovered ${r.recoveredMs === undefined ? 'never' : `≤ ${seconds(r.recoveredMs)}`}; 95% of clients back ${r.clientsBackMs === undefined ? '> 3 s' : `in ${seconds(r.clientsBackMs)}`}; upstream ${n(Math.round(r.upstream / (OUTAGE_MS / 1000)))}/s${healthy}`,
      variant.role === 'goal'
        ? `whole outage: ${goal('(i) amplification ≤ 1.3 with dogged defaults, over the whole outage', amp <= 1.3, fmt(amp, 3))}; first ${seconds(r.budgetOutMs ?? OUTAGE_MS)}: ${goal(`(i) the same over the first ${seconds(r.budgetOutMs ?? OUTAGE_MS)}, while the budget still held tokens from before the outage`, r.beforeBudgetOut.value <= 1.3, fmt(r.beforeBudgetOut.value))}`
        : variant.role === 'urllib3'
          ? 'ref. about 6'
          : variant.role === 'candidate'
            ? `≤ 1.3? ${amp <= 1.3 ? 'yes' : 'no'}`
            : '',
    ]);
    if (r.clientAttempts !== r.serverArrivals)
      notes.push(
        `(i) ${variant.name}: the client counted ${n(r.clientAttempts)} attempts, the server ${n(r.serverArrivals)} arrivals.`,
      );
    notes.push(
      `(i) ${variant.name}: ${n(r.amplification.attempts)} attempts for the ${n(r.amplification.requests)} logical requests that began and ended inside the outage${r.budgetOutMs === undefined ? '' : ` (${n(r.beforeBudgetOut.requests)} before the budget ran out, ${n(r.afterBudgetOut.requests)} after)`}; upstream/logical over the outage: ${fmt(r.upstream / r.logical)}.`,
    );
  }

  // (ii) Synchronized failure. One Session, budget off (a shared budget would cut the retries
  // under test), retries enough for everyone to get through.
  for (const scale of runs('ii') ? [100, 500] : []) {
    const retry = (extra: RetryPolicyOptions): RetryPolicyOptions => ({
      total: 10,
      random: seededRandom(scale + 1),
      ...extra,
    });
    const random = seededRandom(scale + 2);
    const herdVariants: HerdVariant[] = [
      {
        name: `no jitter: wait.exponential({ multiplier: ${scale} })`,
        retry: retry({ backoff: wait.exponential({ multiplier: scale }) }),
      },
      {
        name: `urllib3 backoff_jitter: backoffFactor ${scale}, backoffJitter ${scale}`,
        retry: retry({ backoffFactor: scale, backoffJitter: scale }),
      },
      {
        name: `full jitter: wait.fullJitter({ multiplier: ${scale} })`,
        retry: retry({ backoff: wait.fullJitter({ multiplier: scale }) }),
      },
      {
        name: `decorrelated: wait.decorrelatedJitter({ base: ${scale} })`,
        retry: retry({ backoff: wait.decorrelatedJitter({ base: scale }) }),
      },
      {
        name: `decorrelated, state per request (Brooker), base ${scale}`,
        retry: retry({}),
        perRequest: () =>
          retry({ backoff: decorrelated(scale, Number.POSITIVE_INFINITY, random), random }),
      },
    ];
    for (const [i, variant] of herdVariants.entries()) {
      const r = await herd(base, `herd-${scale}-${i}`, variant, CLIENTS);
      const full = variant.name.startsWith('full jitter');
      rows.push([
        i === 0 ? `(ii) 503 for ${FAILURE_MS} ms, base ${scale} ms` : '',
        `${variant.name} (1 session, no budget)`,
        n(CLIENTS),
        n(r.retries),
        `peak/mean ${fmt(r.peakToMean95)}`,
        `peak ${r.peak}/100 ms, ${r.peak10}/10 ms; to the last retry (${seconds(r.windows.length * 100)}): ${fmt(r.peakToMean)}; all ok by ${seconds(r.lastSuccessMs)}`,
        full
          ? goal(
              `(ii) full jitter peak/mean ≤ 2 (base ${scale} ms)`,
              r.peakToMean95 <= 2,
              fmt(r.peakToMean95),
            )
          : '',
      ]);
      notes.push(
        `(ii) base ${scale}, ${variant.name}: retries per 100 ms [${r.windows.join(' ')}]; ${r.succeeded}/${CLIENTS} ok; first attempts arrived within ${r.firstWaveMs} ms.`,
      );
    }
  }

  // (iii) 20% random 503 (with Retry-After: 0, the server's p503 mode). One Session, defaults.
  const ceiling = 1 - P503 ** 4;
  for (const [i, total] of (runs('iii') ? [3, 8] : []).entries()) {
    const options = { retry: { total, random: seededRandom(30 + i) } };
    const r = await flaky(base, `flaky-${i}`, options, P503, FLAKY_REQUESTS, CLIENTS);
    const attempts = r.attempts / r.logical;
    const rate = r.succeeded / r.logical;
    rows.push([
      i === 0 ? `(iii) ${P503 * 100}% random 503` : '',
      `${total === 3 ? 'dogged defaults' : 'retry: { total: 8 }'} (1 session)`,
      n(r.logical),
      n(r.attempts),
      `${percent(r.succeeded, r.logical, 2)} ok, ${fmt(attempts, 3)} attempts`,
      total === 3
        ? `ceiling 1 − p⁴ = ${(ceiling * 100).toFixed(2)}%; ideal 1/(1−p) = ${fmt(1 / (1 - P503), 3)}; server 503s ${percent(r.server503, r.serverArrivals)}`
        : `ceiling 1 − p⁹ = ${((1 - P503 ** 9) * 100).toFixed(5)}%; server 503s ${percent(r.server503, r.serverArrivals)}`,
      total === 3
        ? `≈1.25: ${goal('(iii) mean attempts ≈ 1/(1−p) = 1.25 (±0.02)', Math.abs(attempts - 1.25) <= 0.02, fmt(attempts, 3))}; 100%: ${goal('(iii) 100% success with dogged defaults', rate === 1, percent(r.succeeded, r.logical, 2))}`
        : `100%: ${goal('(iii) 100% success with total 8', rate === 1, percent(r.succeeded, r.logical, 2))}`,
    ]);
    notes.push(
      `(iii) total ${total}: ${n(r.logical - r.succeeded)} failed${r.failures.size ? ` (${[...r.failures].map(([k, v]) => `${v} ${k}`).join(', ')})` : ''}; ${n(r.server503)} of ${n(r.serverArrivals)} server answers were 503.`,
    );
    if (r.attempts !== r.serverArrivals)
      notes.push(
        `(iii) total ${total}: the client counted ${n(r.attempts)} attempts, the server ${n(r.serverArrivals)} arrivals.`,
      );
  }

  // (iv) Server limit 100/s (a bucket shared by all clients, like chaos /ratelimit per IP).
  const limitVariants: [string, Parameters<typeof limited>[2]][] = [
    ["rateLimit: 'adaptive' (the default)", {}],
    ['rateLimit: { perSecond: 100 }', { rateLimit: { perSecond: 100 } }],
    ['rateLimit: false (cooldown on)', { rateLimit: false }],
    ['rateLimit: false, cooldown: false', { rateLimit: false, cooldown: false }],
  ];
  for (const [i, [name, options]] of (runs('iv') ? limitVariants : []).entries()) {
    const r = await limited(
      base,
      `limit-${i}`,
      { ...options, retry: { random: seededRandom(40 + i) } },
      { rps: 100, burst: 100 },
      LIMIT_MS,
      LIMIT_CLIENTS,
    );
    rows.push([
      i === 0 ? '(iv) server limit 100/s, burst 100' : '',
      `${name} (1 session, ${LIMIT_CLIENTS} clients)`,
      n(r.logical),
      n(r.arrivals),
      `429s ${percent(r.s429, r.arrivals)}`,
      `useful ${fmt(r.ok / r.seconds, 1)}/s (after 1 s: ${fmt(r.okAfter1s / (r.seconds - 1), 1)}/s, 429s ${percent(r.s429After1s, r.arrivalsAfter1s)}); ${n(r.logical - r.succeeded)} failed`,
      i === 0
        ? goal(
            "(iv) 429s ≤ 5% with rateLimit: 'adaptive'",
            r.s429 <= 0.05 * r.arrivals,
            percent(r.s429, r.arrivals),
          )
        : '',
    ]);
  }
} finally {
  server.stop();
}

console.log(`\nRetry-storm simulation — ${machine()}\n`);
console.log(
  table(['scenario', 'client (sessions)', 'logical', 'upstream', 'result', 'also', 'goal'], rows),
);
console.log('\nGoals:');
for (const line of goals) console.log(`  ${line}`);
const definitions = [
  `Set-up: the clients are async workers in this process, the server is bench/server.ts in a child process, real sockets on 127.0.0.1. Every row uses ONE Session shared by all its workers, so the fleet shares one retry budget, cooldown and rate limiter per origin (separate processes would each have their own). Jitter is seeded (seededRandom), the server's faults too; the interleaving of real sockets is not.`,
  `(i) Closed loop: each of ${CLIENTS} workers sends a request, records the outcome, sends the next. The server answers 503 without Retry-After to everything for ${OUTAGE_MS / 1000} s. logical = requests started during the outage; upstream = requests the server received during it; amplification = mean attempts of the logical requests that began and ended inside it; recovered = end of the first 100 ms window after it in which ≥ 95% of the logical requests that completed succeeded; clients back = when 95% of the workers had had a success after it.`,
  `(ii) Each of ${CLIENTS} workers sends one request at the same instant; the server answers 503 without Retry-After to everything for ${FAILURE_MS} ms; total: 10 retries so that all get through; no budget. Retries (the upstream column) are the arrivals with x-attempt > 1 in the server's log. peak = most retries in any 100 ms (sliding by 10 ms); mean = retries per 100 ms from the failure until 95% of them had arrived (the last 5% are a thin tail of clients that failed twice or more; the mean up to the very last retry is shown too).`,
  `(ii) Expected shape (Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015): backoff alone leaves clients that failed together in step, so their retries come back as tall spikes at the same instants, sparser but no smaller; adding randomness spreads each round over its interval, so the spikes flatten into a fairly even flow of calls. In his simulation unjittered backoff was the clear loser (most calls, longest time); of the jittered kinds full jitter made the fewest calls, decorrelated a few more but finished a little sooner, equal jitter took longest. With full jitter each round is spread evenly over [0, base·2ⁿ⁻¹], so a one-off failure gives a plateau per round, each lower and wider than the last: peak/mean near 2 is the shape itself, not noise.`,
  `(iii) The server's p503 mode: a seeded 20% of arrivals get 503 with Retry-After: 0, so retries are immediate; p is per attempt, independent, so with total: 3 at most 1 − p⁴ of the requests can succeed.`,
  `(iv) ${LIMIT_CLIENTS} closed-loop workers for ${LIMIT_MS / 1000} s; one token bucket on the server for all of them (rps 100, burst 100; like chaos /ratelimit, which counts per client IP: all workers share 127.0.0.1), 429 with Retry-After in whole seconds (≥ 1), which dogged obeys. 429s = share of the server's answers; useful = 200s per second, the first second's burst of 100 included.`,
];
console.log('\nNotes:');
for (const line of [...definitions, ...notes]) console.log(`  - ${line}`);
console.log(`\n(${((performance.now() - started) / 1000).toFixed(0)} s)`);
