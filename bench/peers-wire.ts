/**
 * The wire rows of bench/peers.ts: the same load loop (64 concurrent GETs, interleaved rounds,
 * median round), against
 * - gzip: `GET /gzip`, a 16 KiB JSON-like body the bench server sends gzip-encoded. Every row
 *   gets the decoded bytes and checks them against the payload byte for byte, and the server
 *   counts how many answers it encoded: a row that was not sent gzip, or that did not decode
 *   it, is invalid. The ratios divide by undici's bare `Agent.request` with a one-shot
 *   `zlib.gunzipSync` of the body (the least work that gets decoded bytes out of undici).
 * - h2: `GET /data` (1 KiB) over HTTP/2 with TLS (a self-signed certificate made by openssl
 *   for the run), each client trusting that certificate as its CA. The server counts requests
 *   by HTTP version: a row with one HTTP/1.1 request did not negotiate h2 and is invalid. The
 *   ratios divide by undici's `Agent({ allowH2: true })`, which opens a connection per request
 *   in flight (its Client's `pipelining` is 1 by default, HTTP/2 or not); the Session carries
 *   them all on one connection. dogged's ratio to the same Agent with `pipelining: 100`, which
 *   multiplexes too, is printed as well.
 * Goal: dogged's Session at least 0.95× undici's throughput in each.
 *
 * With `processes` (the default; BENCH_PROCESSES=0 in bench/peers.ts turns it off), each sample
 * runs in a process of its own, as in bench/http-overhead.ts: the clients take turns, in the
 * same order, against the same server; each sample process sends `childWarmup` requests
 * (BENCH_CHILD_WARMUP, default 10,000) unmeasured, then measures for `childSampleMs`
 * (BENCH_CHILD_SAMPLE_MS, default 3,000 ms) with no forced collection. In one process the
 * clients share undici's and node:http2's code and its optimizations, which slows the baseline
 * and weighs on the others unevenly; samples of 600 ms right after the warm-up still caught
 * dogged's code being optimized (gzip: 0.88× in 600 ms samples, 0.99–1.07× in 3 s ones).
 */

import { pipeline } from 'node:stream/promises';
import { createGunzip, gunzipSync, gzipSync } from 'node:zlib';
import got from 'got';
import { Agent, interceptors, request } from 'undici';
import { Session } from '../src/index.js';
import { fmt, jsonPayload, machine, medianOf, sampleInChild, table, verdict } from './lib.js';
import { runLoad, type Send } from './peers-load.js';

export interface WireOptions {
  /** How this run is pinned to CPUs (`pinToCpus` in bench/lib.ts), for the report. */
  pinning?: string | undefined;
  /** The bench server (plain HTTP/1.1). */
  base: string;
  /** Its HTTP/2-over-TLS port, undefined when there is no certificate (no openssl). */
  h2Base: string | undefined;
  /** The certificate the h2 server presents, trusted as a CA by every client. */
  ca: string | undefined;
  gzip: boolean;
  h2: boolean;
  rounds: number;
  sampleMs: number;
  requests: number;
  concurrency: number;
  /** Called before every sample: a collected heap (with --expose-gc). */
  collectGarbage: () => void;
  /** Requests sent unmeasured after the collection, before each sample (see bench/peers.ts). */
  warmup: number;
  /** Each sample in a process of its own (see the top of this file). */
  processes: boolean;
  /** With `processes`: the requests a sample process sends unmeasured before its sample. */
  childWarmup: number;
  /** With `processes`: how long a sample process measures, ms. */
  childSampleMs: number;
}

interface WireStats {
  gzip: number;
  identity: number;
  h2: number;
  h1: number;
}

interface Row {
  name: string;
  send: Send;
  /** The row the ratios divide by. */
  baseline?: true;
  /** The row the goal is about. */
  dogged?: true;
  /** A second row to give dogged's ratio to, for the record. */
  alsoVersus?: true;
}

