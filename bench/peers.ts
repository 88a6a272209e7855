/**
 * dogged against its peers: one loopback server (bench/server.ts, its own process), one workload
 * (GET, 64 concurrent, 1 KiB bodies), every client side by side in the same run, each with its
 * DEFAULT retry settings:
 * (a) no failures: requests/s and client CPU µs per request, beside three undici baselines:
 *   the bare `Agent.request({ origin, path })` (the limit, and what the ratios divide by), the
 *   top-level `undici.request` helper and undici's RetryAgent;
 * (b) a seeded 20% of arrivals answered 503 with `Retry-After: 0`: requests/s and success rate;
 * (c) a seeded 10% of arrivals reset (RST) before any response byte: success rate.
 * (b′), (c′) the same faults, transient: a seeded 20% (10%) of requests meet the fault on their
 *   first attempt only; any retry gets 200. Success rate.
 * Rounds are interleaved (order alternates) and requests/s is the median round; success rates
 * pool every round. A request succeeds when it ends in a 200 with the whole 1 KiB body.
 *
 * In (b) and (c) faults are drawn per arrival, retries included (every client sees the same
 * seeded sequence), so k retries reach at best 1 - p^(k+1): the report prints that ceiling beside
 * each rate. In (b′) and (c′) one retry is enough: 100% is every retrying client's ceiling.
 * Every fault run is capped: no new request after BENCH_CAP_MS, and whatever is still in flight
 * (sleeping in a long backoff) BENCH_GRACE_MS later is aborted and reported as unfinished, so a
 * peer whose defaults back off for seconds is measured, not waited for.
 *
 * (gzip), (h2): dogged against undici and got on a gzip-encoded body and over HTTP/2 with TLS;
 *   see bench/peers-wire.ts.
 *
 * BENCH_FAULTS=0 runs (a) only of (a) to (c′). BENCH_ONLY=gzip,h2 (a comma list of `peers`,
 * `gzip`, `h2`) runs only those sections; `peers` is (a) to (c′). (gzip) and (h2) take
 * BENCH_ROUNDS and BENCH_REQUESTS as (a) does. Each of their samples runs in a process of its
 * own: BENCH_CHILD_WARMUP requests (default 10,000) unmeasured, then BENCH_CHILD_SAMPLE_MS
 * (default 3,000) measured; BENCH_PROCESSES=0 runs them in this process instead, with
 * BENCH_SAMPLE_MS and BENCH_WARMUP as (a) (see bench/peers-wire.ts; bench/http-overhead.ts
 * measures (a)'s clients one per process).
 * Scale with BENCH_ROUNDS and BENCH_SAMPLE_MS (scenario a: each client runs for that long per
 * round; BENCH_REQUESTS caps the requests of one sample), BENCH_FAULT_ROUNDS and
 * BENCH_FAULT_REQUESTS (b and c), BENCH_CAP_MS and BENCH_GRACE_MS. `dogged fetch` shows
 * "(not available)" on a build whose Session has no `fetch()`. Results: docs/performance.md.
 */

import axios from 'axios';
import axiosRetry from 'axios-retry';
import got from 'got';
import ky from 'ky';
import { Agent, RetryAgent, request, fetch as undiciFetch } from 'undici';
import { Session } from '../src/index.js';
import {
  fmt,
  machine,
  medianOf,
  pinToCpus,
  selfSignedCertificate,
  startBenchServer,
  table,
  verdict,
} from './lib.js';
import { type LoadOptions, runLoad, type Send } from './peers-load.js';
import { wireRows } from './peers-wire.js';
import { readStats } from './storm-kit.js';

const SAMPLE_MS = Number(process.env.BENCH_SAMPLE_MS ?? 600);
/**
 * Requests each client sends unmeasured after the collection that starts a sample of (a), (gzip)
 * and (h2): that full collection frees the object shapes optimized code depends on, and V8
 * deoptimizes it ("weak objects"); without these, each sample would also pay its client's
 * re-optimization, the more code the more, which steady traffic does not (see
 * bench/http-overhead.ts). BENCH_WARMUP=0 measures that way.
 */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 1000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? Number.POSITIVE_INFINITY);
