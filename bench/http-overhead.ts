/**
 * Session overhead against a loopback keep-alive server when nothing fails (64 concurrent
 * requests, 1 KiB bodies), beside three undici baselines in the same run:
 * - `undici Agent.request`: the bare dispatcher call, `agent.request({ origin, path, method })`,
 *   the limit a user can reach with undici alone and the line the goals are measured against;
 * - `undici.request`: the top-level `request(url, { dispatcher })` helper;
 * - `undici RetryAgent`: undici's own retrying dispatcher, through the same helper.
 * dogged runs twice: a default Session (retry budget, adaptive rate limit and cooldown on), and
 * one with `budget`, `rateLimit` and `cooldown` off, to show what storm control costs.
 * OpenTelemetry's cost is measured apart, each setting in a process of its own
 * (bench/otel-overhead.ts): switching it on and off between samples of one process slows every
 * contender's code.
 * `BENCH_BASE=/path/to/an/older/checkout/src/index.ts` adds `dogged Session (base)`: the default
 * Session of that checkout (e.g. `git archive <commit> src package.json | tar -x -C /tmp/base`,
 * with `node_modules` linked), to compare a change with what was there before, in the same run.
 *
 * Every round measures each contender for BENCH_REQUESTS requests (default 5,000; 20,000 with
 * BENCH_PROCESSES=0), rounds interleaved (the order alternates), BENCH_ROUNDS rounds (default
 * 30; 7 with BENCH_PROCESSES=0); requests/s and client
 * CPU µs per request (process.cpuUsage around the measured loop: the steadier figure on a shared
 * machine) are the medians of the rounds. `× bare` and `CPU − bare`, the figures the goals
 * read, are the medians of each round's own ratio and difference against the bare call of that
 * round, with the rounds' range (`paired` in bench/lib.ts: the machine's speed drifts between
 * rounds, and a ratio of two medians mixes its fast and slow minutes). BENCH_SAMPLES=FILE saves
 * every sample as JSON. The server runs in its own process (bench/server.ts), so its CPU is not
 * counted as the client's.
 *
 * Each contender runs in a process of its own: a user runs one client, not five, and in one
 * process the contenders share undici's code and its optimizations, which slows the bare call
 * and flatters the others. The processes stay up and take turns, one sample each, against one
 * server (`startTurnTakers` in bench/lib.ts): this VM's speed switches between levels for
 * seconds at a time, and short turns put a round's samples within a second or two of each
 * other (until 2026-12-05 each sample had a process of its own, started and warmed up for it: a
 * round spanned half a minute, and the default Session read 0.98–1.29× the bare call in three
 * runs of one hour, `undici.request` 0.75–0.99×; with turns, 0.86–0.90× and 0.66–0.69× in
 * three runs). Each process (replaced by a new one every BENCH_PROCESS_ROUNDS rounds, default
 * 10) sends BENCH_CHILD_WARMUP requests (default 100,000) unmeasured first, then measures its
 * turns in the steady state it reached: no forced collection (alone in its process, a
 * contender's optimized code then has nothing keeping its object shapes, and the sample would
 * measure its re-optimization). `BENCH_CHILD=N BENCH_URL=URL` runs contender N alone for one
 * sample of BENCH_REQUESTS (default 20,000) and prints it as JSON.
 *
 * BENCH_PIN=1 runs the server on CPU 0 and the clients on CPU 1 (`pinToCpus` in bench/lib.ts:
 * steadier samples, but not the same measure).
 *
 * `BENCH_PROCESSES=0` runs every sample in this one process instead, as this bench did before
 * 2026-12-04. Each sample then starts on a collected heap (with --expose-gc), then
 * BENCH_WARMUP requests (default 4,000) run unmeasured: a forced full GC with no request in
 * flight frees the object shapes the optimized code of every contender depends on (V8
 * deoptimizes it: "weak objects"), and without them each sample would also pay its contender's
 * re-optimization, the more code the more, which steady traffic does not (BENCH_WARMUP=0
 * measures that way).
 */
import { Agent, RetryAgent, request } from 'undici';
import { Session } from '../src/index.js';
import {
  fmt,
  fmtPaired,
  machine,
  medianOf,
  paired,
  pinToCpus,
  saveSamples,
  serveTurns,
  startBenchServer,
  startTurnTakers,
  table,
  verdict,
} from './lib.js';
import { runLoad, type Send } from './peers-load.js';

