#!/usr/bin/env node
import { createProgram } from './program.js';
import { primeRedactor, redacted } from './redaction.js';
import { quietOnClosedPipes } from './stdio.js';

// Before anything can be printed: what in the arguments is secret.
primeRedactor(process.argv.slice(2));
// `dogged ... | head`: a reader that went away ends the command quietly, as with any Unix tool.
quietOnClosedPipes();

createProgram()
  .parseAsync(process.argv)
  .catch((error: unknown) => {
    // Commands map the failures they expect to documented exit codes; anything that reaches
    // here is unexpected (exit 1, as documented), shown with its stack for the bug report.
    process.stderr.write(
      `dogged: unexpected error: ${redacted(error instanceof Error ? (error.stack ?? error.message) : String(error))}\n`,
    );
    process.exitCode = 1;
  });
