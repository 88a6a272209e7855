import { existsSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { addRunFlags, type RunFlags, runFromFlags, withRemembered } from '../batch-run.js';
import { EXIT, exitCodeFor, printError } from '../exit-codes.js';

interface RetryFailedCliOptions extends RunFlags {
  status?: string[];
  code?: string[];
  resetOnly?: boolean;
}

function statuses(text: string): string[] {
  const list = text.split(',').map((s) => s.trim().toLowerCase());
  for (const s of list)
    if (!/^([1-5]xx|\d{3})$/.test(s))
      throw new InvalidArgumentError(`statuses look like 503 or 5xx, got ${JSON.stringify(s)}`);
  return list;
}

/** `dogged retry-failed run.sqlite`: failed lines get a fresh retry budget and run again. */
export function retryFailedCommand(): Command {
  const command = new Command('retry-failed')
    .description(
      'Give the failed lines of a journal another chance: reset them to pending with a fresh retry budget, then run the batch on the journal (with the flags it was run with, unless given).',
    )
    .argument('<db>', 'the journal (SQLite) of a dogged batch')
    .option(
      '--status <statuses>',
      'only lines that failed with these statuses, e.g. 503,429 or 5xx',
      statuses,
    )
    .option(
      '--code <codes>',
      'only lines that failed with these error codes, e.g. ERR_DOGGED_READ_TIMEOUT',
      (t: string) => t.split(',').map((s) => s.trim()),
    )
    .option('--reset-only', 'reset the lines to pending, do not run them now');
  addRunFlags(command);
  command.addHelpText(
    'after',
    `
Exit codes: as dogged batch (0 every line done, 10 some failed again, 12 journal in use...).

Examples:
  dogged retry-failed run.sqlite
  dogged retry-failed run.sqlite --status 5xx --retries 8 --backoff 2s`,
  );
  command.action(async (db: string, options: RetryFailedCliOptions) => {
    if (!existsSync(db)) {
      printError('retry-failed', new Error(`${db} does not exist`));
      process.exitCode = EXIT.usage;
      return;
    }
    const { Journal } = await import('../../batch/journal.js');
    const { resetFailed } = await import('../../batch/retry-failed.js');
    let remembered: string | undefined;
    try {
      const journal = Journal.open(db);
      try {
        const count = resetFailed(journal, {
          ...(options.status && { statuses: options.status }),
          ...(options.code && { codes: options.code }),
        });
        remembered = journal.getMeta('cli_options');
        process.stderr.write(
          `dogged retry-failed: ${count.toLocaleString('en-US')} failed ${count === 1 ? 'line is' : 'lines are'} pending again\n`,
        );
      } finally {
        journal.close();
      }
    } catch (error) {
      printError('retry-failed', error);
      process.exitCode = exitCodeFor(error);
      return;
    }
    if (options.resetOnly) {
      process.stderr.write(`run them with: dogged batch --db ${db}\n`);
      process.exitCode = EXIT.ok;
      return;
    }
    const { status: _s, code: _c, resetOnly: _r, ...flags } = options;
    process.exitCode = await runFromFlags(
      { kind: 'local', db },
      undefined,
      withRemembered(flags, remembered),
      'retry-failed',
    );
  });
  return command;
}
