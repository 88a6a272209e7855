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
 * Every round measures each contender for BENCH_REQUESTS requests (default 20,000), rounds
 * interleaved (the order alternates), BENCH_ROUNDS rounds (default 7); requests/s and client
 * CPU µs per request (process.cpuUsage around the measured loop: the steadier figure on a shared
 * machine) are the medians of the rounds. The server runs in its own process (bench/server.ts),
 * so its CPU is not counted as the client's.
 *
 * Each sample runs in a process of its own (the contenders take turns, in the same order,
 * against one server): a user runs one client, not five, and in one process the contenders
 * share undici's code and its optimizations, which slows the bare call and flatters the others.
 * Each sample process sends BENCH_CHILD_WARMUP requests (default 100,000) unmeasured, then
 * measures BENCH_REQUESTS in the steady state it reached: no forced collection (alone in its
 * process, a contender's optimized code then has nothing keeping its object shapes, and the
 * sample would measure its re-optimization).
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
  machine,
  medianOf,
  pinToCpus,
  sampleInChild,
  startBenchServer,
  table,
  verdict,
} from './lib.js';
import { runLoad, type Send } from './peers-load.js';

const TOTAL = Number(process.env.BENCH_REQUESTS ?? 20_000);
const CONCURRENCY = 64;
const ROUNDS = Math.max(5, Number(process.env.BENCH_ROUNDS ?? 7));
const BODY_BYTES = 1024;
const WARMUP = Number(process.env.BENCH_WARMUP ?? 4000);

/** In a sample process: the contender to measure, by its index. */
const CHILD = process.env.BENCH_CHILD;
const PROCESSES = process.env.BENCH_PROCESSES !== '0' && CHILD === undefined;
const CHILD_WARMUP = Number(process.env.BENCH_CHILD_WARMUP ?? 100_000);

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

if (CHILD !== undefined) {
  const c = contenders[Number(CHILD)] as Contender;
  await runLoad(c.send, url, { total: CHILD_WARMUP, concurrency: CONCURRENCY });
  process.stdout.write(`${JSON.stringify(await sample(c))}\n`);
  await closeClients();
  process.exit(0);
}

/** A sample of contender `index` in a process of its own (the default). */
function sampleInProcess(index: number): Promise<{ rps: number; cpu: number }> {
  return sampleInChild(
    import.meta.url,
    { BENCH_CHILD: String(index), BENCH_URL: url },
    contenders[index]?.name ?? String(index),
  );
}

const samples = new Map(
  contenders.map((c) => [c.name, { rps: [] as number[], cpu: [] as number[] }]),
);
// Warm up connections and the JIT (a sample process warms itself up).
if (!PROCESSES)
  for (const c of contenders) {
    await runLoad(c.send, url, { total: 4000, concurrency: CONCURRENCY });
  }
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? contenders : [...contenders].reverse();
  for (const c of order) {
    const { rps, cpu } = PROCESSES ? await sampleInProcess(contenders.indexOf(c)) : await sample(c);
    const s = samples.get(c.name);
    s?.rps.push(rps);
    s?.cpu.push(cpu);
  }
}

const rows = contenders.map((c) => {
  const s = samples.get(c.name);
  return { name: c.name, rps: medianOf(s?.rps ?? [0]), cpu: medianOf(s?.cpu ?? [0]) };
});
const bare = rows[0] as (typeof rows)[number];
console.log(
  `\n## HTTP overhead: no failures, ${CONCURRENCY} concurrent, 1 KiB bodies, ${fmt(TOTAL)} requests × ${ROUNDS} interleaved rounds${PROCESSES ? ', each sample in a process of its own' : ', every sample in one process'} (${machine()})\n`,
);
console.log(
  table(
    ['client', 'requests/s', '× bare', 'CPU µs/req', 'CPU − bare'],
    rows.map((r) => [
      r.name,
      fmt(r.rps),
      fmt(r.rps / bare.rps),
      fmt(r.cpu, 1),
      r === bare ? '–' : `${r.cpu >= bare.cpu ? '+' : ''}${(r.cpu - bare.cpu).toFixed(1)}`,
    ]),
  ),
);
console.log(
  `\nMedians of ${ROUNDS} rounds; CPU is the client process's user + system time per request${pinning ? `; ${pinning}` : ''}.`,
);
for (const row of rows.slice(3)) {
  const ratio = row.rps / bare.rps;
  const extra = row.cpu - bare.cpu;
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

await closeClients();
server?.stop();