interface Scenario {
  key: 'gzip' | 'h2';
  title: string;
  path: string;
  base: string;
  rows: Row[];
  /** The server counter every request of a valid row bumps, and the one it must not. */
  counted: keyof WireStats;
  wrong: keyof WireStats;
  footnote: string;
}

interface Totals {
  rps: number[];
  cpuUs: number[];
  settled: number;
  ok: number;
  counted: number;
  wrong: number;
}

const PAYLOAD = jsonPayload(16 * 1024);
const GZIPPED_BYTES = gzipSync(PAYLOAD).length;
const H2_BODY_BYTES = 1024;

function bytesOf(body: Uint8Array): Buffer {
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

async function wireStats(base: string): Promise<WireStats> {
  const res = await request(`${base}/wire-stats`);
  return (await res.body.json()) as WireStats;
}

function gzipScenario(options: WireOptions, close: (() => Promise<unknown>)[]): Scenario {
  const bare = new Agent();
  const streamed = new Agent();
  const intercepted = new Agent().compose(interceptors.decompress());
  const session = new Session();
  close.push(
    () => bare.close(),
    () => streamed.close(),
    () => intercepted.close(),
    () => session.close(),
  );
  const get = (agent: Pick<Agent, 'request'>, url: string) => {
    const { origin, pathname } = new URL(url);
    return agent.request({
      origin,
      path: pathname,
      method: 'GET',
      headers: { 'accept-encoding': 'gzip' },
    });
  };
  return {
    key: 'gzip',
    title: `gzip: GET, ${options.concurrency} concurrent, a ${PAYLOAD.length / 1024} KiB JSON-like body gzip-encoded (${GZIPPED_BYTES} B on the wire)`,
    path: '/gzip',
    base: options.base,
    counted: 'gzip',
    wrong: 'identity',
    rows: [
      {
        name: 'undici Agent.request + zlib.gunzipSync',
        baseline: true,
        send: async (url) => {
          const res = await get(bare, url);
          const raw = await res.body.bytes();
          return res.statusCode === 200 && gunzipSync(raw).equals(PAYLOAD);
        },
      },
      {
        name: 'undici Agent.request + zlib.createGunzip stream',
        send: async (url) => {
          const res = await get(streamed, url);
          const chunks: Buffer[] = [];
          await pipeline(res.body, createGunzip(), async (decoded: AsyncIterable<Buffer>) => {
            for await (const chunk of decoded) chunks.push(chunk);
          });
          return res.statusCode === 200 && Buffer.concat(chunks).equals(PAYLOAD);
        },
      },
      {
        name: 'undici interceptors.decompress',
        alsoVersus: true,
        send: async (url) => {
          const res = await get(intercepted, url);
          const decoded = bytesOf(await res.body.bytes());
          return res.statusCode === 200 && decoded.equals(PAYLOAD);
        },
      },
      {
        name: 'dogged Session.request',
        dogged: true,
        send: async (url) => {
          const res = await session.get(url);
          return res.status === 200 && (await res.bytes()).equals(PAYLOAD);
        },
      },
      {
        name: 'got',
        send: async (url) => {
          const res = await got(url, { responseType: 'buffer' });
          return res.statusCode === 200 && res.body.equals(PAYLOAD);
        },
      },
    ],
    footnote:
      'Every row sends Accept-Encoding: gzip (dogged and got by default, the undici rows by ' +
      'hand) and checks the decoded body byte for byte; the server counted the answers it ' +
      'encoded. dogged decodes a small body read whole in one call (up to 64 KiB encoded and ' +
      '1 MiB decoded), a larger one as a stream, under its decoded-size limit (maxBodySize, ' +
      '100 MiB by default); the gunzipSync row has no limit.',
  };
}

/** A GET of the 1 KiB body through `agent.request`, checked. */
function agentGet(agent: Agent): Send {
  return async (url) => {
    const { origin, pathname } = new URL(url);
    const res = await agent.request({ origin, path: pathname, method: 'GET' });
    const text = await res.body.text();
    return res.statusCode === 200 && text.length === H2_BODY_BYTES;
  };
}

function h2Scenario(
  options: WireOptions,
  h2Base: string,
  ca: string,
  close: (() => Promise<unknown>)[],
): Scenario {
  const agent = new Agent({ allowH2: true, connect: { ca } });
  // undici's Client takes one request at a time unless `pipelining` says otherwise, HTTP/2 or
  // not: its default Agent, and the Session's, open a connection per request in flight. This
  // one multiplexes up to 100 streams on a connection (for the record: no goal is about it).
  const multiplexing = new Agent({ allowH2: true, pipelining: 100, connect: { ca } });
  const session = new Session({ http2: true, tls: { ca } });
  close.push(
    () => agent.close(),
    () => multiplexing.close(),
    () => session.close(),
  );
  return {
    key: 'h2',
    title: `HTTP/2: GET over TLS, ${options.concurrency} concurrent, ${H2_BODY_BYTES} B bodies`,
    path: '/data',
    base: h2Base,
    counted: 'h2',
    wrong: 'h1',
    rows: [
      {
        name: 'undici Agent({ allowH2: true }).request',
        baseline: true,
        send: agentGet(agent),
      },
      {
        name: 'undici Agent({ allowH2: true, pipelining: 100 }).request',
        alsoVersus: true,
        send: agentGet(multiplexing),
      },
      {
        name: 'dogged Session({ http2: true })',
        dogged: true,
        send: async (url) => {
          const res = await session.get(url);
          const text = await res.text();
          return res.status === 200 && text.length === H2_BODY_BYTES;
        },
      },
      {
        name: 'got ({ http2: true })',
        send: async (url) => {
          const res = await got(url, { http2: true, https: { certificateAuthority: ca } });
          return res.statusCode === 200 && res.body.length === H2_BODY_BYTES;
        },
      },
    ],
    footnote:
      'A self-signed certificate for 127.0.0.1 made by openssl for the run; every client ' +
      'trusts it as its CA (no verification turned off). The server counted requests by ' +
      'HTTP version: a row with an HTTP/1.1 request did not negotiate h2.',
  };
}

async function measure(scenario: Scenario, options: WireOptions): Promise<Map<string, Totals>> {
  const url = `${scenario.base}${scenario.path}`;
  const totals = new Map<string, Totals>(
    scenario.rows.map((r) => [
      r.name,
      { rps: [], cpuUs: [], settled: 0, ok: 0, counted: 0, wrong: 0 },
    ]),
  );
  // Warm up connections and the JIT (a sample process warms itself up).
  if (!options.processes)
    for (const row of scenario.rows)
      await runLoad(row.send, url, { total: 1000, concurrency: options.concurrency });
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? scenario.rows : [...scenario.rows].reverse();
    for (const row of order) {
      const t = totals.get(row.name);
      if (!t) continue;
      let s: Sample;
      if (options.processes)
        s = await sampleInProcess(scenario.key, scenario.rows.indexOf(row), options);
      else {
        options.collectGarbage();
        if (options.warmup > 0)
          await runLoad(row.send, url, { total: options.warmup, concurrency: options.concurrency });
        s = await sampleRow(scenario, row, options);
      }
      t.rps.push(s.rps);
      t.cpuUs.push(s.cpuUs);
      t.settled += s.settled;
      t.ok += s.ok;
      t.counted += s.counted;
      t.wrong += s.wrong;
    }
  }
  return totals;
}

