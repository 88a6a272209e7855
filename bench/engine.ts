/**
 * The engine's cost when nothing fails: `retry()` around a function that succeeds at once,
 * against calling it bare, p-retry 7 and cockatiel 3 in the same process.
 */
import { retry as cockatielRetry, ExponentialBackoff, handleAll } from 'cockatiel';
import pRetry from 'p-retry';
import { Retrying, retry } from '../src/index.js';
import { compare, fmt, machine, table, verdict } from './lib.js';

const work = async (): Promise<number> => 42;
const prebuilt = new Retrying();
const cockatielPolicy = cockatielRetry(handleAll, {
  maxAttempts: 3,
  backoff: new ExponentialBackoff(),
});

const iterations = Number(process.env.BENCH_ITERATIONS ?? 100_000);
const results = await compare(
  [
    { name: 'bare call', run: () => work() },
    { name: 'dogged retry()', run: () => retry(work) },
    { name: 'dogged Retrying.run()', run: () => prebuilt.run(work) },
    { name: 'p-retry 7', run: () => pRetry(work, { retries: 3 }) },
    { name: 'cockatiel 3.2.1', run: () => cockatielPolicy.execute(work) },
  ],
  { iterations, rounds: 7 },
);

const bare = results[0] as (typeof results)[number];
const dogged = results[1] as (typeof results)[number];
console.log(`\n## Engine overhead: a function that succeeds at once (${machine()})\n`);
console.log(
  table(
    ['contender', 'calls/s', 'ns/call', 'overhead ns', 'dogged retry() speed ×'],
    results.map((r) => [
      r.name,
      fmt(r.opsPerSec),
      fmt(r.nsPerOp),
      r === bare ? '-' : fmt(r.nsPerOp - bare.nsPerOp),
      fmt(r.nsPerOp / dogged.nsPerOp),
    ]),
  ),
);
const worst = results.slice(3).every((r) => r.nsPerOp >= dogged.nsPerOp);
console.log(`\nGoal (overhead at most that of p-retry and cockatiel): ${verdict(worst)}`);
