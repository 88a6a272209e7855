/**
 * What the batch runner itself costs per URL, in client CPU, apart from the network: `runBatch`
 * (input, scheduler, SQLite journal, decisions) against the same loop over a Session built as
 * the runner builds its own, both fetching from an in-process dispatcher that answers every
 * request on the next turn of the event loop with the head and the 1 KiB body nginx sends in
 * bench/batch.ts. No socket, no server: the difference between the two rows is the runner's
 * and its journal's work, and nothing else.
 *
 * Not a goal, and not a substitute for bench/batch.ts (the goal is throughput against a real
 * server): an instrument. On a VM whose speed switches between levels for seconds at a time, a
 * change of a few microseconds in the runner is lost in the noise of a run against nginx (the
 * gap between `runBatch` and the Session loop there read 32.5 and 40.5 µs a URL in two runs of
 * one afternoon); here the contenders share one process, a round takes about a second, and each
 * round's runner figure is read against the Session loop of the same round (`paired` in
 * bench/lib.ts). The difference in µs scales with the machine's speed level: +19.7 to +24.9 µs
 * in twelve runs on 2 × AMD EPYC within an hour (2026-12-05), +37.9 in one where the whole
 * machine ran 1.7× slower. The ratio of the two medians does not: 2.98–3.27 in eleven of those
 * twelve (3.79 in one with a second copy of the runner loaded) and 3.08 in the slow one, so it
 * is the figure to compare between runs.
 *
 * To compare two versions of the runner, run this bench on each, alternately, and compare their
 * `× Session loop` figures: two copies of the runner loaded into one process do not run alike
 * (the same commit loaded twice read +0.4, +0.5 and +4.8 µs apart in three runs, 2026-12-05).
 *
 * Then what each contender allocates per URL: one more sample of each under V8's sampling heap
 * profiler (objects freed by either collector included, so every allocation counts, not only
 * what survives), with the runner's own allocation sites, its functions in src/batch/ (each
 * site is the function V8 ran, inlined callees included). Unlike CPU time, the bytes do not move
 * with the machine's speed level.
 *
 * Rounds: BENCH_ROUNDS (default 15) after BENCH_WARMUP_ROUNDS (default 2) unmeasured;
 * BENCH_BATCH_URLS URLs per sample (default 10,000), 16 concurrent, bodies not kept; the order
 * of the contenders alternates between rounds. BENCH_SAMPLES=FILE saves every sample as JSON.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Session as Inspector } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Dispatcher } from 'undici';
import { runBatch, Session } from '../src/index.js';
import { fmt, fmtPaired, machine, medianOf, paired, saveSamples, table } from './lib.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const WARMUP_ROUNDS = Number(process.env.BENCH_WARMUP_ROUNDS ?? 2);
const URLS = Number(process.env.BENCH_BATCH_URLS ?? 10_000);
const CONCURRENCY = 16;
const BODY = Buffer.alloc(1024, 'x');

/** The head nginx 1.22 sends with a static file (bench/batch.ts), as undici hands it over. */
const RAW_HEADERS = Object.entries({
  server: 'nginx/1.22.1',
  date: 'Sat, 05 Dec 2026 20:00:00 GMT',
  'content-type': 'application/octet-stream',
  'content-length': String(BODY.length),
  'last-modified': 'Sat, 05 Dec 2026 19:00:00 GMT',
  connection: 'keep-alive',
  etag: '"6752f0a0-400"',
  'accept-ranges': 'bytes',
}).flatMap(([name, value]) => [Buffer.from(name), Buffer.from(value)]);

/**
 * Answers every request with 200, {@link RAW_HEADERS} and {@link BODY}, on the next turn of the
 * event loop (as a response read from a socket arrives), through undici's handler callbacks.
 */
class AnsweringDispatcher extends Dispatcher {
  override dispatch(_options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) {
    const legacy = handler as unknown as {
      onConnect?(abort: () => void): void;
      onHeaders?(status: number, headers: Buffer[], resume: () => void, text: string): boolean;
      onData?(chunk: Buffer): boolean;
      onComplete?(trailers: Buffer[]): void;
    };
    setImmediate(() => {
      legacy.onConnect?.(() => {});
      legacy.onHeaders?.(200, RAW_HEADERS, () => {}, 'OK');
      legacy.onData?.(BODY);
      legacy.onComplete?.([]);
    });
    return true;
  }

  override async close(): Promise<void> {}
  override async destroy(): Promise<void> {}
}

const work = mkdtempSync(join(tmpdir(), 'dogged-bench-batch-cpu-'));

function* urls(tag: string): Generator<string> {
  for (let i = 0; i < URLS; i++) yield `http://127.0.0.1:9/bytes/1024?key=${tag}-${i}`;
}

/** Client CPU µs per URL of `run`. */
async function cpuPerUrl(run: () => Promise<void>): Promise<number> {
  const cpu = process.cpuUsage();
  await run();
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / URLS;
}

/** The Session loop of bench/batch.ts (the runner's Session settings), no journal. */
function sessionLoop(tag: string): Promise<number> {
  return cpuPerUrl(async () => {
    const session = new Session({
      retry: false,
      logger: false,
      cookies: false,
      dispatcher: new AnsweringDispatcher(),
    });
    const list = urls(tag);
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        for (let next = list.next(); !next.done; next = list.next()) {
          const response = await session.request(next.value);
          await response.bytes();
        }
      }),
    );
    await session.close();
  });
}

