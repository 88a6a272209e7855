import { Command } from 'commander';
import type { Journal as JournalType } from '../../batch/journal.js';
import { formatDuration } from '../../retry/describe.js';
import type { DistributedFlags } from '../distributed-flags.js';
import { EXIT, exitCodeFor, exitCodeForCommand, printError } from '../exit-codes.js';
import { addSecretHeaderFlag } from '../parse.js';
import { redacted, redactor } from '../redaction.js';

/** Writes to stdout through the redactor. */
function print(text: string): void {
  process.stdout.write(redacted(text));
}

interface StatusCliOptions extends DistributedFlags {
  json?: boolean;
}

/** `dogged status --queue URL --job NAME [--store URL]`: a distributed job. */
async function distributedStatus(options: StatusCliOptions): Promise<number> {
  if (options.queue === undefined || options.job === undefined) {
    printError(
      'status',
      new Error('give --queue and --job (and optionally --store for the full summary)'),
    );
    return EXIT.usage;
  }
  const { jobStatus, formatJobStatus } = await import('../../batch/distributed/status.js');
  const { summarizeJob } = await import('../../batch/distributed-api.js');
  const { formatSummary } = await import('../../batch/summary-format.js');
  try {
    const status = await jobStatus(options.queue, options.job);
    const summary = options.store ? await summarizeJob(options.store, options.job) : undefined;
    if (options.json) {
      const config = { ...status.config, headers: redactor.headers(status.config.headers) };
      print(`${JSON.stringify({ ...status, config, ...(summary && { summary }) })}\n`);
    } else {
      if (summary) print(formatSummary(summary, { title: `job ${options.job}` }));
      print(formatJobStatus(status));
    }
    return EXIT.ok;
  } catch (error) {
    printError('status', error);
    return exitCodeForCommand(error);
  }
}

/** `dogged status run.sqlite`: where a batch stands, running or not. */
export function statusCommand(): Command {
  return addSecretHeaderFlag(new Command('status'))
    .description(
      'Show where a batch stands: lines per state, status codes, why lines failed, retries, hosts, and whether a runner is at work.',
    )
    .argument('[db]', 'the journal (SQLite) of a dogged batch')
    .option(
      '--queue <url>',
      'the Redis of a distributed batch (with --job): counts per state, per host, rate',
    )
    .option('--job <name>', 'the name of a distributed batch')
    .option('--store <url>', 'with --queue: also the full summary from PostgreSQL')
    .option('--json', 'print the status as JSON')
    .addHelpText(
      'after',
      `
Exit codes: 0 ok, 2 not a journal (or an unknown job), 13 Redis unreachable, 14 PostgreSQL unreachable.

Examples:
  dogged status run.sqlite
  dogged status --queue redis://127.0.0.1:6379/0 --job nightly [--store postgres://127.0.0.1/crawl]`,
    )
    .action(async (db: string | undefined, options: StatusCliOptions) => {
      if (options.queue !== undefined || options.job !== undefined) {
        process.exitCode = await distributedStatus(options);
        return;
      }
      if (db === undefined) {
        printError('status', new Error('give a journal, or --queue and --job'));
        process.exitCode = EXIT.usage;
        return;
      }
      const { Journal } = await import('../../batch/journal.js');
      const { lockHolder } = await import('../../batch/lock.js');
      const { summarize } = await import('../../batch/summary.js');
      const { formatSummary } = await import('../../batch/summary-format.js');
      let journal: JournalType;
      try {
        journal = Journal.open(db, { readonly: true });
      } catch (error) {
        printError('status', error);
        process.exitCode = exitCodeFor(error);
        return;
      }
      try {
        const summary = summarize(journal);
        const runner = lockHolder(journal);
        const input = journal.getMeta('input');
        const lastRun = journal.getMeta('last_run_at');
        if (options.json) {
          print(
            `${JSON.stringify({ db, input: input ?? null, lastRunAt: lastRun ?? null, runner: runner ?? null, ...summary })}\n`,
          );
          return;
        }
        const out: string[] = [formatSummary(summary, { title: db }).trimEnd()];
        if (input) out.push(`  ${'input'.padEnd(10)} ${input}`);
        out.push(
          `  ${'runner'.padEnd(10)} ${
            runner
              ? `running: pid ${runner.pid} on ${runner.hostname}, for ${formatDuration(Date.now() - runner.startedAt)}`
              : `none${lastRun ? ` (last run started ${lastRun})` : ''}`
          }`,
        );
        const left = summary.counts.pending + summary.counts.in_flight;
        if (!runner && left > 0)
          out.push(
            `  ${''.padEnd(10)} ${left.toLocaleString('en-US')} lines left: run the same dogged batch command again to finish them`,
          );
        if (!runner && summary.counts.failed > 0)
          out.push(
            `  ${''.padEnd(10)} dogged retry-failed ${db} gives the failed lines another chance`,
          );
        print(`${out.join('\n')}\n`);
      } finally {
        journal.close();
      }
      process.exitCode = EXIT.ok;
    });
}
