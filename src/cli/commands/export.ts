import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { Command, InvalidArgumentError, Option } from 'commander';
import { type ExportState, statesOf } from '../../batch/export.js';
import type { Journal as JournalType } from '../../batch/journal.js';
import type { DistributedFlags } from '../distributed-flags.js';
import { EXIT, exitCodeFor, exitCodeForCommand, printError } from '../exit-codes.js';
import { addSecretHeaderFlag } from '../parse.js';

interface ExportCliOptions extends DistributedFlags {
  format: 'jsonl' | 'csv';
  bodies?: boolean;
  state?: ExportState[];
  output?: string;
  includeSecrets?: boolean;
  secretHeader?: string[];
}

/** What the flags ask of the export's redaction. */
function secretOptions(options: ExportCliOptions): {
  includeSecrets?: true;
  secretHeaders?: string[];
} {
  return {
    ...(options.includeSecrets && { includeSecrets: true }),
    ...(options.secretHeader && { secretHeaders: options.secretHeader }),
  };
}

/** `-o FILE`: created 0600 (the mode of an existing file is left alone); else stdout. */
function outputOf(options: ExportCliOptions): Writable {
  return options.output ? createWriteStream(options.output, { mode: 0o600 }) : process.stdout;
}

function stateList(text: string): ExportState[] {
  const list = text.split(',').map((s) => s.trim()) as ExportState[];
  try {
    statesOf({ states: list });
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return list;
}

/** `dogged export --store URL --job NAME`: a distributed job's records. */
async function distributedExport(options: ExportCliOptions): Promise<number> {
  if (options.store === undefined || options.job === undefined) {
    printError('export', new Error('give --store and --job'));
    return EXIT.usage;
  }
  const { exportJobRecords } = await import('../../batch/distributed-api.js');
  const { writeRecords } = await import('../../batch/export.js');
  const out = outputOf(options);
  try {
    await writeRecords(
      exportJobRecords(options.store, options.job, {
        ...(options.bodies && { bodies: true }),
        ...(options.state && { states: options.state }),
        ...secretOptions(options),
      }),
      out,
      { format: options.format, ...(options.bodies && { bodies: true }) },
    );
    if (out !== process.stdout) {
      out.end();
      await once(out, 'finish');
    }
    return EXIT.ok;
  } catch (error) {
    printError('export', error);
    return exitCodeForCommand(error);
  }
}

/** `dogged export run.sqlite --format jsonl|csv`: the journal, one record per input line. */
export function exportCommand(): Command {
  return addSecretHeaderFlag(
    new Command('export')
      .description(
        'Write the journal of a batch as JSON Lines or CSV: one record per input line, in input order (url, state, status, error, attempts, retries, timings: durationMs from the first attempt to the end, lastAttemptMs; optionally bodies).',
      )
      .argument('[db]', 'the journal (SQLite) of a dogged batch')
      .option('--store <url>', 'the PostgreSQL of a distributed batch (with --job)')
      .option('--job <name>', 'the name of a distributed batch')
      .addOption(
        new Option('--format <format>', 'jsonl or csv').choices(['jsonl', 'csv']).default('jsonl'),
      )
      .option(
        '--bodies',
        'include response bodies (stored with --bodies db): UTF-8 text, else base64',
      )
      .option(
        '--state <states>',
        'only lines in these states (pending, in_flight, done, failed, invalid, or retrying: the pending lines that already had an attempt, as dogged status counts them), e.g. failed or done,failed,retrying',
        stateList,
      )
      .option('-o, --output <file>', 'write to a file (created 0600) instead of stdout')
      .option(
        '--include-secrets',
        'export URL credentials, invalid lines and secret header values (Set-Cookie...) as the journal holds them; by default they are redacted (***)',
      ),
  )
    .addHelpText(
      'after',
      `
Exit codes: 0 ok, 2 bad usage or not a journal.

URL credentials, invalid lines' text and the values of Authorization, Proxy-Authorization,
Cookie, Set-Cookie and --secret-header headers are redacted (***) unless --include-secrets.
CSV cells starting with = + - @ tab or CR get a ' in front (OWASP's formula-injection rule).

Examples:
  dogged export run.sqlite --format jsonl --bodies > results.jsonl
  dogged export --store postgres://127.0.0.1/crawl --job nightly --format csv > results.csv
  dogged export run.sqlite --format csv --state failed -o failed.csv`,
    )
    .action(async (db: string | undefined, options: ExportCliOptions) => {
      if (options.store !== undefined || options.job !== undefined) {
        process.exitCode = await distributedExport(options);
        return;
      }
      if (db === undefined) {
        printError('export', new Error('give a journal, or --store and --job'));
        process.exitCode = EXIT.usage;
        return;
      }
      const { Journal } = await import('../../batch/journal.js');
      const { writeExport } = await import('../../batch/export.js');
      let journal: JournalType;
      try {
        journal = Journal.open(db, { readonly: true });
      } catch (error) {
        printError('export', error);
        process.exitCode = exitCodeFor(error);
        return;
      }
      const out = outputOf(options);
      try {
        await writeExport(journal, out, {
          format: options.format,
          ...(options.bodies && { bodies: true }),
          ...(options.state && { states: options.state }),
          ...secretOptions(options),
        });
        if (out !== process.stdout) {
          out.end();
          await once(out, 'finish');
        }
        process.exitCode = EXIT.ok;
      } catch (error) {
        printError('export', error);
        process.exitCode = exitCodeFor(error);
      } finally {
        journal.close();
      }
    });
}