function batch(tag: string): Promise<number> {
  const db = join(work, `${tag}.sqlite`);
  return cpuPerUrl(async () => {
    const result = await runBatch({
      db,
      input: urls(tag),
      concurrency: CONCURRENCY,
      perHost: CONCURRENCY,
      bodies: 'none',
      dispatcher: new AnsweringDispatcher(),
    });
    if (result.counts.done !== URLS)
      throw new Error(`batch ended with ${JSON.stringify(result.counts)}`);
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${db}${suffix}`, { force: true });
  });
}

/** A node of V8's sampling heap profile. */
interface HeapNode {
  readonly callFrame: { readonly functionName: string; readonly url: string };
  readonly selfSize: number;
  readonly children: readonly HeapNode[];
}

/**
 * Bytes allocated per URL by one sample of `sample` (V8's sampling heap profiler, every 256
 * bytes on average, objects freed by either collector included), and the bytes per URL of each
 * allocation site in src/batch/ (`function file`).
 */
async function allocations(
  sample: (tag: string) => Promise<number>,
  tag: string,
): Promise<{ perUrl: number; sites: Map<string, number> }> {
  const inspector = new Inspector();
  inspector.connect();
  try {
    await inspector.post('HeapProfiler.startSampling', {
      samplingInterval: 256,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    await sample(tag);
    const { profile } = (await inspector.post('HeapProfiler.stopSampling')) as {
      profile: { head: HeapNode };
    };
    let total = 0;
    const sites = new Map<string, number>();
    const walk = (node: HeapNode): void => {
      total += node.selfSize;
      const at = node.callFrame.url.indexOf('/src/batch/');
      if (at >= 0 && node.selfSize > 0) {
        const site = `${node.callFrame.functionName || '(anonymous)'} ${node.callFrame.url.slice(at + 5)}`;
        sites.set(site, (sites.get(site) ?? 0) + node.selfSize / URLS);
      }
      for (const child of node.children) walk(child);
    };
    walk(profile.head);
    return { perUrl: total / URLS, sites };
  } finally {
    inspector.disconnect();
  }
}

const contenders: { name: string; sample: (tag: string) => Promise<number> }[] = [
  { name: 'dogged Session loop (no journal)', sample: sessionLoop },
  { name: 'dogged runBatch, bodies none', sample: batch },
];

const samples: number[][] = contenders.map(() => []);
const allocated: Awaited<ReturnType<typeof allocations>>[] = [];
try {
  for (let round = -WARMUP_ROUNDS; round < ROUNDS; round++) {
    const order = contenders.map((_, i) => i);
    if (round % 2 !== 0) order.reverse();
    for (const i of order) {
      const cpu = await (contenders[i] as (typeof contenders)[number]).sample(`r${round}-c${i}`);
      if (round >= 0) (samples[i] as number[]).push(cpu);
    }
  }
  for (const [i, c] of contenders.entries())
    allocated.push(await allocations(c.sample, `heap-c${i}`));
} finally {
  rmSync(work, { recursive: true, force: true });
}
saveSamples('batch-cpu', Object.fromEntries(contenders.map((c, i) => [c.name, samples[i]])));

const loop = samples[0] as number[];
console.log(
  `\n## The batch runner's own CPU per URL: ${URLS.toLocaleString('en-US')} URLs per sample, ${CONCURRENCY} concurrent, an in-process dispatcher answering 1 KiB (${machine()})\n`,
);
const loopBytes = (allocated[0] as { perUrl: number }).perUrl;
console.log(
  table(
    [
      'contender',
      'CPU µs/URL',
      '× Session loop',
      '− Session loop (rounds)',
      'allocated KB/URL',
      '− Session loop',
    ],
    contenders.map((c, i) => {
      const own = samples[i] as number[];
      const bytes = (allocated[i] as { perUrl: number }).perUrl;
      return [
        c.name,
        fmt(medianOf(own)),
        i === 0 ? '–' : (medianOf(own) / medianOf(loop)).toFixed(2),
        i === 0 ? '–' : fmtPaired(paired(own, loop, 'difference'), 1, true),
        (bytes / 1024).toFixed(2),
        i === 0 ? '–' : `+${((bytes - loopBytes) / 1024).toFixed(2)}`,
      ];
    }),
  ),
);
console.log(
  `\nCPU: this process's user + system time per URL, median of ${ROUNDS} rounds (after ${WARMUP_ROUNDS} unmeasured), every contender in this one process, its order alternating. × Session loop: the ratio of the two medians, the figure to compare between runs (it holds when the machine's speed level changes from one run to the next; the µs scale with it). − Session loop: the median of each round's own difference against the Session loop of that round, their range in brackets. The Session loop's figure includes the in-process dispatcher's own cost; the runner's difference is its scheduler, journal and decisions. Not a goal: throughput against a real server is bench/batch.ts.`,
);
const runnerSites = [...(allocated[1] as { sites: Map<string, number> }).sites]
  .sort((a, b) => b[1] - a[1])
  .slice(0, 12);
console.log(
  `\nThe runner's allocation sites (src/batch/, bytes per URL, the runBatch sample above; a site is the function V8 ran, with what it inlined):\n`,
);
console.log(
  table(
    ['site', 'B/URL'],
    runnerSites.map(([site, bytes]) => [site, Math.round(bytes).toLocaleString('en-US')]),
  ),
);