const ROUNDS = Math.max(5, Number(process.env.BENCH_ROUNDS ?? 7));
const FAULTS = process.env.BENCH_FAULTS !== '0';
const FAULT_REQUESTS = Number(process.env.BENCH_FAULT_REQUESTS ?? 1500);
const FAULT_ROUNDS = Number(process.env.BENCH_FAULT_ROUNDS ?? 3);
const CAP_MS = Number(process.env.BENCH_CAP_MS ?? 3000);
const GRACE_MS = Number(process.env.BENCH_GRACE_MS ?? 2000);
const CONCURRENCY = 64;
const BODY_BYTES = 1024;
const SECTIONS = ['peers', 'gzip', 'h2'];
const ONLY = process.env.BENCH_ONLY?.split(',').map((s) => s.trim());
const unknownSection = ONLY?.find((s) => !SECTIONS.includes(s));
if (unknownSection !== undefined) {
  console.error(`BENCH_ONLY: unknown section ${unknownSection}; known: ${SECTIONS.join(', ')}`);
  process.exit(2);
}
const PEERS = !ONLY || ONLY.includes('peers');
const GZIP = !ONLY || ONLY.includes('gzip');
const H2 = !ONLY || ONLY.includes('h2');

interface Client {
  name: string;
  /** Undefined when the client is not available in this build. */
  send: Send | undefined;
  /** What its defaults do, for the report. */
  defaults: string;
  /**
   * How many times its defaults retry a 503 (b) and a reset (c) of a GET. With faults drawn
   * independently per arrival at rate p, k retries succeed with probability 1 - p^(k+1).
   */
  retries: { b: number; c: number };
  /** False for a reference row measured in (a) only. */
  faults?: false;
}

const certificate = H2 ? selfSignedCertificate() : undefined;
// With BENCH_PIN=1, this process (its in-process clients and the wire rows' sample processes)
// and the server get a CPU each.
const pinning = pinToCpus();
const server = await startBenchServer({
  ...(certificate && { tls: certificate }),
  pinned: pinning !== undefined,
});
const base = server.url;

const rawAgent = new Agent();
const leanAgent = new Agent();
const fetchAgent = new Agent();
const retryAgent = new RetryAgent(new Agent());
const session = new Session();
const axiosClient = axios.create();
axiosRetry(axiosClient);

type FetchMethod = (input: string, init?: RequestInit) => Promise<Response>;
const sessionFetch = (session as unknown as { fetch?: unknown }).fetch;
const doggedFetch =
  typeof sessionFetch === 'function' ? (sessionFetch as FetchMethod).bind(session) : undefined;

/** Scenario (a) passes no signal (the plain call); the capped fault runs pass one. */
function withSignal(signal: AbortSignal | undefined): { signal?: AbortSignal } {
  return signal ? { signal } : {};
}