function report(scenario: Scenario, totals: Map<string, Totals>, options: WireOptions): void {
  const baseline = scenario.rows.find((r) => r.baseline);
  const base = baseline ? totals.get(baseline.name) : undefined;
  const baseRps = base ? medianOf(base.rps) : 0;
  const baseCpu = base ? medianOf(base.cpuUs) : 0;
  /** Valid: every request verified, and every one counted by the server as it should be. */
  const valid = (t: Totals): boolean =>
    t.ok === t.settled && t.wrong === 0 && t.counted === t.settled;
  const rows = scenario.rows.map((row) => {
    const t = totals.get(row.name) as Totals;
    const rps = medianOf(t.rps);
    const cpu = medianOf(t.cpuUs);
    const check = valid(t)
      ? `${t.ok}/${t.settled}`
      : `INVALID: ${t.ok}/${t.settled} verified, server saw ${t.counted} ${scenario.counted}, ${t.wrong} ${scenario.wrong}`;
    return [
      row.name,
      fmt(rps),
      fmt(rps / baseRps, 3),
      fmt(cpu, 0),
      `${cpu >= baseCpu ? '+' : ''}${fmt(cpu - baseCpu, 1)}`,
      check,
    ];
  });
  console.log(`\n## Peers, ${scenario.title} (${machine()})\n`);
  console.log(
    table(
      ['client', 'req/s', '× undici', 'CPU µs/req', 'CPU vs undici', 'verified (all rounds)'],
      rows,
    ),
  );
  console.log(
    `\nMedian of ${options.rounds} interleaved rounds of ` +
      `${options.processes ? `${options.childSampleMs} ms per client, each sample in a process of its own after ${fmt(options.childWarmup)} requests unmeasured` : `${options.sampleMs} ms per client, every sample in one process`}; ` +
      `× undici: the ratio to "${baseline?.name}"; CPU: client process user + system time per ` +
      `request, median round. ${scenario.footnote}${options.pinning ? ` CPUs: ${options.pinning}.` : ''}`,
  );
  const dogged = scenario.rows.find((r) => r.dogged);
  const t = dogged ? totals.get(dogged.name) : undefined;
  if (!dogged || !t) return;
  const ratio = medianOf(t.rps) / baseRps;
  const ok = valid(t) && !!base && valid(base);
  console.log(
    `Goal: ${dogged.name} ≥ 0.95× ${baseline?.name} (${scenario.key}): ` +
      `${verdict(ok && ratio >= 0.95)} (${ratio.toFixed(3)}${ok ? '' : ', a row is invalid'})`,
  );
  const other = scenario.rows.find((r) => r.alsoVersus);
  const ot = other ? totals.get(other.name) : undefined;
  if (other && ot)
    console.log(
      `(${dogged.name} / ${other.name}: ${(medianOf(t.rps) / medianOf(ot.rps)).toFixed(3)}× in requests/s, ` +
        `${medianOf(t.cpuUs) - medianOf(ot.cpuUs) >= 0 ? '+' : ''}${(medianOf(t.cpuUs) - medianOf(ot.cpuUs)).toFixed(1)} µs CPU a request)`,
    );
}

