import { existsSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import type { JobConfig } from '../../batch/distributed/job-config.js';
import type { FailedFilter } from '../../batch/retry-failed.js';
import { addRunFlags, type RunFlags, runFromFlags, withRemembered } from '../batch-run.js';
import {
  addDistributedFlags,
  type DistributedFlags,
  distributedTarget,
} from '../distributed-flags.js';
import { EXIT, exitCodeFor, exitCodeForCommand, printError } from '../exit-codes.js';
import type { TimeoutFlag } from '../parse.js';
import { redactor, shownUrl } from '../redaction.js';

interface RetryFailedCliOptions extends RunFlags, DistributedFlags {
  status?: string[];
  code?: string[];
  resetOnly?: boolean;
}

type JobTarget = { queue: string; store: string; job: string };

function statuses(text: string): string[] {
  const list = text.split(',').map((s) => s.trim().toLowerCase());
  for (const s of list)
    if (!/^([1-5]xx|\d{3})$/.test(s))
      throw new InvalidArgumentError(`statuses look like 503 or 5xx, got ${JSON.stringify(s)}`);
  return list;
}

function filterOf(options: RetryFailedCliOptions): FailedFilter {
  return {
    ...(options.status && { statuses: options.status }),
    ...(options.code && { codes: options.code }),
  };
}

function resetMessage(count: number): string {
  return `dogged retry-failed: ${count.toLocaleString('en-US')} failed ${count === 1 ? 'line is' : 'lines are'} pending again\n`;
}

/**
 * The run flags a distributed job was started with, from its stored config: what the local
 * retry-failed reads from the journal's remembered flags (as JSON, for `withRemembered`).
 */
async function rememberedOfJob(config: JobConfig): Promise<string> {
  const { resolveTimeouts } = await import('../../http/timeouts.js');
  const { BATCH_TIMEOUTS } = await import('../../batch/options.js');
  let timeout: TimeoutFlag | undefined;
  if (config.timeout !== null) {
    const t = resolveTimeouts(config.timeout, BATCH_TIMEOUTS);
    timeout = {
      connect: t.connect,
      read: t.read,
      ...(t.attempt !== undefined && { attempt: t.attempt }),
    };
  }
  const r = config.retry;
  const flags: RunFlags = {
    perHost: config.perHost,
    rate: config.rate ?? 'none',
    ...(config.giveUpAfter !== undefined && { giveUpAfter: config.giveUpAfter }),
    ...(timeout && { timeout }),
    ...(typeof config.maxBodySize === 'number' && { maxBody: config.maxBodySize }),
    bodies: config.bodies,
    header: Object.entries(config.headers).map(([name, value]) => `${name}: ${value}`),
    ...(r.total !== undefined && { retries: r.total }),
    ...(r.backoff !== undefined && { backoff: r.backoff }),
    ...(r.maxBackoff !== undefined && { maxBackoff: r.maxBackoff }),
    ...(r.jitter !== undefined && { jitter: r.jitter }),
    ...(r.statusForcelist && { retryOn: r.statusForcelist }),
    maxRetryAfter: config.maxRetryAfter,
  };
  return JSON.stringify(flags);
}

/**
 * `dogged retry-failed --queue URL --store URL --job NAME`: resets the job's failed lines
 * (store and counters), then runs the job here as `dogged batch --queue --store --job` without
 * INPUT resumes it, with the flags the job was started with unless given. Resolves with the exit
 * code.
 */
async function retryFailedJob(target: JobTarget, options: RetryFailedCliOptions): Promise<number> {
  for (const url of [target.queue, target.store]) redactor.addUrl(url);
  const { resetFailedJob } = await import('../../batch/distributed/retry-failed-job.js');
  let config: JobConfig;
  let count: number;
  try {
    const result = await resetFailedJob(target, filterOf(options), {
      enqueue: options.resetOnly ?? false,
    });
    ({ config, reset: count } = result);
    process.stderr.write(resetMessage(count));
  } catch (error) {
    printError('retry-failed', error);
    return exitCodeForCommand(error);
  }
  if (options.resetOnly) {
    const [queue, store] = [shownUrl(target.queue), shownUrl(target.store)];
    const where = `--queue ${queue} --store ${store} --job ${target.job}`;
    const secrets = queue !== target.queue || store !== target.store;
    if (count > 0)
      process.stderr.write(
        `they are enqueued for the dogged workers at work on the queue; to start one:\n  dogged worker ${where}\nor to run them here (give the job's flags again: dogged batch writes its flags to the job):\n  dogged batch ${where}\n${secrets ? '  (secrets are shown as ***: give them again)\n' : ''}`,
      );
    return EXIT.ok;
  }
  const { status: _s, code: _c, resetOnly: _r, queue: _q, store: _st, job: _j, ...flags } = options;
  const remembered = withRemembered(flags, await rememberedOfJob(config));
  // The job's fleet-wide retry budget stays off if it was started with --no-retry-budget.
  if (config.budget === false) remembered.retryBudget = false;
  return runFromFlags(
    { kind: 'distributed', ...target, enqueueOnly: false },
    undefined,
    remembered,
    'retry-failed',
  );
}

/** `dogged retry-failed run.sqlite`: failed lines get a fresh retry budget and run again. */
export function retryFailedCommand(): Command {
  const command = new Command('retry-failed')
    .description(
      'Give the failed lines of a journal, or of a distributed job (--queue, --store, --job), another chance: reset them to pending with a fresh retry budget, then run the batch (with the flags it was run with, unless given).',
    )
    .argument('[db]', 'the journal (SQLite) of a dogged batch (none with --queue, --store, --job)');
  addDistributedFlags(command, { job: true });
  command
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
Exit codes: as dogged batch (0 every line done, 10 some failed again, 12 journal in use,
13 Redis (--queue) unreachable, 14 PostgreSQL (--store) unreachable, 2 an unknown job...).

Examples:
  dogged retry-failed run.sqlite
  dogged retry-failed run.sqlite --status 5xx --retries 8 --backoff 2s
  dogged retry-failed --queue redis://10.0.0.5:6379/0 --store postgres://dogged@10.0.0.6/crawl --job nightly --status 5xx`,
  );
  command.action(async (db: string | undefined, options: RetryFailedCliOptions) => {
    let target: JobTarget | undefined;
    try {
      const distributed = distributedTarget(options, { jobRequired: true });
      if (distributed && db !== undefined)
        throw new Error(
          'give either a journal (run.sqlite) or --queue, --store and --job, not both',
        );
      if (!distributed && db === undefined)
        throw new Error(
          'give a journal (run.sqlite), or --queue, --store and --job for a distributed job',
        );
      if (distributed) target = { ...distributed, job: distributed.job as string };
    } catch (error) {
      printError('retry-failed', error);
      process.exitCode = EXIT.usage;
      return;
    }
    if (target) {
      process.exitCode = await retryFailedJob(target, options);
      return;
    }
    if (db === undefined) return; // not reached: checked above
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
        const count = resetFailed(journal, filterOf(options));
        remembered = journal.getMeta('cli_options');
        process.stderr.write(resetMessage(count));
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