const clients: Client[] = [
  {
    name: 'raw undici.request',
    defaults: 'no retries',
    retries: { b: 0, c: 0 },
    send: async (url, signal) => {
      const res = await request(url, { dispatcher: rawAgent, ...withSignal(signal) });
      const text = await res.body.text();
      return res.statusCode === 200 && text.length === BODY_BYTES;
    },
  },
  {
    name: 'undici Agent.request',
    defaults:
      'no retries; the bare dispatcher call, dispatcher.request({ origin, path }), as dogged makes it',
    retries: { b: 0, c: 0 },
    faults: false,
    send: async (url, signal) => {
      const { origin, pathname, search } = new URL(url);
      const res = await leanAgent.request({
        origin,
        path: pathname + search,
        method: 'GET',
        ...withSignal(signal),
      });
      const text = await res.body.text();
      return res.statusCode === 200 && text.length === BODY_BYTES;
    },
  },
  {
    name: 'undici fetch',
    defaults: 'no retries',
    retries: { b: 0, c: 0 },
    send: async (url, signal) => {
      const res = await undiciFetch(url, { dispatcher: fetchAgent, ...withSignal(signal) });
      const text = await res.text();
      return res.status === 200 && text.length === BODY_BYTES;
    },
  },
  {
    name: 'dogged Session.request',
    defaults:
      '3 retries; a 503 sleeps its Retry-After (0 ms); a reset on a reused socket is retried at once (one free retry), else after full-jitter backoff (500 ms · 2^n)',
    retries: { b: 3, c: 3 },
    send: async (url, signal) => {
      const res = await session.get(url, withSignal(signal));
      const text = await res.text();
      return res.status === 200 && text.length === BODY_BYTES;
    },
  },
  {
    name: 'dogged fetch',
    defaults: 'the Session policy; a 503 left after the retries is returned, not thrown',
    retries: { b: 3, c: 3 },
    send: doggedFetch
      ? async (url, signal) => {
          const res = await doggedFetch(url, withSignal(signal));
          const text = await res.text();
          return res.status === 200 && text.length === BODY_BYTES;
        }
      : undefined,
  },
  {
    name: 'got',
    defaults:
      '2 retries; Retry-After: 0 counts as absent, so it backs off 1 s, 2 s (+ up to 100 ms noise)',
    retries: { b: 2, c: 2 },
    send: async (url, signal) => {
      const res = await got(url, withSignal(signal));
      return res.statusCode === 200 && res.body.length === BODY_BYTES;
    },
  },
  {
    name: 'ky',
    defaults:
      "2 retries; a 503 sleeps its Retry-After (0 ms), a network error 300 ms, 600 ms; Node's global fetch",
    retries: { b: 2, c: 2 },
    send: async (url, signal) => {
      const text = await ky.get(url, withSignal(signal)).text();
      return text.length === BODY_BYTES;
    },
  },
  {
    name: 'axios + axios-retry',
    defaults: '3 retries at once (noDelay): network errors, and 5xx of idempotent methods',
    retries: { b: 3, c: 3 },
    send: async (url, signal) => {
      const res = await axiosClient.get<string>(url, {
        responseType: 'text',
        ...withSignal(signal),
      });
      return res.status === 200 && res.data.length === BODY_BYTES;
    },
  },
  {
    name: 'undici RetryAgent',
    defaults: '5 retries; only a Retry-After > 0 counts, so it backs off 0.5, 1, 2, 4, 8 s',
    retries: { b: 5, c: 5 },
    send: async (url, signal) => {
      const res = await request(url, { dispatcher: retryAgent, ...withSignal(signal) });
      const text = await res.body.text();
      return res.statusCode === 200 && text.length === BODY_BYTES;
    },
  },
];

// ---------------------------------------------------------------------------------------------
interface Totals {
  rps: number[];
  cpuUs: number[];
  issued: number;
  settled: number;
  ok: number;
  unfinished: number;
  arrivals: number;
  capped: boolean;
  failures: Map<string, number>;
}

const available = clients.filter((c): c is Client & { send: Send } => c.send !== undefined);

/** Interleaved rounds of one scenario; `query` selects the server's faults ('' for none). */
async function scenario(
  key: string,
  query: string,
  rounds: number,
  load: LoadOptions,
): Promise<Map<string, Totals>> {
  const contenders = query ? available.filter((c) => c.faults !== false) : available;
  const totals = new Map<string, Totals>();
  for (const c of contenders)
    totals.set(c.name, {
      rps: [],
      cpuUs: [],
      issued: 0,
      settled: 0,
      ok: 0,
      unfinished: 0,
      arrivals: 0,
      capped: false,
      failures: new Map(),
    });
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const [i, c] of order.entries()) {
      const runId = `${key}-${round}-${i}`;
      // Same seed for every client in a round: the same fault sequence, in arrival order.
      const url = query ? `${base}/data?${query}&seed=${round + 1}&run=${runId}` : `${base}/data`;
      // Each sample starts on a collected heap: the garbage of the client before (fetch, got,
      // axios make much more) is not collected on the next one's time.
      collectGarbage();
      // No faults: optimized again after the collection, not on the sample's time.
      if (!query && WARMUP > 0)
        await runLoad(c.send, url, { total: WARMUP, concurrency: load.concurrency });
      const run = await runLoad(c.send, url, load);
      const t = totals.get(c.name);
      if (!t) continue;
      t.rps.push(run.settled / run.seconds);
      t.cpuUs.push(run.cpuUs);
      t.issued += run.issued;
      t.settled += run.settled;
      t.ok += run.ok;
      t.unfinished += run.unfinished;
      t.capped ||= !!load.abort && (run.issued < load.total || run.unfinished > 0);
      for (const [label, n] of run.failures)
        t.failures.set(label, (t.failures.get(label) ?? 0) + n);
      if (query) t.arrivals += (await readStats(base, runId)).arrivals;
    }
  }
  return totals;
}

