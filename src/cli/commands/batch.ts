import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { addRunFlags, type RunFlags, runFromFlags } from '../batch-run.js';
import { EXIT, printError } from '../exit-codes.js';

interface BatchCliOptions extends RunFlags {
  db: string;
}

/**
 * `dogged batch INPUT --db run.sqlite`: fetches every line of INPUT and records each outcome
 * exactly once in the journal; running the same command again resumes.
 */
export function batchCommand(): Command {
  const command = new Command('batch')
    .description(
      'Fetch every URL of INPUT (a file of URLs or JSONL lines, - for stdin) with durable retries, recording each outcome exactly once in a SQLite journal. Run the same command again to resume after a crash, kill -9 or Ctrl-C.',
    )
    .argument(
      '[input]',
      "file of URLs or JSONL {url, method, headers, body, key} lines; - for stdin; omit to finish the journal's pending lines",
    )
    .requiredOption('--db <path>', 'the journal (SQLite); created if missing, resumed if present');
  addRunFlags(command);
  command.addHelpText(
    'after',
    `
Exit codes: 0 every line done, 2 bad usage (or a journal made from another input),
10 finished with failed or invalid lines, 11 lines left scheduled beyond --max-wait,
12 another runner holds the journal, 130 interrupted (run again to resume).

Examples:
  dogged batch urls.txt --db run.sqlite --concurrency 32 --per-host 8
  dogged batch urls.txt --db run.sqlite        # again: resumes, adds appended lines
  dogged status run.sqlite && dogged export run.sqlite --format csv > results.csv`,
  );
  command.action(async (input: string | undefined, options: BatchCliOptions) => {
    if (input === undefined && !existsSync(options.db)) {
      printError('batch', new Error(`give an INPUT file (or -): ${options.db} does not exist yet`));
      process.exitCode = EXIT.usage;
      return;
    }
    if (input !== undefined && input !== '-' && !existsSync(input)) {
      printError('batch', new Error(`cannot read ${input}: no such file`));
      process.exitCode = EXIT.usage;
      return;
    }
    process.exitCode = await runFromFlags(options.db, input, options, 'batch');
  });
  return command;
}