/** In a sample process: the contender to measure, by its index. */
const CHILD = process.env.BENCH_CHILD;
const PROCESSES = process.env.BENCH_PROCESSES !== '0' && CHILD === undefined;
/** In a sample process: take turns (see `startTurnTakers`) instead of measuring once. */
const TURNS = process.env.BENCH_TURNS === '1';
// Short samples in many rounds when the contenders take turns; longer, fewer, in one process.
const TOTAL = Number(process.env.BENCH_REQUESTS ?? (PROCESSES || TURNS ? 5_000 : 20_000));
const CONCURRENCY = 64;
const ROUNDS = Math.max(5, Number(process.env.BENCH_ROUNDS ?? (PROCESSES ? 30 : 7)));
const BODY_BYTES = 1024;
const WARMUP = Number(process.env.BENCH_WARMUP ?? 4000);

const CHILD_WARMUP = Number(process.env.BENCH_CHILD_WARMUP ?? 100_000);
/** Rounds before the sample processes are replaced by new ones (see `startTurnTakers`). */
const PROCESS_ROUNDS = Number(process.env.BENCH_PROCESS_ROUNDS ?? 10);

// With BENCH_PIN=1, the parent (and so its sample processes) and the server get a CPU each.
const pinning = CHILD === undefined ? pinToCpus() : undefined;
const server =
  CHILD === undefined ? await startBenchServer({ pinned: pinning !== undefined }) : undefined;
const url = server ? `${server.url}/data` : (process.env.BENCH_URL as string);
const { origin } = new URL(url);

const bareAgent = new Agent();
const helperAgent = new Agent();
const retryAgent = new RetryAgent(new Agent());
const session = new Session();
const bareSession = new Session({ budget: false, rateLimit: false, cooldown: false });

const base = process.env.BENCH_BASE
  ? new ((await import(process.env.BENCH_BASE)) as { Session: typeof Session }).Session()
  : undefined;

interface Contender {
  name: string;
  send: Send;
}

const contenders: Contender[] = [
  {
    name: 'undici Agent.request (bare)',
    send: async () => {
      const res = await bareAgent.request({ origin, path: '/data', method: 'GET' });
      const text = await res.body.text();
      return res.statusCode === 200 && text.length === BODY_BYTES;
    },
  },
  {
    name: 'undici.request',
    send: async (target) => {
      const res = await request(target, { dispatcher: helperAgent });
      const text = await res.body.text();
      return res.statusCode === 200 && text.length === BODY_BYTES;
    },
  },
  {
    name: 'undici RetryAgent',
    send: async (target) => {
      const res = await request(target, { dispatcher: retryAgent });
      const text = await res.body.text();
      return res.statusCode === 200 && text.length === BODY_BYTES;
    },
  },
  {
    name: 'dogged Session (defaults)',
    send: async (target) => {
      const res = await session.get(target);
      const text = await res.text();
      return res.status === 200 && text.length === BODY_BYTES;
    },
  },
  ...(base
    ? [
        {
          name: 'dogged Session (base)',
          send: async (target: string) => {
            const res = await base.get(target);
            const text = await res.text();
            return res.status === 200 && text.length === BODY_BYTES;
          },
        },
      ]
    : []),
  {
    name: 'dogged Session (storm control off)',
    send: async (target) => {
      const res = await bareSession.get(target);
      const text = await res.text();
      return res.status === 200 && text.length === BODY_BYTES;
    },
  },
];

/** One measured sample of `c`: collected heap, BENCH_WARMUP unmeasured, BENCH_REQUESTS measured. */
async function sample(c: Contender): Promise<{ rps: number; cpu: number }> {
  if (CHILD === undefined) {
    // Each sample starts on a collected heap (with --expose-gc, as npm run bench runs it): the
    // garbage of the contender before is not collected on this one's time.
    (globalThis as { gc?: () => void }).gc?.();
    // Optimized again after the collection (see the top of the file), not on the sample's time.
    if (WARMUP > 0) await runLoad(c.send, url, { total: WARMUP, concurrency: CONCURRENCY });
  }
  const run = await runLoad(c.send, url, { total: TOTAL, concurrency: CONCURRENCY });
  if (run.ok !== TOTAL) throw new Error(`${c.name}: ${run.ok} of ${TOTAL} requests succeeded`);
  return { rps: run.settled / run.seconds, cpu: run.cpuUs };
}

async function closeClients(): Promise<void> {
  await Promise.all([session.close(), bareSession.close(), base?.close()]);
  await Promise.all([bareAgent.close(), helperAgent.close(), retryAgent.close()]);
}

