import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { exportRecords, Journal } from '../../src/index.js';
import { CLI_ENTRY } from '../support/cli.js';

export const root = fileURLToPath(new URL('../../', import.meta.url));

/** Temporary directories not removed yet: whatever a test forgot goes after its file. */
const made = new Set<string>();
function removeAll(): void {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
  made.clear();
}
// After the test file that imported this (each file gets its own copy of this module), and at
// exit for a file that stopped early. Outside a test file (the preflight, test/global-setup.ts,
// imports the service addresses through here) there is no suite to hook: the exit hook does.
try {
  afterAll(removeAll);
} catch {}
process.once('exit', removeAll);

/**
 * A fresh temporary directory, removed by the returned cleanup, and in any case after the test
 * file and when the process exits: a test run leaves no `dogged-*` directory behind.
 */
export function tempDir(prefix = 'dogged-batch-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  return {
    dir,
    cleanup: () => {
      rmSync(dir, { recursive: true, force: true });
      made.delete(dir);
    },
  };
}

export interface CliRun {
  child: ChildProcessWithoutNullStreams;
  /** Everything printed so far. */
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the exit code (or -1 when killed by a signal) once the streams are closed. */
  readonly exited: Promise<number>;
}

/** Who runs the child: another user's ids (tests of file permissions run as root). */
export interface CliUser {
  readonly uid?: number;
  readonly gid?: number;
}

/** Starts `dogged ...` as a child process, the way a user runs it. */
export function startCli(
  args: string[],
  env: Record<string, string> = {},
  user: CliUser = {},
): CliRun {
  const child = spawn(process.execPath, [CLI_ENTRY, ...args], {
    cwd: root,
    env: { ...process.env, NO_COLOR: '1', DOGGED_LOG: '', ...env },
    ...user,
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = new Promise<number>((resolve) =>
    child.once('close', (code) => resolve(code ?? -1)),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Runs `dogged ...` to the end. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  user: CliUser = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const run = startCli(args, env, user);
  const code = await run.exited;
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

/** Waits until `predicate` holds, polling every `everyMs`. */
export async function waitFor(
  predicate: () => boolean,
  what: string,
  timeoutMs = 15_000,
  everyMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Writes `lines` (one a line) to `dir/name`; returns the path. */
export function writeLines(dir: string, name: string, lines: readonly string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

/** Every record of the journal at `db`, bodies included (`exportRecords`), read-only. */
export function journalRecords(db: string) {
  const journal = Journal.open(db, { readonly: true });
  try {
    return [...exportRecords(journal, { bodies: true })];
  } finally {
    journal.close();
  }
}
