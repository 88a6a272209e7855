/** Small helpers shared by the benchmark scripts: interleaved rounds, medians, one table. */
import { type ChildProcess, type StdioOptions, spawn, spawnSync } from 'node:child_process';
import { on, once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  freePort,
  nginxPath,
  nginxVersion,
  probe,
  readinessToken,
  startServer,
  tempDir,
} from '../test/limits/limiter-process.js';
import { selfSignedCertificate as makeCertificate } from '../test/support/certificate.js';
import { nginxMain, nginxTempPaths } from '../test/support/nginx-config.js';

const root = fileURLToPath(new URL('..', import.meta.url));

export interface Contender {
  name: string;
  /** One operation; awaited. */
  run: () => Promise<unknown>;
}

export interface Result {
  name: string;
  opsPerSec: number;
  nsPerOp: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * Runs every contender `iterations` times per round, rounds interleaved so that no contender
 * always runs first or last, and reports the median round.
 */
export async function compare(
  contenders: Contender[],
  options: { iterations: number; rounds: number; warmup?: number },
): Promise<Result[]> {
  const samples = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
  for (const c of contenders)
    for (let i = 0; i < (options.warmup ?? options.iterations); i++) await c.run();
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const c of order) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < options.iterations; i++) await c.run();
      const ns = Number(process.hrtime.bigint() - start);
      samples.get(c.name)?.push(ns / options.iterations);
    }
  }
  return contenders.map((c) => {
    const ns = median(samples.get(c.name) ?? [0]);
    return { name: c.name, nsPerOp: ns, opsPerSec: 1e9 / ns };
  });
}

/**
 * The exit code of a benchmark that ran to its end but missed a goal (1 stays "it failed to
 * run"): `npm run bench -- --check` and a CI job can tell the two apart.
 */
export const GOAL_MISSED = 3;

/**
 * `met` or `NOT met` for a goal the benchmark checks; a goal NOT met sets the process's exit
 * code to {@link GOAL_MISSED} (unless an earlier failure set one), so the benchmark still prints
 * everything and then exits non-zero.
 */
export function verdict(met: boolean): 'met' | 'NOT met' {
  if (!met && !process.exitCode) process.exitCode = GOAL_MISSED;
  return met ? 'met' : 'NOT met';
}

export function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} × ${cpu.trim()}, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
}

/** Prints rows as an aligned Markdown table. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [
    line(cells[0] as string[]),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...cells.slice(1).map(line),
  ].join('\n');
}

export function fmt(n: number, digits = 2): string {
  return n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits);
}

/**
 * Runs a TypeScript entry point in its own process (through tsx, from the project's root) and
 * resolves with the first line it prints: the server's port or URL.
 */
async function spawnFirstLine(
  args: string[],
  what: string,
  stdio: StdioOptions,
  env: NodeJS.ProcessEnv = process.env,
  cpu?: number,
): Promise<{ child: ChildProcess; line: string }> {
  const node = [process.execPath, '--import', 'tsx', ...args];
  const [command, ...rest] = cpu === undefined ? node : ['taskset', '-c', String(cpu), ...node];
  const child = spawn(command as string, rest, { cwd: root, stdio, env });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
  });
  return { child, line };
}

/**
 * Starts bench/server.ts in a child process; resolves with its URL and a stop function. With
 * `tls` (a key and certificate, PEM), the same process also serves HTTP/2 over TLS (HTTP/1.1 too,
 * by ALPN) at `h2Url`.
 */
export async function startBenchServer(
  options: { tls?: { key: string; cert: string }; pinned?: boolean } = {},
): Promise<{ url: string; h2Url: string | undefined; stop: () => void }> {
  const env = options.tls
    ? { ...process.env, BENCH_TLS_KEY: options.tls.key, BENCH_TLS_CERT: options.tls.cert }
    : process.env;
  const { child, line } = await spawnFirstLine(
    ['bench/server.ts'],
    'bench server',
    ['ignore', 'pipe', 'inherit', 'ipc'],
    env,
    options.pinned ? SERVER_CPU : undefined,
  );
  const [port, h2Port] = line.split(/\s+/);
  return {
    url: `http://127.0.0.1:${port}`,
    h2Url: h2Port ? `https://127.0.0.1:${h2Port}` : undefined,
    stop: () => child.kill('SIGTERM'),
  };
}