/** Runs the gzip and HTTP/2 rows that `options` selects and prints their tables. */
export async function wireRows(options: WireOptions): Promise<void> {
  const close: (() => Promise<unknown>)[] = [];
  const scenarios: Scenario[] = [];
  if (options.gzip) scenarios.push(gzipScenario(options, close));
  if (options.h2) {
    if (options.h2Base && options.ca)
      scenarios.push(h2Scenario(options, options.h2Base, options.ca, close));
    else
      console.log(
        '\n## Peers, HTTP/2: not measured (openssl could not make a certificate)\n' +
          `Goal: dogged Session({ http2: true }) ≥ 0.95× undici Agent({ allowH2: true }).request (h2): ${verdict(false)} (not measured)`,
      );
  }
  for (const scenario of scenarios) {
    process.stderr.write(
      `(${scenario.key}) ${options.rounds} rounds × ${options.processes ? `${options.childSampleMs} ms per client, a process per sample` : `${options.sampleMs} ms per client`}\n`,
    );
    report(scenario, await measure(scenario, options), options);
  }
  await Promise.all(close.map((c) => c()));
}

/** One sample, as a sample process measures it and reports it (one JSON line on stdout). */
interface Sample {
  rps: number;
  cpuUs: number;
  settled: number;
  ok: number;
  counted: number;
  wrong: number;
}

