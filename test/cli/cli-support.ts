/**
 * Helpers of the CLI tests: `piped` runs `dogged ... | reader` in bash; the rest is for file
 * permissions. Root reads and writes any file whatever its
 * mode, so a test running as root runs the CLI as `nobody` (uid 65534) to see what a user sees;
 * as any other user, the CLI runs as that user and a mode of 000 makes a file unreadable.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { type CliUser, root, tempDir } from '../batch/batch-support.js';
import { CLI_ENTRY } from '../support/cli.js';

/** uid and gid of `nobody` on Debian, Ubuntu and Alpine. */
const NOBODY = 65534;

const isRoot = (): boolean => process.getuid?.() === 0;

/** The user the CLI runs as in permission tests: `nobody` when the tests run as root. */
export function asOtherUser(): CliUser {
  return isRoot() ? { uid: NOBODY, gid: NOBODY } : {};
}

/**
 * Whether a permission test can run: as root (the CLI then runs as `nobody`) or as a user who
 * is not root (the CLI runs as that user, whom a mode of 000 or 444 stops). On Windows, no.
 */
export function otherUserCanRun(): boolean {
  return typeof process.getuid === 'function';
}

/** The mode that makes a file unreadable to the CLI of {@link asOtherUser}. */
export function unreadableMode(): number {
  return isRoot() ? 0o600 : 0o000;
}

const quote = (arg: string): string => `'${arg.replaceAll("'", "'\\''")}'`;

/**
 * Runs `dogged ARGS | READER` in bash; resolves with dogged's exit code (PIPESTATUS), its stderr
 * and what the reader printed.
 */
export function piped(
  args: string[],
  reader: string,
): Promise<{ code: number; stderr: string; stdout: string }> {
  const dogged = [process.execPath, CLI_ENTRY, ...args].map(quote).join(' ');
  const script = `${dogged} 2>"$ERR" | ${reader}; code=\${PIPESTATUS[0]}; cat "$ERR" >&2; exit $code`;
  const { dir } = tempDir('dogged-pipe-');
  const child = spawn('bash', ['-c', script], {
    cwd: root,
    env: { ...process.env, NO_COLOR: '1', DOGGED_LOG: '', ERR: join(dir, 'stderr') },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve) =>
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr })),
  );
}