if (CHILD !== undefined && TURNS) {
  const c = contenders[Number(CHILD)] as Contender;
  await serveTurns(
    () => runLoad(c.send, url, { total: CHILD_WARMUP, concurrency: CONCURRENCY }),
    () => sample(c),
    closeClients,
  );
}

if (CHILD !== undefined) {
  const c = contenders[Number(CHILD)] as Contender;
  await runLoad(c.send, url, { total: CHILD_WARMUP, concurrency: CONCURRENCY });
  process.stdout.write(`${JSON.stringify(await sample(c))}\n`);
  await closeClients();
  process.exit(0);
}

// By default every contender has a process of its own, and they take turns (see
// `startTurnTakers` in bench/lib.ts).
const takers = PROCESSES
  ? await startTurnTakers<{ rps: number; cpu: number }>(
      import.meta.url,
      contenders.map((_, index) => ({ BENCH_CHILD: String(index), BENCH_URL: url })),
      contenders.map((c) => c.name),
      PROCESS_ROUNDS,
    )
  : undefined;

const samples = new Map(
  contenders.map((c) => [c.name, { rps: [] as number[], cpu: [] as number[] }]),
);
// Warm up connections and the JIT (a sample process warms itself up).
if (!PROCESSES)
  for (const c of contenders) {
    await runLoad(c.send, url, { total: 4000, concurrency: CONCURRENCY });
  }
for (let round = 0; round < ROUNDS; round++) {
  await takers?.beginRound(round);
  const order = round % 2 === 0 ? contenders : [...contenders].reverse();
  for (const c of order) {
    const { rps, cpu } = takers ? await takers.turn(contenders.indexOf(c)) : await sample(c);
    const s = samples.get(c.name);
    s?.rps.push(rps);
    s?.cpu.push(cpu);
  }
}

const bareSamples = samples.get(contenders[0]?.name ?? '') ?? { rps: [], cpu: [] };
const rows = contenders.map((c) => {
  const s = samples.get(c.name) ?? { rps: [], cpu: [] };
  return {
    name: c.name,
    rps: medianOf(s.rps),
    cpu: medianOf(s.cpu),
    // Against the bare call of the same round (see `paired`): the figures the goals read.
    ratio: paired(s.rps, bareSamples.rps, 'ratio'),
    extra: paired(s.cpu, bareSamples.cpu, 'difference'),
  };
});
saveSamples('http-overhead', Object.fromEntries(samples));
const bare = rows[0] as (typeof rows)[number];
console.log(
  `\n## HTTP overhead: no failures, ${CONCURRENCY} concurrent, 1 KiB bodies, ${fmt(TOTAL)} requests × ${ROUNDS} interleaved rounds${PROCESSES ? `, each contender in a process of its own (a new one every ${PROCESS_ROUNDS} rounds), taking turns` : ', every sample in one process'} (${machine()})\n`,
);
console.log(
  table(
    ['client', 'requests/s', '× bare (rounds)', 'CPU µs/req', 'CPU − bare (rounds)'],
    rows.map((r) => [
      r.name,
      fmt(r.rps),
      r === bare ? '1.00' : fmtPaired(r.ratio),
      fmt(r.cpu, 1),
      r === bare ? '–' : fmtPaired(r.extra, 1, true),
    ]),
  ),
);
console.log(
  `\nRequests/s and CPU: medians of ${ROUNDS} rounds; CPU is the client process's user + system time per request${pinning ? `; ${pinning}` : ''}. × bare and CPU − bare: the median of the rounds' own figures against the bare call of the same round, the rounds' range in brackets (a ratio of the two medians would mix the machine's fast and slow minutes).`,
);
for (const row of rows.slice(3)) {
  const ratio = row.ratio.median;
  const extra = row.extra.median;
  console.log(
    `Goal (${row.name} ≥ 0.9× bare Agent.request in requests/s): ${verdict(ratio >= 0.9)} (${ratio.toFixed(3)})`,
  );
  console.log(
    `Goal (${row.name} ≤ 3 µs more CPU per request than bare Agent.request): ${verdict(extra <= 3)} (${extra >= 0 ? '+' : ''}${extra.toFixed(1)} µs)`,
  );
}

const defaults = rows.find((r) => r.name === 'dogged Session (defaults)');
for (const row of rows.filter((r) => r.name.endsWith('(base)'))) {
  if (!defaults) break;
  console.log(
    `${row.name} vs dogged Session (defaults): ${((row.rps / defaults.rps - 1) * 100).toFixed(1)}% requests/s, ${((row.cpu / defaults.cpu - 1) * 100).toFixed(1)}% CPU/req`,
  );
}

await takers?.close();
await closeClients();
server?.stop();
