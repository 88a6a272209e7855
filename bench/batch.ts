/**
 * The batch runner end to end on loopback, no failures: URLs/s of `runBatch` (input streamed,
 * SQLite journal, exactly-once bookkeeping) against a plain undici loop with the same
 * concurrency and no journal (goal: at least 0.9×), in interleaved rounds, medians reported, with
 * the client's CPU µs per URL; the ratios (and the goal) are the medians of each round's own
 * ratio to the loop of that round (`paired` in bench/lib.ts), with their range. BENCH_SAMPLES=FILE
 * saves every sample as JSON. Beside them, the same loop over a Session built as the runner's
 * (no journal): the gap between that row and `runBatch`'s is the runner's and its journal's. And
 * the undici loop made durable the simplest way (each outcome INSERTed into SQLite, one
 * transaction per 50 ms or 256 outcomes; not a goal): what recording every outcome costs by
 * itself. Beside the goal the bench prints `runBatch` against that durable loop, round by round
 * (not a goal either): the reading docs/performance.md lays out for a runner that loses nothing.
 * Then the peak RSS of `dogged batch` over 1,000,000 URLs (goal: under 200 MB), measured on the
 * CLI as installed (compiled JavaScript, no tsx loader), from /proc on Linux.
 *
 * The throughput rounds fetch 1 KiB bodies from Debian's nginx (one worker, static file,
 * keep-alive), or from the chaos server (`/bytes/1024`) when nginx is not installed; the million
 * fetches the chaos server's `/status/204`. The chaos server is a Node process that spends about
 * as much CPU per request as the client: on 2 cores it, not the client, then sets the pace of
 * the fastest contenders, and their ratios read closer to 1 than the clients' costs are (two
 * full runs on one machine, 2026-12-05: `runBatch` at 0.947× the loop against the chaos server,
 * 0.679× against nginx ten minutes later).
 * Scale with BENCH_BATCH_URLS (per round, default 20,000), BENCH_ROUNDS (default 15; 5 with
 * BENCH_PROCESSES=0), BENCH_MILLION (default 1,000,000; 0 skips it).
 *
 * Each contender runs in a process of its own, as in bench/http-overhead.ts: a user runs one
 * runner in a process, and in one process the loop and the runner share undici's code and its
 * optimizations, and each sample pays for the other's garbage and re-optimization (in one
 * process the same code gave the loop 64–140 µs a URL across rounds). The processes stay up and
 * take turns, a sample each (`startTurnTakers` in bench/lib.ts: the machine's speed switches
 * between levels for seconds at a time; until 2026-12-05 evening each sample had a process of
 * its own, and a round spanned a minute). A process (replaced by a new one every
 * BENCH_PROCESS_ROUNDS rounds, default 5) runs BENCH_CHILD_WARMUP rounds (default 2) of its
 * contender unmeasured first. `BENCH_CHILD=NAME BENCH_URL=URL BENCH_ROUND=N` measures one
 * sample alone and prints it as JSON. `BENCH_PROCESSES=0` runs every sample in this one process
 * instead, after one warm-up round of each.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  copyFileSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import ts from 'typescript';
import { Agent, request } from 'undici';
import { runBatch, Session } from '../src/index.js';
import {
  fmt,
  fmtPaired,
  machine,
  medianOf,
  type Paired,
  paired,
  saveSamples,
  serveTurns,
  startChaos,
  startStaticNginx,
  startTurnTakers,
  table,
  verdict,
} from './lib.js';

const MILLION = Number(process.env.BENCH_MILLION ?? 1_000_000);
/** In a sample process: the contender to measure. */
const CHILD = process.env.BENCH_CHILD as keyof Samples | undefined;
const PROCESSES = process.env.BENCH_PROCESSES !== '0' && CHILD === undefined;
/** In a sample process: take turns (see `startTurnTakers`) instead of measuring once. */
const TURNS = process.env.BENCH_TURNS === '1';
const URLS = Number(process.env.BENCH_BATCH_URLS ?? 20_000);
// More rounds when the contenders take turns (each round within seconds).
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (PROCESSES ? 15 : 5));
const CHILD_WARMUP = Number(process.env.BENCH_CHILD_WARMUP ?? 2);
/** Rounds before the sample processes are replaced by new ones (see `startTurnTakers`). */
const PROCESS_ROUNDS = Number(process.env.BENCH_PROCESS_ROUNDS ?? 5);
const CONCURRENCY = 16;
const root = fileURLToPath(new URL('..', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'dogged-bench-batch-'));

