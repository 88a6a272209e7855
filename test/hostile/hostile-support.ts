import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { build } from 'esbuild';
import { root } from '../batch/batch-support.js';

/** What a CLI child did: exit code, output, peak memory and how long it ran. */
export interface MeasuredRun extends ChildRun {
  /** Peak resident set size of the child, in MiB (from `process.resourceUsage()` at exit). */
  readonly maxRssMiB: number;
}

/** The CLI compiled to JavaScript, as `npm run build` makes it; `remove()` deletes it. */
export interface BuiltCli {
  readonly main: string;
  remove(): void;
}

/**
 * Compiles src/ file by file (esbuild, the transform tsx uses; no bundling, so lazy imports stay
 * lazy) into a directory next to src/, so that memory is measured on the CLI as users run it,
 * without tsx's loader (some 60 MB of its own).
 */
export async function buildCli(): Promise<BuiltCli> {
  // One level below the root, as dist/ (session.ts reads ../../package.json).
  const dir = join(root, `.hostile-dist-${process.pid}`);
  await build({
    entryPoints: [join(root, 'src/**/*.ts')],
    outbase: join(root, 'src'),
    outdir: dir,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
  });
  return {
    main: join(dir, 'cli', 'main.js'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** What a child process printed, and how it ended. */
export interface ChildRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly elapsedMs: number;
}

/** Runs `node ...args` from the repository's root to its end. */
export async function runNode(args: string[], env: Record<string, string> = {}): Promise<ChildRun> {
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...process.env, NO_COLOR: '1', DOGGED_LOG: '', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const code = await new Promise<number>((resolve) =>
    child.once('close', (exit) => resolve(exit ?? -1)),
  );
  return { code, stdout, stderr, elapsedMs: performance.now() - started };
}

/**
 * Runs the built CLI (`node main.js ...`) in a child process, as a user does, with a preload
 * that prints its peak RSS at exit (test/fixtures/print-max-rss.mjs).
 */
export async function runMeasured(
  cli: BuiltCli,
  args: string[],
  env: Record<string, string> = {},
): Promise<MeasuredRun> {
  const run = await runNode(
    ['--import', './test/fixtures/print-max-rss.mjs', cli.main, ...args],
    env,
  );
  const kib = Number(/max-rss-kib=(\d+)/.exec(run.stderr)?.[1] ?? Number.NaN);
  return {
    ...run,
    stderr: run.stderr.replace(/\nmax-rss-kib=\d+\n/, ''),
    maxRssMiB: kib / 1024,
  };
}