/** A full collection when the bench runs with --expose-gc (npm run bench does). */
function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function log(line: string): void {
  if (!PEERS) return;
  if (!FAULTS && !line.startsWith('(a)') && !line.startsWith('measured')) return;
  process.stderr.write(`${line}\n`);
}

// Warm up connections and the JIT.
if (PEERS)
  for (const c of available)
    await runLoad(c.send, `${base}/data`, { total: 1000, concurrency: CONCURRENCY });

const began = performance.now();
log(`(a) no failures: ${ROUNDS} rounds × ${SAMPLE_MS} ms per client`);
const a = await scenario('a', '', PEERS ? ROUNDS : 0, {
  total: REQUESTS,
  concurrency: CONCURRENCY,
  stopAfterMs: SAMPLE_MS,
});
log(
  `(b) 20% 503 + Retry-After 0: ${FAULT_ROUNDS} rounds × ${FAULT_REQUESTS} requests, cap ${CAP_MS} ms`,
);
const faults: LoadOptions = {
  total: FAULT_REQUESTS,
  concurrency: CONCURRENCY,
  stopAfterMs: CAP_MS,
  abort: true,
  graceMs: GRACE_MS,
};
const faultRounds = FAULTS && PEERS ? FAULT_ROUNDS : 0;
const b = await scenario('b', 'p503=0.2', faultRounds, faults);
log(`(c) 10% resets: ${FAULT_ROUNDS} rounds × ${FAULT_REQUESTS} requests, cap ${CAP_MS} ms`);
const c = await scenario('c', 'preset=0.1', faultRounds, faults);
const once: LoadOptions = { ...faults, numbered: true };
log(`(b′) a 503 on the first attempt of 20% of requests: ${FAULT_ROUNDS} rounds`);
const b1 = await scenario('b1', 'p503=0.2&once=1', faultRounds, once);
log(`(c′) a reset on the first attempt of 10% of requests: ${FAULT_ROUNDS} rounds`);
const c1 = await scenario('c1', 'preset=0.1&once=1', faultRounds, once);
log(`measured in ${((performance.now() - began) / 1000).toFixed(0)} s`);

// ---------------------------------------------------------------------------------------------

