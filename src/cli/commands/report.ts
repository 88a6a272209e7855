import { writeFile } from 'node:fs/promises';
import { Command } from 'commander';
import type { Journal as JournalType } from '../../batch/journal.js';
import type { ReportData, ReportOptions } from '../../batch/report-data.js';
import { EXIT, exitCodeFor, exitCodeForCommand, printError } from '../exit-codes.js';
import { integer } from '../parse.js';
import { redacted } from '../redaction.js';

interface ReportCliOptions {
  output?: string;
  store?: string;
  job?: string;
  title?: string;
  top?: number;
  failed?: number;
  includeSecrets?: boolean;
}

function reportOptions(options: ReportCliOptions): ReportOptions {
  return {
    ...(options.title !== undefined && { title: options.title }),
    ...(options.top !== undefined && { top: options.top }),
    ...(options.failed !== undefined && { failedLimit: options.failed }),
    ...(options.includeSecrets && { includeSecrets: true }),
  };
}

/** Reads the data of the journal `db`, or of the job the flags name. */
async function collect(db: string | undefined, options: ReportCliOptions): Promise<ReportData> {
  if (options.store !== undefined || options.job !== undefined) {
    if (options.store === undefined || options.job === undefined)
      throw new TypeError('a distributed batch needs --store and --job');
    const { collectJobReport } = await import('../../batch/distributed-api.js');
    return collectJobReport(options.store, options.job, reportOptions(options));
  }
  if (db === undefined) throw new TypeError('give a journal, or --store and --job');
  const { Journal } = await import('../../batch/journal.js');
  const { collectReport } = await import('../../batch/report-data.js');
  const journal: JournalType = Journal.open(db, { readonly: true });
  try {
    return await collectReport(journal, reportOptions(options));
  } finally {
    journal.close();
  }
}

/** `dogged report run.sqlite -o report.html`: the batch as one self-contained HTML page. */
export function reportCommand(): Command {
  return new Command('report')
    .description(
      'Write the report of a batch as one self-contained HTML page (no network needed to open it): throughput over time, outcomes and failure reasons, attempts per line, retry delays by source, hosts, the slowest and the failed lines.',
    )
    .argument('[db]', 'the journal (SQLite) of a dogged batch')
    .option('-o, --output <file>', 'write to a file (created 0600) instead of stdout')
    .option('--store <url>', 'the PostgreSQL of a distributed batch (with --job)')
    .option('--job <name>', 'the name of a distributed batch')
    .option('--title <text>', 'the title of the page (default: the journal, or job NAME)')
    .option(
      '--top <n>',
      'how many slowest lines and busiest hosts to list (default 20)',
      integer(0, 10_000),
    )
    .option('--failed <n>', 'how many failed lines to list (default 50)', integer(0, 100_000))
    .option(
      '--include-secrets',
      'show URL credentials and error messages as the journal holds them; by default credentials are redacted (***)',
    )
    .addHelpText(
      'after',
      `
Exit codes: 0 ok, 2 bad usage or not a journal (or an unknown job), 14 PostgreSQL unreachable.

The page has no script and fetches nothing; every text from the journal is HTML-escaped and
long texts (URLs, hosts, messages) are cut. A million-line journal takes a few aggregate queries.

Examples:
  dogged report run.sqlite -o report.html
  dogged report --store postgres://127.0.0.1/crawl --job nightly -o nightly.html`,
    )
    .action(async (db: string | undefined, options: ReportCliOptions) => {
      let data: ReportData;
      try {
        data = await collect(db, options);
      } catch (error) {
        printError('report', error);
        process.exitCode = exitCodeForCommand(error);
        return;
      }
      const { renderReport } = await import('../../batch/report-html.js');
      const html = renderReport(data);
      try {
        if (options.output === undefined) process.stdout.write(html);
        else {
          await writeFile(options.output, html, { mode: 0o600 });
          process.stderr.write(redacted(`dogged report: wrote ${options.output}\n`));
        }
        process.exitCode = EXIT.ok;
      } catch (error) {
        printError('report', error);
        process.exitCode = exitCodeFor(error);
      }
    });
}