function* urls(base: string, n: number, round: number | string): Generator<string> {
  for (let i = 0; i < n; i++) yield `${base}/bytes/1024?key=r${round}-${i}`;
}

/** URLs/s and client CPU µs per URL (this process: user + system) of one round. */
interface Sample {
  rate: number;
  cpuUs: number;
}

/** URLs/s and CPU of `fetchOne` over a round's URLs, CONCURRENCY at a time (no journal). */
async function loop(
  base: string,
  round: number | string,
  fetchOne: (url: string) => Promise<unknown>,
  /** Run at the end, inside the measured time (a durable loop's last commit). */
  done: () => void = () => {},
): Promise<Sample> {
  const list = urls(base, URLS, round);
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let next = list.next(); !next.done; next = list.next()) await fetchOne(next.value);
    }),
  );
  done();
  const rate = URLS / ((performance.now() - start) / 1000);
  const used = process.cpuUsage(cpu);
  return { rate, cpuUs: (used.user + used.system) / URLS };
}

async function undiciLoop(base: string, round: number | string): Promise<Sample> {
  const agent = new Agent();
  const sample = await loop(base, round, async (url) => {
    const res = await request(url, { dispatcher: agent });
    await res.body.arrayBuffer();
  });
  await agent.close();
  return sample;
}

/** Rows of a durable loop's INSERT at most (6 values each, under SQLite's 32,766 parameters). */
const DURABLE_ROWS = 256;
/** A durable loop's outcomes are committed at least this often (ms), as the runner's are. */
const DURABLE_FLUSH_MS = 50;

/**
 * The undici loop, made durable the simplest way a user would: each outcome (URL, status,
 * response headers, body size, time) goes into a buffer, and the buffer into a SQLite table (WAL,
 * `synchronous = NORMAL`, as the journal) in one multi-row INSERT per transaction, at least
 * every 50 ms (the runner's bound on what a crash loses) or every 256 outcomes. Nothing is
 * written before an outcome (no input journal, no start, no retry): the least a loop can record
 * and still resume by skipping the lines it recorded. Not a goal: it shows what recording every
 * outcome durably costs, apart from what the runner does beyond it.
 */
async function durableLoop(base: string, round: number | string): Promise<Sample> {
  const path = join(work, `round-${round}-durable.sqlite`);
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(
    'CREATE TABLE outcomes (line INTEGER PRIMARY KEY, url TEXT NOT NULL, status INTEGER, headers TEXT, body_size INTEGER, finished_at INTEGER)',
  );
  const statements = new Map<number, Database.Statement>();
  const insert = (rows: number): Database.Statement => {
    let statement = statements.get(rows);
    if (!statement) {
      statement = db.prepare(
        `INSERT INTO outcomes VALUES ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?)').join(', ')}`,
      );
      statements.set(rows, statement);
    }
    return statement;
  };
  let buffered: unknown[] = [];
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    clearTimeout(timer);
    timer = undefined;
    if (buffered.length === 0) return;
    const values = buffered;
    buffered = [];
    db.transaction(() => {
      for (let i = 0; i < values.length; i += DURABLE_ROWS * 6) {
        const chunk = values.slice(i, i + DURABLE_ROWS * 6);
        insert(chunk.length / 6).run(chunk);
      }
    })();
  };
  const agent = new Agent();
  let line = 0;
  const sample = await loop(
    base,
    round,
    async (url) => {
      const n = ++line;
      const res = await request(url, { dispatcher: agent });
      const body = await res.body.arrayBuffer();
      buffered.push(
        n,
        url,
        res.statusCode,
        JSON.stringify(res.headers),
        body.byteLength,
        Date.now(),
      );
      if (buffered.length >= DURABLE_ROWS * 6) flush();
      else timer ??= setTimeout(flush, DURABLE_FLUSH_MS);
    },
    flush,
  );
  await agent.close();
  db.close();
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
  return sample;
}

/**
 * The same loop over a dogged Session built as the runner builds its own (retries off: the
 * journal schedules them; no logger; no shared cookie jar), bodies read whole: what the runner
 * costs beyond its Session, the scheduler and the journal, is the gap between this row and
 * `runBatch`'s.
 */
async function sessionLoop(base: string, round: number | string): Promise<Sample> {
  const session = new Session({ retry: false, logger: false, cookies: false });
  const sample = await loop(base, round, async (url) => {
    const res = await session.request(url);
    await res.bytes();
  });
  await session.close();
  return sample;
}

