/**
 * Session throughput against a loopback keep-alive server when nothing fails (64 concurrent
 * requests, 1 KiB bodies), as a ratio to raw `undici.request` in the same run. Retries must cost
 * nothing when nothing fails.
 */
import { Agent, RetryAgent, request } from 'undici';
import { Session } from '../src/index.js';
import { fmt, machine, medianOf, startBenchServer, table, throughput } from './lib.js';

const TOTAL = Number(process.env.BENCH_REQUESTS ?? 20_000);
const CONCURRENCY = 64;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const server = await startBenchServer();
const url = `${server.url}/data`;

const rawAgent = new Agent();
const retryAgent = new RetryAgent(new Agent());
const session = new Session();

const contenders: { name: string; send: () => Promise<unknown> }[] = [
  {
    name: 'raw undici.request',
    send: async () => {
      const res = await request(url, { dispatcher: rawAgent });
      return res.body.text();
    },
  },
  {
    name: 'dogged Session.get',
    send: async () => {
      const res = await session.get(url);
      return res.text();
    },
  },
  {
    name: 'undici RetryAgent',
    send: async () => {
      const res = await request(url, { dispatcher: retryAgent });
      return res.body.text();
    },
  },
];

const samples = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
for (const c of contenders) await throughput(c.send, 2000, CONCURRENCY); // warm up connections and JIT
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? contenders : [...contenders].reverse();
  for (const c of order) samples.get(c.name)?.push(await throughput(c.send, TOTAL, CONCURRENCY));
}

const rows = contenders.map((c) => ({ name: c.name, rps: medianOf(samples.get(c.name) ?? []) }));
const raw = rows[0]?.rps ?? 1;
console.log(
  `\n## HTTP overhead: no failures, ${CONCURRENCY} concurrent, 1 KiB bodies (${machine()})\n`,
);
console.log(
  table(
    ['client', 'requests/s', '× raw undici'],
    rows.map((r) => [r.name, fmt(r.rps), fmt(r.rps / raw)]),
  ),
);
const ratio = (rows[1]?.rps ?? 0) / raw;
console.log(
  `\nGoal (Session at least 0.95× raw undici.request): ${ratio >= 0.95 ? 'met' : 'NOT met'} (${ratio.toFixed(3)})`,
);

await session.close();
await rawAgent.close();
await retryAgent.close();
server.stop();