const SERVER_CPU = 0;
const CLIENT_CPU = 1;

/**
 * With BENCH_PIN=1 (and Linux's `taskset`, and two CPUs or more), pins the benchmark to two
 * CPUs: this process, every thread of it, and so every client process it starts, to CPU 1; a
 * server started with `pinned` to CPU 0. Client and server then never take turns on one core,
 * and the scheduler does not place each sample process differently: on a 2-core machine one
 * client's HTTP/2 throughput varied from 3,600 to 6,400 requests/s between sample processes
 * unpinned, 5,600 to 6,400 pinned (in a quiet spell of the machine). Off by default because it
 * changes what is measured: V8's collector threads then share the client's one core, which
 * costs the client that allocates more (2026-12-05, bench/http-overhead.ts: the default
 * Session 0.81× bare pinned, 0.84–0.91× unpinned). Returns a line for the report, or undefined
 * when nothing was pinned.
 */
export function pinToCpus(): string | undefined {
  if (process.env.BENCH_PIN !== '1' || cpus().length < 2) return undefined;
  const pinned = spawnSync('taskset', ['-a', '-p', '-c', String(CLIENT_CPU), String(process.pid)], {
    stdio: 'ignore',
  });
  if (pinned.error || pinned.status !== 0) return undefined;
  return `the server pinned to CPU ${SERVER_CPU}, the clients to CPU ${CLIENT_CPU} (BENCH_PIN=1, taskset)`;
}

/**
 * A throwaway self-signed certificate for 127.0.0.1, made with `openssl` at run time; undefined
 * when openssl is not installed.
 */
export function selfSignedCertificate(): { key: string; cert: string } | undefined {
  try {
    return makeCertificate();
  } catch {
    return undefined;
  }
}

/**
 * A compressible JSON-like text of exactly `bytes` bytes (an array of small records), the same
 * in every process: what the bench server sends gzip-encoded and the clients check against.
 */
export function jsonPayload(bytes: number): Buffer {
  let text = '[';
  for (let i = 0; text.length < bytes; i++)
    text += `${i ? ',' : ''}{"id":${i},"name":"item-${i}","tags":["alpha","beta"],"price":${((i * 37) % 1000) / 10},"active":${i % 3 === 0}}`;
  return Buffer.from(`${text.slice(0, bytes - 1)}]`);
}