async function batch(base: string, round: number | string, bodies: 'none' | 'db'): Promise<Sample> {
  const db = join(work, `round-${round}-${bodies}.sqlite`);
  const cpu = process.cpuUsage();
  const start = performance.now();
  const result = await runBatch({
    db,
    input: urls(base, URLS, round),
    concurrency: CONCURRENCY,
    perHost: CONCURRENCY,
    bodies,
  });
  const rate = URLS / ((performance.now() - start) / 1000);
  const used = process.cpuUsage(cpu);
  if (result.counts.done !== URLS)
    throw new Error(`batch ended with ${JSON.stringify(result.counts)}`);
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${db}${suffix}`, { force: true });
  return { rate, cpuUs: (used.user + used.system) / URLS };
}

/**
 * The CLI as installed: every source file transpiled to JavaScript (what `npm run build`
 * emits), next to a copy of package.json, under node_modules/.cache so bare imports resolve.
 */
function compileCli(): string {
  const out = join(root, 'node_modules', '.cache', 'dogged-bench');
  rmSync(out, { recursive: true, force: true });
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? walk(path) : path.endsWith('.ts') ? [path] : [];
    });
  const src = join(root, 'src');
  for (const file of walk(src)) {
    const js = ts.transpileModule(readFileSync(file, 'utf8'), {
      fileName: file,
      compilerOptions: {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ESNext,
        verbatimModuleSyntax: false,
      },
    }).outputText;
    const target = join(out, 'dist', relative(src, file)).replace(/\.ts$/, '.js');
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, js);
  }
  copyFileSync(join(root, 'package.json'), join(out, 'package.json'));
  return join(out, 'dist', 'cli', 'main.js');
}

function rssMiB(pid: number): number | undefined {
  try {
    const kib = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return Number.isFinite(kib) ? kib / 1024 : undefined;
  } catch {
    return undefined;
  }
}

async function million(base: string): Promise<{ peak: number; rate: number; seconds: number }> {
  const input = join(work, 'million.txt');
  const file = createWriteStream(input);
  for (let i = 0; i < MILLION; i++)
    if (!file.write(`${base}/status/204?key=m${i}\n`)) await once(file, 'drain');
  file.end();
  await once(file, 'finish');
  const cli = compileCli();
  const start = performance.now();
  const child = spawn(
    process.execPath,
    [
      cli,
      'batch',
      input,
      '--db',
      join(work, 'million.sqlite'),
      '--bodies',
      'none',
      '--concurrency',
      '64',
      '--per-host',
      '64',
      '-q',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMiB(child.pid as number) ?? 0);
  }, 100);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearInterval(sampler);
  if (code !== 0) throw new Error(`dogged batch exited with ${code}`);
  const seconds = (performance.now() - start) / 1000;
  return { peak, rate: MILLION / seconds, seconds };
}

interface Samples {
  undici: Sample[];
  durable: Sample[];
  session: Sample[];
  none: Sample[];
  db: Sample[];
}

/** One round of contender `which`, in this process. */
function sampleHere(base: string, which: keyof Samples, round: number | string): Promise<Sample> {
  if (which === 'undici') return undiciLoop(base, round);
  if (which === 'durable') return durableLoop(base, round);
  if (which === 'session') return sessionLoop(base, round);
  return batch(base, round, which);
}

if (CHILD !== undefined && TURNS) {
  const base = process.env.BENCH_URL as string;
  let turn = 0;
  await serveTurns(
    async () => {
      for (let k = 0; k < CHILD_WARMUP; k++) await sampleHere(base, CHILD, `w${k}`);
    },
    () => sampleHere(base, CHILD, turn++),
    async () => rmSync(work, { recursive: true, force: true }),
  );
}

if (CHILD !== undefined) {
  const base = process.env.BENCH_URL as string;
  const round = Number(process.env.BENCH_ROUND);
  for (let k = 0; k < CHILD_WARMUP; k++) await sampleHere(base, CHILD, `${round}w${k}`);
  process.stdout.write(`${JSON.stringify(await sampleHere(base, CHILD, round))}\n`);
  rmSync(work, { recursive: true, force: true });
  process.exit(0);
}

const nginx = await startStaticNginx(1024);
// The chaos server: for the million, and for the rounds when nginx is not installed.
const chaos =
  nginx && !(MILLION > 0 && process.platform === 'linux') ? undefined : await startChaos();
const server = nginx ?? {
  url: (chaos as { url: string }).url,
  name: 'the chaos server (nginx is not installed)',
};
try {
  const samples: Samples = { undici: [], durable: [], session: [], none: [], db: [] };
  const order: (keyof Samples)[] = ['undici', 'durable', 'session', 'none', 'db'];
  // By default every contender has a process of its own, and they take turns (see
  // `startTurnTakers` in bench/lib.ts).
  const takers = PROCESSES
    ? await startTurnTakers<Sample>(
        import.meta.url,
        order.map((which) => ({ BENCH_CHILD: which, BENCH_URL: server.url })),
        order,
        PROCESS_ROUNDS,
      )
    : undefined;
  if (!PROCESSES) {
    await undiciLoop(server.url, -1); // warm up connections and JIT
    await durableLoop(server.url, -1);
    await sessionLoop(server.url, -1);
    await batch(server.url, -1, 'none');
  }
  for (let round = 0; round < ROUNDS; round++) {
    await takers?.beginRound(round);
    for (const which of round % 2 === 0 ? order : [...order].reverse()) {
      samples[which].push(
        takers
          ? await takers.turn(order.indexOf(which))
          : await sampleHere(server.url, which, round),
      );
    }
  }
  await takers?.close();
  const rate = (which: keyof Samples): number => medianOf(samples[which].map((s) => s.rate));
  const cpuUs = (which: keyof Samples): number => medianOf(samples[which].map((s) => s.cpuUs));
  // Against the undici loop (or `base`) of the same round (see `paired`): the figure the goal
  // reads.
  const againstLoop = (which: keyof Samples, base: keyof Samples = 'undici'): Paired =>
    paired(
      samples[which].map((s) => s.rate),
      samples[base].map((s) => s.rate),
      'ratio',
    );
  saveSamples('batch', { server: server.name, ...samples });
  console.log(
    `\n## Batch runner: ${URLS.toLocaleString('en-US')} URLs per round, ${CONCURRENCY} concurrent, no failures, 1 KiB bodies from ${server.name} (${machine()})\n`,
  );
  const rows: [string, keyof Samples][] = [
    ['plain undici loop (no journal)', 'undici'],
    ['undici loop, each outcome INSERTed in SQLite', 'durable'],
    ['dogged Session loop (no journal)', 'session'],
    ['dogged runBatch, bodies none', 'none'],
    ['dogged runBatch, bodies in the journal', 'db'],
  ];
  console.log(
    table(
      ['runner', 'URLs/s', '× undici loop (rounds)', 'CPU µs/URL'],
      rows.map(([name, which]) => [
        name,
        fmt(rate(which)),
        which === 'undici' ? '1.00' : fmtPaired(againstLoop(which)),
        fmt(cpuUs(which), 1),
      ]),
    ),
  );
  console.log(
    `\nURLs/s and CPU: medians of ${ROUNDS} interleaved rounds${PROCESSES ? `, each contender in a process of its own (a new one every ${PROCESS_ROUNDS} rounds), taking turns (a sample each), after ${CHILD_WARMUP} unmeasured rounds` : ', every sample in one process'}; CPU: the sampling process's user + system time per URL (the server runs in its own process). × undici loop: the median of the rounds' own ratios to the loop of the same round, their range in brackets.`,
  );
  const ratio = againstLoop('none').median;
  console.log(
    `Goal (runBatch, bodies none, at least 0.9× the plain loop): ${verdict(ratio >= 0.9)} (${ratio.toFixed(3)})`,
  );
  // Not a goal: the runner against the loop that records its outcomes too (docs/performance.md,
  // the runs of 2026-12-06: the reading the team may choose for a runner that loses nothing).
  console.log(
    `Beside it, not a goal: runBatch, bodies none, against the durable loop of the same rounds: ${fmtPaired(againstLoop('none', 'durable'))}`,
  );
  if (MILLION > 0 && process.platform === 'linux') {
    const m = await million((chaos as { url: string }).url);
    console.log(
      `\n## dogged batch over ${MILLION.toLocaleString('en-US')} URLs (compiled CLI, --bodies none, 64 concurrent, /status/204)\n`,
    );
    console.log(
      table(
        ['peak RSS', 'URLs/s', 'time'],
        [[`${fmt(m.peak, 1)} MiB`, fmt(m.rate), `${fmt(m.seconds, 1)} s`]],
      ),
    );
    console.log(
      `\nGoal (under 200 MB RSS): ${verdict(m.peak * 1.048576 < 200)} (${fmt(m.peak * 1.048576, 1)} MB)`,
    );
  }
} finally {
  await nginx?.stop();
  await chaos?.stop();
  rmSync(work, { recursive: true, force: true });
}