/**
 * One measured sample of `row`: its load for `options.sampleMs` (at most `options.requests`),
 * with the server's counts around it, and why requests failed.
 */
async function sampleRow(
  scenario: Scenario,
  row: Row,
  options: Pick<WireOptions, 'base' | 'requests' | 'concurrency' | 'sampleMs'>,
): Promise<Sample & { failures: Map<string, number> }> {
  const before = await wireStats(options.base);
  const run = await runLoad(row.send, `${scenario.base}${scenario.path}`, {
    total: options.requests,
    concurrency: options.concurrency,
    stopAfterMs: options.sampleMs,
  });
  const after = await wireStats(options.base);
  return {
    rps: run.settled / run.seconds,
    cpuUs: run.cpuUs,
    settled: run.settled,
    ok: run.ok,
    counted: after[scenario.counted] - before[scenario.counted],
    wrong: after[scenario.wrong] - before[scenario.wrong],
    failures: run.failures,
  };
}

/** What a sample process is told (BENCH_WIRE_CHILD, as JSON). */
interface ChildTask {
  key: Scenario['key'];
  row: number;
  base: string;
  h2Base: string | undefined;
  ca: string | undefined;
  concurrency: number;
  /** null: no cap (JSON has no Infinity). */
  requests: number | null;
  sampleMs: number;
  childWarmup: number;
}

const CHILD_ENV = 'BENCH_WIRE_CHILD';

/** Row `row` of scenario `key`, sampled in a process of its own. */
function sampleInProcess(key: Scenario['key'], row: number, options: WireOptions): Promise<Sample> {
  const task: ChildTask = {
    key,
    row,
    base: options.base,
    h2Base: options.h2Base,
    ca: options.ca,
    concurrency: options.concurrency,
    requests: Number.isFinite(options.requests) ? options.requests : null,
    sampleMs: options.childSampleMs,
    childWarmup: options.childWarmup,
  };
  // No warning per sample process (undici's decompress interceptor is experimental).
  return sampleInChild(
    import.meta.url,
    { [CHILD_ENV]: JSON.stringify(task), NODE_NO_WARNINGS: '1' },
    `${key} row ${row}`,
  );
}

/** A sample process: warms its row up, measures one sample, prints it as JSON, exits. */
async function runChild(task: ChildTask): Promise<never> {
  const close: (() => Promise<unknown>)[] = [];
  const options: WireOptions = {
    base: task.base,
    h2Base: task.h2Base,
    ca: task.ca,
    gzip: task.key === 'gzip',
    h2: task.key === 'h2',
    rounds: 1,
    sampleMs: task.sampleMs,
    requests: task.requests ?? Number.POSITIVE_INFINITY,
    concurrency: task.concurrency,
    collectGarbage: () => {},
    warmup: 0,
    processes: false,
    childWarmup: 0,
    childSampleMs: task.sampleMs,
  };
  const scenario =
    task.key === 'gzip'
      ? gzipScenario(options, close)
      : h2Scenario(options, task.h2Base as string, task.ca as string, close);
  const row = scenario.rows[task.row];
  if (!row) throw new Error(`no row ${task.row} in ${task.key}`);
  await runLoad(row.send, `${scenario.base}${scenario.path}`, {
    total: task.childWarmup,
    concurrency: task.concurrency,
  });
  const { failures, ...sample } = await sampleRow(scenario, row, options);
  // A row that fails requests is reported INVALID; say why, on stderr.
  if (failures.size > 0)
    process.stderr.write(
      `(${task.key}) ${row.name}: ${sample.settled - sample.ok} of ${sample.settled} failed: ${[...failures].map(([why, n]) => `${n} × ${why}`).join('; ')}\n`,
    );
  process.stdout.write(`${JSON.stringify(sample)}\n`);
  await Promise.all(close.map((c) => c()));
  // got keeps idle sockets in its agents; do not wait for them.
  process.exit(0);
}

const childTask = process.env[CHILD_ENV];
if (childTask !== undefined) await runChild(JSON.parse(childTask) as ChildTask);
