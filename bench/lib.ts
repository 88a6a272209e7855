/** Small helpers shared by the benchmark scripts: interleaved rounds, medians, one table. */
import { cpus } from 'node:os';

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

/** Starts bench/server.ts in a child process; resolves with its URL and a stop function. */
export async function startBenchServer(): Promise<{ url: string; stop: () => void }> {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const script = fileURLToPath(new URL('./server.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const port = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) resolve(out.trim());
    });
    child.once('exit', (code) => reject(new Error(`bench server exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
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
