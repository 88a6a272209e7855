import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { checkInputReadable } from '../../batch/input.js';
import { addRunFlags, type BatchTarget, type RunFlags, runFromFlags } from '../batch-run.js';
import {
  addDistributedFlags,
  type DistributedFlags,
  distributedTarget,
} from '../distributed-flags.js';
import { EXIT, printError } from '../exit-codes.js';
import { integer, parseDuration } from '../parse.js';

interface BatchCliOptions extends RunFlags, DistributedFlags {
  db?: string;
  enqueueOnly?: boolean;
}

/**
 * `dogged batch INPUT --db run.sqlite`: fetches every line of INPUT and records each outcome
 * exactly once in the journal; running the same command again resumes. With `--queue`,
 * `--store` and `--job`, the same on the distributed backend (docs/scaling-out.md).
 */
export function batchCommand(): Command {
  const command = new Command('batch')
    .description(
      'Fetch every URL of INPUT (a file of URLs or JSONL lines, - for stdin) with durable retries, recording each outcome exactly once: in a SQLite journal (--db), or in PostgreSQL with the work shared by workers on any machine through Redis (--queue, --store, --job). Run the same command again to resume after a crash, kill -9 or Ctrl-C.',
    )
    .argument(
      '[input]',
      'file of URLs or JSONL {url, method, headers, body, key} lines; - for stdin; omit to finish the pending lines',
    )
    .option('--db <path>', 'the journal (SQLite); created if missing, resumed if present');
  addDistributedFlags(command, { job: true });
  command
    .option(
      '--enqueue-only',
      'with --queue: record and enqueue the input, leave the fetching to dogged worker',
    )
    .option(
      '--lock-duration <duration>',
      'with --queue: how long a dead worker keeps its lines before others take them over (default: 10s)',
      parseDuration,
    )
    .option(
      '--chunk-size <n>',
      'with --queue: input lines per queue job, kept by the job once enqueued (default: 250)',
      integer(1, 100_000),
    )
    .option(
      '--no-retry-budget',
      'with --queue: no fleet-wide retry budget (default: 20% of requests + 10/s per host)',
    );
  addRunFlags(command);
  command.addHelpText(
    'after',
    `
Exit codes: 0 every line done, 2 bad usage (or a journal made from another input),
10 finished with failed or invalid lines, 11 lines left scheduled beyond --max-wait,
12 another runner holds the journal, 13 Redis (--queue) unreachable,
14 PostgreSQL (--store) unreachable, 130 interrupted (run again to resume).

Examples:
  dogged batch urls.txt --db run.sqlite --concurrency 32 --per-host 8
  dogged batch urls.txt --db run.sqlite        # again: resumes, adds appended lines
  dogged status run.sqlite && dogged export run.sqlite --format csv > results.csv
  dogged batch urls.txt --queue redis://10.0.0.5:6379/0 --store postgres://dogged@10.0.0.6/crawl --job nightly
  dogged worker --queue redis://10.0.0.5:6379/0 --store postgres://dogged@10.0.0.6/crawl   # on other machines`,
  );
  command.action(async (input: string | undefined, options: BatchCliOptions) => {
    let target: BatchTarget;
    try {
      const distributed = distributedTarget(options, { jobRequired: true });
      if (distributed && options.db !== undefined)
        throw new Error(
          'give either --db (a local journal) or --queue, --store and --job, not both',
        );
      if (!distributed && options.db === undefined)
        throw new Error(
          "required option '--db <path>' not specified (or --queue, --store and --job)",
        );
      if (!distributed && options.enqueueOnly)
        throw new Error('--enqueue-only needs --queue, --store and --job');
      if (!distributed && options.chunkSize !== undefined)
        throw new Error('--chunk-size needs --queue, --store and --job');
      target = distributed
        ? {
            kind: 'distributed',
            ...distributed,
            job: distributed.job as string,
            enqueueOnly: options.enqueueOnly ?? false,
          }
        : { kind: 'local', db: options.db as string };
    } catch (error) {
      printError('batch', error);
      process.exitCode = EXIT.usage;
      return;
    }
    if (target.kind === 'local' && input === undefined && !existsSync(target.db)) {
      printError('batch', new Error(`give an INPUT file (or -): ${target.db} does not exist yet`));
      process.exitCode = EXIT.usage;
      return;
    }
    // Before the journal is created: a bad input path leaves nothing behind.
    try {
      if (input !== undefined) checkInputReadable(input);
    } catch (error) {
      printError('batch', error);
      process.exitCode = EXIT.usage;
      return;
    }
    process.exitCode = await runFromFlags(target, input, options, 'batch');
  });
  return command;
}
