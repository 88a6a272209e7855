import { spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_ENTRY } from './cli.js';

/** Where the incremental build keeps what it knows (see tsconfig.build.json). */
const BUILD_INFO = '.build/dist.tsbuildinfo';

/**
 * Brings `dist/` up to date with `src/` (`npm run build`, incremental: a few seconds when
 * nothing changed), so the CLI the tests spawn is the code under test. Throws with the
 * compiler's output when the build fails.
 */
export async function buildCli(root: string): Promise<void> {
  // The build info says what was emitted; without the output it would wrongly skip the build.
  if (!existsSync(join(root, CLI_ENTRY))) rmSync(join(root, BUILD_INFO), { force: true });
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const child = spawn(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0)
    throw new Error(
      `preflight: the build of dist/ (the CLI the tests spawn) failed (npm run build):\n${output}`,
    );
}