/** The table, goals and notes of scenarios (a) to (c′). */
function reportPeers(): void {
  const rps = (t: Totals | undefined): number => (t ? medianOf(t.rps) : 0);
  const success = (t: Totals | undefined): number => (t?.settled ? t.ok / t.settled : 0);
  const complete = (t: Totals | undefined): boolean => !!t && t.ok === t.settled && !t.capped;
  /** A success rate that never rounds a failure up to "100"; `*` marks a capped run. */
  function percent(t: Totals | undefined): string {
    if (!t) return '';
    const text = t.ok === t.settled ? '100' : (Math.floor(success(t) * 10_000) / 100).toFixed(2);
    return t.capped ? `${text} *` : text;
  }
  /** What k retries can reach when each arrival fails independently with probability p. */
  const ceiling = (p: number, k: number): string =>
    `${(Math.floor((1 - p ** (k + 1)) * 10_000) / 100).toFixed(2)}%`;

  const bareRps = rps(a.get('undici Agent.request'));
  const cpu = (t: Totals | undefined): number => (t ? medianOf(t.cpuUs) : 0);
  const bareCpu = cpu(a.get('undici Agent.request'));
  const rows = clients.map((client) => {
    if (!client.send) return [client.name, '(not available)', '', '', '', '', '', '', '', ''];
    const ta = a.get(client.name);
    const tb = b.get(client.name);
    const faulted = (t: Totals | undefined): string => (t?.settled ? percent(t) : '–');
    return [
      client.name,
      fmt(rps(ta)),
      fmt(rps(ta) / bareRps),
      fmt(cpu(ta), 0),
      tb?.settled ? `${fmt(rps(tb))}${tb.capped ? ' *' : ''}` : '–',
      faulted(tb),
      faulted(c.get(client.name)),
      faulted(b1.get(client.name)),
      faulted(c1.get(client.name)),
    ];
  });

  console.log(
    `\n## Peers: GET, ${CONCURRENCY} concurrent, ${BODY_BYTES} B bodies, default retry settings (${machine()})\n`,
  );
  console.log(
    table(
      [
        'client',
        '(a) req/s',
        '(a) × bare',
        '(a) CPU µs/req',
        '(b) req/s',
        '(b) success %',
        '(c) success %',
        '(b′) success %',
        '(c′) success %',
      ],
      rows,
    ),
  );
  console.log(
    `\n(a) no failures: median of ${ROUNDS} interleaved rounds of ${SAMPLE_MS} ms per client; ` +
      '× bare: the ratio to the bare undici Agent.request({ origin, path }); CPU: client ' +
      'process user + system time per request, median round. ' +
      '(b) 20% of arrivals get 503 + Retry-After: 0; (c) 10% of arrivals are reset before any ' +
      `response byte; faults are drawn per arrival (seeded, same sequence for every client); ` +
      '(b′), (c′): the same faults on the first attempt of a seeded 20% (10%) of requests only, ' +
      'a retry always succeeds; ' +
      `${FAULT_ROUNDS} rounds of up to ${FAULT_REQUESTS} requests, req/s the median round, ` +
      `success pooled. * = capped: no new request after ${CAP_MS / 1000} s, requests still in ` +
      `flight ${GRACE_MS / 1000} s later aborted and left out of the success rate (which flatters ` +
      `it: those are the requests still retrying).${pinning ? ` CPUs: ${pinning}.` : ''}`,
  );

  /** The fault scenarios: p, whether one retry fixes the fault, and which retry count applies. */
  const FAULT_RUNS = [
    { name: 'b', totals: b, p: 0.2, transient: false, retriesOf: 'b' },
    { name: 'c', totals: c, p: 0.1, transient: false, retriesOf: 'c' },
    { name: 'b′', totals: b1, p: 0.2, transient: true, retriesOf: 'b' },
    { name: 'c′', totals: c1, p: 0.1, transient: true, retriesOf: 'c' },
  ] as const;
  /** With BENCH_FAULTS=0 the fault scenarios ran no round: nothing to report on them. */
  const FAULT_REPORTS = FAULTS ? FAULT_RUNS : [];

  const failing: string[] = [];
  for (const client of available) {
    const reasons: string[] = [];
    for (const { name, totals, p, transient, retriesOf } of FAULT_REPORTS) {
      const t = totals.get(client.name);
      if (!t || complete(t)) continue;
      const k = client.retries[retriesOf];
      const why =
        k === 0
          ? 'no retries'
          : transient
            ? `${k} retries, and one is enough`
            : `${k} retries: expect about ${ceiling(p, k)}`;
      reasons.push(`(${name}) ${percent(t)}% (${why}${t.capped ? ', capped' : ''})`);
    }
    if (reasons.length) failing.push(`${client.name} ${reasons.join(', ')}`);
  }
  console.log(`\ndefaults that fail: ${failing.length ? failing.join('; ') : 'none'}`);

  const goal = (label: string, met: boolean, detail: string): void =>
    console.log(`Goal: ${label}: ${verdict(met)} (${detail})`);
  const sessionRatio = rps(a.get('dogged Session.request')) / bareRps;
  goal(
    'dogged Session ≥ 0.9× bare undici Agent.request in (a)',
    sessionRatio >= 0.9,
    sessionRatio.toFixed(3),
  );
  const sessionExtra = cpu(a.get('dogged Session.request')) - bareCpu;
  goal(
    'dogged Session ≤ 3 µs more CPU per request than bare undici Agent.request in (a)',
    sessionExtra <= 3,
    `${sessionExtra >= 0 ? '+' : ''}${sessionExtra.toFixed(1)} µs`,
  );
  if (doggedFetch) {
    const fetchRatio = rps(a.get('dogged fetch')) / rps(a.get('undici fetch'));
    goal('dogged fetch ≥ 0.95× undici fetch in (a)', fetchRatio >= 0.95, fetchRatio.toFixed(3));
  } else {
    console.log('Goal: dogged fetch ≥ 0.95× undici fetch in (a): not measured (not available)');
  }
  for (const name of FAULTS ? ['dogged Session.request', 'dogged fetch'] : []) {
    const tb = b.get(name);
    const tc = c.get(name);
    const tb1 = b1.get(name);
    const tc1 = c1.get(name);
    if (!tb || !tc || !tb1 || !tc1) continue;
    goal(
      `${name} 100% success with defaults, transient faults (b′) and (c′)`,
      complete(tb1) && complete(tc1),
      `${percent(tb1)}%, ${percent(tc1)}%; ${tb1.settled - tb1.ok + tc1.settled - tc1.ok} failed of ${tb1.settled + tc1.settled}`,
    );
    const withinCeiling =
      success(tb) >= 1 - 2 * 0.2 ** 4 &&
      success(tc) >= 1 - 2 * 0.1 ** 4 &&
      !tb.capped &&
      !tc.capped;
    goal(
      `${name} 100% success with defaults, faults on every arrival (b) and (c)`,
      complete(tb) && complete(tc),
      `${percent(tb)}%, ${percent(tc)}%; ${tb.settled - tb.ok + tc.settled - tc.ok} failed of ${tb.settled + tc.settled}; ` +
        `no finite retry count guarantees it: 3 retries reach about ${ceiling(0.2, 3)} and ${ceiling(0.1, 3)}` +
        `${withinCeiling ? ', and dogged is within sampling noise of that' : ''}`,
    );
  }

  console.log(
    '\nWhat happened: (a) client CPU per request; (b), (c) attempts the server saw per request, ' +
      'the ceiling 1 - p^(retries+1) of the default retries, failures by error:',
  );
  for (const client of clients) {
    if (!client.send) {
      console.log(`- ${client.name}: (not available): this build's Session has no fetch()`);
      continue;
    }
    const parts = [`(a) ${fmt(medianOf(a.get(client.name)?.cpuUs ?? [0]), 0)} µs CPU/req`];
    for (const { name, totals, p, transient, retriesOf } of FAULT_REPORTS) {
      const t = totals.get(client.name);
      if (!t) continue;
      const k = client.retries[retriesOf];
      const failures = [...t.failures]
        .sort((x, y) => y[1] - x[1])
        .map(([label, n]) => `${n}× ${label}`)
        .join(', ');
      const issued = t.issued < FAULT_REQUESTS * FAULT_ROUNDS ? `, only ${t.issued} started` : '';
      const unfinished = t.unfinished ? `, ${t.unfinished} unfinished at the cap` : '';
      parts.push(
        `(${name}) ${(t.arrivals / Math.max(t.issued, 1)).toFixed(2)} attempts/req, ` +
          `ceiling ${transient && k > 0 ? '100%' : ceiling(p, transient ? 0 : k)}${issued}${unfinished}` +
          `${failures ? `; ${failures}` : ''}`,
      );
    }
    console.log(`- ${client.name} [${client.defaults}]: ${parts.join(' | ')}`);
  }
}

if (PEERS) reportPeers();

if (GZIP || H2)
  await wireRows({
    base,
    h2Base: server.h2Url,
    ca: certificate?.cert,
    gzip: GZIP,
    h2: H2,
    rounds: ROUNDS,
    sampleMs: SAMPLE_MS,
    requests: REQUESTS,
    concurrency: CONCURRENCY,
    collectGarbage,
    warmup: WARMUP,
    processes: process.env.BENCH_PROCESSES !== '0',
    pinning,
    childWarmup: Number(process.env.BENCH_CHILD_WARMUP ?? 10_000),
    childSampleMs: Number(process.env.BENCH_CHILD_SAMPLE_MS ?? 3000),
  });

await session.close();
await Promise.all([rawAgent.close(), leanAgent.close(), fetchAgent.close(), retryAgent.close()]);
server.stop();
// got and axios keep idle sockets in node:http's global agent; do not wait for them.
// A straggling client must not keep the benchmark alive; GOAL_MISSED when a goal was missed.
process.exit();
