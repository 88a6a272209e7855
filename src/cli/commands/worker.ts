import { Command } from 'commander';
import { formatDuration } from '../../retry/describe.js';
import { addDistributedFlags, type DistributedFlags } from '../distributed-flags.js';
import { EXIT, exitCodeForCommand, printError } from '../exit-codes.js';
import { addMetricsFlag, type MetricsFlag, startMetricsFlag } from '../metrics-flag.js';
import { addSecretHeaderFlag, integer, parseDuration } from '../parse.js';
import { describeProgress } from '../progress-view.js';
import { readProxyFile } from '../proxies.js';
import { redacted } from '../redaction.js';

interface WorkerCliOptions extends DistributedFlags, MetricsFlag {
  concurrency?: number;
  lockDuration?: number;
  proxies?: string;
  progressInterval?: number;
  quiet?: boolean;
  verbose?: boolean;
}

/**
 * `dogged worker --queue ... --store ...`: works on distributed batches (started with
 * `dogged batch --queue --store --job`) until stopped. Run as many as you like, on any machine.
 */
export function workerCommand(): Command {
  const command = new Command('worker').description(
    'Work on distributed batches: fetch the lines of every job on the queue (or of --job), with the policy and the fleet-wide limits the job was started with, recording each outcome once in PostgreSQL. Run one or more on each machine; stop with Ctrl-C (lines in flight finish, or go back to the queue).',
  );
  addDistributedFlags(command, { job: true });
  command
    .option(
      '--concurrency <n>',
      'lines in flight in this process, per job (default: 16)',
      integer(1, 10_000),
    )
    .option(
      '--lock-duration <duration>',
      'how long this worker keeps its lines if it dies, before others take them over (default: 10s)',
      parseDuration,
    )
    .option(
      '--proxies <file>',
      'send through the proxies listed in this file (one URL a line), rotated: a proxy answering 403 or 429 is benched and the request moves on through another',
    )
    .option(
      '--progress-interval <duration>',
      "how often to print each job's progress, all workers together (default: 10s)",
      parseDuration,
    )
    .option('-q, --quiet', 'print nothing but errors')
    .option('-v, --verbose', 'print every retry to stderr');
  addMetricsFlag(command);
  addSecretHeaderFlag(command)
    .addHelpText(
      'after',
      `
Exit codes: 0 stopped by Ctrl-C or SIGTERM after finishing its lines in flight, 2 bad usage,
13 Redis (--queue) unreachable at start, 14 PostgreSQL (--store) unreachable at start.
Once started, a worker rides out restarts of Redis and PostgreSQL.

Examples:
  dogged worker --queue redis://10.0.0.5:6379/0 --store postgres://dogged@10.0.0.6/crawl --concurrency 32
  dogged worker --queue redis://10.0.0.5:6379/0 --store postgres://dogged@10.0.0.6/crawl --job nightly`,
    )
    .action(async (options: WorkerCliOptions) => {
      if (options.queue === undefined || options.store === undefined) {
        printError(
          'worker',
          new Error('give --queue and --store (the ones given to dogged batch)'),
        );
        process.exitCode = EXIT.usage;
        return;
      }
      const { runWorker } = await import('../../batch/distributed/worker.js');
      let proxies: string[] | undefined;
      try {
        proxies = options.proxies ? readProxyFile(options.proxies) : undefined;
      } catch (error) {
        printError('worker', error);
        process.exitCode = EXIT.usage;
        return;
      }
      /** Everything the worker prints goes through the redactor. */
      const say = (line: string): void => {
        process.stderr.write(`${redacted(line)}\n`);
      };
      let metrics: Awaited<ReturnType<typeof startMetricsFlag>>;
      try {
        metrics = await startMetricsFlag(options, 'worker');
      } catch (error) {
        printError('worker', error);
        process.exitCode = EXIT.usage;
        return;
      }
      const run: typeof runWorker = metrics
        ? (o) => runWorker(metrics.observeWorker(o))
        : runWorker;
      const controller = new AbortController();
      let signals = 0;
      const onSignal = (signal: NodeJS.Signals): void => {
        if (++signals > 1) process.exit(EXIT.interrupted);
        if (!options.quiet)
          say(
            `dogged worker: ${signal}: stopping; letting the lines in flight finish (again to stop at once; nothing is lost)`,
          );
        controller.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const started = Date.now();
      const printed = new Map<string, string>();
      try {
        const result = await run({
          queue: options.queue,
          store: options.store,
          ...(options.job !== undefined && { job: options.job }),
          ...(options.concurrency !== undefined && { concurrency: options.concurrency }),
          ...(options.lockDuration !== undefined && { lockDurationMs: options.lockDuration }),
          ...(proxies && { proxies }),
          signal: controller.signal,
          ...(!options.quiet && {
            progressIntervalMs: options.progressInterval ?? 10_000,
            onProgress: (job, p) => {
              const line = `dogged worker: job ${job}: ${describeProgress(p)}`;
              if (printed.get(job) === line) return;
              printed.set(job, line);
              say(line);
            },
          }),
          onEvent: (message) => {
            if (!options.quiet || message.startsWith('error')) say(`dogged worker: ${message}`);
          },
          ...(options.verbose && {
            onRetry: (e) =>
              say(
                `dogged worker: ${e.method} ${e.url} (line ${e.line}) attempt ${e.attempt} failed: ${e.message}; retry in ${formatDuration(e.delayMs)} (${e.delaySource})`,
              ),
          }),
        });
        if (!options.quiet)
          say(
            `dogged worker: stopped after ${formatDuration(Date.now() - started)}: ${result.attempts.toLocaleString('en-US')} attempts on ${result.jobs.length} job(s)`,
          );
        process.exitCode = EXIT.ok;
      } catch (error) {
        printError('worker', error);
        process.exitCode = exitCodeForCommand(error);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await metrics?.close();
      }
    });
  return command;
}
