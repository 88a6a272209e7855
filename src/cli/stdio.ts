/**
 * What the CLI does when the reader of its output goes away (`dogged export run.sqlite | head`).
 */

/** True for the error a write to a closed pipe or socket gets. */
function isClosedPipe(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED';
}

/**
 * Installs the one handler for a closed stdout or stderr. A closed stdout ends the process at
 * once, quietly, with the exit code set so far (0 when none): nothing more can be delivered, and
 * whatever a batch did is already committed to its journal (each outcome is written in its own
 * transaction before anything is printed). A closed stderr is ignored: progress and diagnostics
 * are lost, the work goes on and stdout still gets its output.
 */
export function quietOnClosedPipes(): void {
  process.stdout.on('error', (error: unknown) => {
    if (!isClosedPipe(error)) throw error;
    process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  });
  process.stderr.on('error', (error: unknown) => {
    if (!isClosedPipe(error)) throw error;
  });
}