/** `dogged chaos --port 0` in its own process. */
export async function startChaos(): Promise<{ url: string; stop: () => Promise<void> }> {
  const { child, line } = await spawnFirstLine(
    ['src/cli/main.ts', 'chaos', '--port', '0'],
    'chaos server',
    ['ignore', 'pipe', 'ignore'],
  );
  return {
    url: line,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** A server that answers every GET with the same static body. */
export interface StaticServer {
  readonly url: string;
  /** For headings: `nginx 1.22.1`, `chaos server`. */
  readonly name: string;
  stop(): Promise<void>;
}

/**
 * Debian's nginx on loopback, one worker, answering every path with the same `bytes`-byte file
 * (keep-alive without a request limit, no access log): a server whose CPU per request is a
 * small share of a Node client's, so a client-side benchmark measures the client and not the
 * server. Undefined when nginx is not installed (`apt-get install nginx-light`); a `DOGGED_NGINX`
 * that names no executable throws.
 */
export async function startStaticNginx(bytes: number): Promise<StaticServer | undefined> {
  let binary: string;
  try {
    binary = nginxPath();
  } catch (error) {
    // A DOGGED_NGINX that names no binary is a mistake to report, not a missing nginx.
    if (process.env.DOGGED_NGINX) throw error;
    return undefined;
  }
  const dir = tempDir('bench-nginx');
  mkdirSync(join(dir, 'www'));
  mkdirSync(join(dir, 'tmp'));
  const token = readinessToken();
  writeFileSync(join(dir, 'www', 'body'), Buffer.alloc(bytes, 'x'));
  writeFileSync(join(dir, 'www', 'ready'), token);
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    `${[
      ...nginxMain(dir, 4096),
      'http {',
      '  access_log off;',
      ...nginxTempPaths(join(dir, 'tmp')),
      '  default_type application/octet-stream;',
      '  keepalive_requests 100000000;',
      '  keepalive_timeout 60s;',
      '  server {',
      `    listen 127.0.0.1:${port};`,
      `    root ${join(dir, 'www')};`,
      '    location = /__ready { try_files /ready =404; }',
      '    location / { try_files /body =404; }',
      '  }',
      '}',
    ].join('\n')}\n`,
  );
  const url = `http://127.0.0.1:${port}`;
  const server = await startServer({
    name: 'nginx',
    binary,
    args: ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')],
    dir,
    port,
    ready: async () => (await probe(`${url}/__ready`))?.body === token,
  });
  return { url, name: `nginx ${nginxVersion()}`, stop: () => server.close() };
}

/**
 * Requests per second for `send`, run by `concurrency` workers until `total` requests are done.
 */
export async function throughput(
  send: () => Promise<unknown>,
  total: number,
  concurrency: number,
): Promise<number> {
  let next = 0;
  const start = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (next < total) {
      next++;
      await send();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return total / seconds;
}

export function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** A contender's figure against the baseline's, round by round: the median and the range. */
export interface Paired {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/**
 * `values` against `base` sampled in the same rounds (`values[i]` beside `base[i]`), as the
 * median of the rounds' ratios (`ratio`) or differences (`difference`), with their range. On a
 * shared VM the machine's speed drifts in phases of seconds to minutes (the same loop ran at
 * 17,800 and 29,700 URLs/s within three minutes); two samples of one round are seconds apart and
 * mostly in the same phase, so a round's ratio cancels most of the drift that a ratio of two
 * medians (each over every phase) keeps.
 */
export function paired(values: number[], base: number[], how: 'ratio' | 'difference'): Paired {
  if (values.length !== base.length || values.length === 0)
    throw new Error(`paired: ${values.length} samples against ${base.length} of the baseline`);
  const each = values.map((v, i) =>
    how === 'ratio' ? v / (base[i] as number) : v - (base[i] as number),
  );
  return { median: medianOf(each), min: Math.min(...each), max: Math.max(...each) };
}

/** `p` for a table: the median, and the range of the rounds in brackets. */
export function fmtPaired(p: Paired, digits = 2, signed = false): string {
  const show = (n: number): string => `${signed && n >= 0 ? '+' : ''}${n.toFixed(digits)}`;
  return `${show(p.median)} (${show(p.min)} to ${show(p.max)})`;
}

/**
 * With BENCH_SAMPLES=FILE, writes a bench's raw samples there as JSON (every round of every
 * contender), so that its figures can be computed again, or another way, from the same run.
 */
export function saveSamples(bench: string, samples: unknown): void {
  const file = process.env.BENCH_SAMPLES;
  if (!file) return;
  writeFileSync(file, `${JSON.stringify({ bench, machine: machine(), samples }, null, 1)}\n`);
}

/** What {@link startTurnTakers} resolves with. */
export interface TurnTakers<T> {
  /**
   * Call at the start of every round: every `roundsPerProcess` rounds, the processes are
   * replaced by new ones (started and warmed up the same way).
   */
  beginRound(round: number): Promise<void>;
  /** One sample of contender `index`, from its process. */
  turn(index: number): Promise<T>;
  close(): Promise<void>;
}

/**
 * Sample processes that stay up and take turns: one per contender, each started (one after
 * the other) with `env` and `BENCH_TURNS=1` added, warmed up by the script itself, then asked
 * for one sample at a time ({@link serveTurns} is the script's side). Why: on a shared VM the
 * machine's speed switches between levels for seconds at a time (the same bare undici loop,
 * alone in one process, measured 20 and 35 µs of CPU a request in consecutive 0.7 s samples),
 * so two samples compare fairly only when they are close in time. A sample process per sample
 * (the harness before) started a process, warmed it up for seconds and measured once: a round of
 * five contenders spanned half a minute, and its samples fell in different levels. Turns of a
 * fraction of a second, contenders alternating, put a round within a second or two.
 *
 * The processes are replaced every `roundsPerProcess` rounds ({@link TurnTakers.beginRound}):
 * now and then a Node process runs slow for its whole life (in one run the default Session
 * measured +31.1 µs a request over the bare call, against +3.4 to +4.3 in the runs around it;
 * attempt-deadline.ts records one such mode, V8's allocation-site pretenuring), and with one
 * process per contender for the whole run, that process would be all of its samples.
 */
export async function startTurnTakers<T>(
  script: string,
  envs: readonly Record<string, string>[],
  labels: readonly string[],
  roundsPerProcess: number,
): Promise<TurnTakers<T>> {
  let children: ChildProcess[] = [];
  const take = (child: ChildProcess, label: string): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const onExit = (code: number | null): void =>
        reject(new Error(`the sample process of ${label} exited ${code} before its turn ended`));
      child.once('exit', onExit);
      child.once('message', (message) => {
        child.off('exit', onExit);
        resolve(message);
      });
    });
  const start = async (): Promise<void> => {
    children = [];
    try {
      for (const [i, env] of envs.entries()) {
        const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(script)], {
          env: { ...process.env, ...env, BENCH_TURNS: '1' },
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        children.push(child);
        await take(child, labels[i] ?? String(i)); // ready: warmed up
      }
    } catch (error) {
      for (const child of children) child.kill();
      throw error;
    }
  };
  const close = async (): Promise<void> => {
    await Promise.all(
      children.map(async (child) => {
        if (child.exitCode !== null) return;
        const exited = once(child, 'exit');
        child.send('exit');
        await exited;
      }),
    );
  };
  await start();
  return {
    async beginRound(round) {
      if (round === 0 || round % Math.max(1, roundsPerProcess) !== 0) return;
      await close();
      await start();
    },
    async turn(index) {
      const child = children[index] as ChildProcess;
      const result = take(child, labels[index] ?? String(index));
      child.send('turn');
      return (await result) as T;
    },
    close,
  };
}

/**
 * The sample process's side of {@link startTurnTakers}: after `warmUp`, says it is ready, then
 * answers each turn with one `sample()`, until told to exit.
 */
export async function serveTurns(
  warmUp: () => Promise<unknown>,
  sample: () => Promise<unknown>,
  close: () => Promise<unknown>,
): Promise<void> {
  const send = (message: unknown): void => {
    process.send?.(message as Parameters<NonNullable<typeof process.send>>[0]);
  };
  // The bench that started this process is gone: so is the reason to wait for turns.
  process.once('disconnect', () => process.exit(1));
  await warmUp();
  send('ready');
  for await (const [message] of on(process, 'message')) {
    if (message !== 'turn') break;
    send(await sample());
  }
  await close();
  process.exit(0);
}

/**
 * Runs `script` (a bench file, as `import.meta.url`) again in a process of its own, with this
 * process's node flags and `env` added to its environment, and resolves with the JSON it printed
 * last: one sample measured alone (see bench/http-overhead.ts). `label` names it in the error
 * when the process exits other than 0.
 */
export async function sampleInChild<T>(
  script: string,
  env: Record<string, string>,
  label: string,
): Promise<T> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(script)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`the sample process of ${label} exited ${code}`);
  return JSON.parse(out.trim().split('\n').at(-1) ?? '') as T;
}
