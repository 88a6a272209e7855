#!/usr/bin/env node
import { createProgram } from './program.js';

createProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    // Commands map the failures they expect to documented exit codes; anything that reaches
    // here is unexpected (exit 1, as documented), shown with its stack for the bug report.
    process.stderr.write(
      `dogged: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  });
