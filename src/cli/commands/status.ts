import { Command } from 'commander';
import type { Journal as JournalType } from '../../batch/journal.js';
import { formatDuration } from '../../retry/describe.js';
import { EXIT, exitCodeFor, printError } from '../exit-codes.js';

interface StatusCliOptions {
  json?: boolean;
}

/** `dogged status run.sqlite`: where a batch stands, running or not. */
export function statusCommand(): Command {
  return new Command('status')
    .description(
      'Show where a batch stands: lines per state, status codes, why lines failed, retries, hosts, and whether a runner is at work.',
    )
    .argument('<db>', 'the journal (SQLite) of a dogged batch')
    .option('--json', 'print the status as JSON')
    .addHelpText(
      'after',
      `
Exit codes: 0 ok, 2 not a journal.

Example:
  dogged status run.sqlite`,
    )
    .action(async (db: string, options: StatusCliOptions) => {
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
          process.stdout.write(
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
        process.stdout.write(`${out.join('\n')}\n`);
      } finally {
        journal.close();
      }
      process.exitCode = EXIT.ok;
    });
}
