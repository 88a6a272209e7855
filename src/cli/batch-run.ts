/**
 * What `dogged batch` and `dogged retry-failed` share: the run flags, the progress view, signal
 * handling (Ctrl-C stops gracefully, twice stops at once), the summary and the exit code.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { parseBodiesOption } from '../batch/bodies.js';
import type { DistributedBatchOptions } from '../batch/distributed/options.js';
import { type HostRate, parseHostRate } from '../batch/host-limits.js';
import type { BatchInput } from '../batch/input.js';
import type { BatchOptions } from '../batch/options.js';
import type { BatchRetryEvent } from '../batch/progress-state.js';
import type { BatchResult } from '../batch/runner.js';
import { formatDuration } from '../retry/describe.js';
import { EXIT, exitCodeForCommand, printError } from './exit-codes.js';
import { addMetricsFlag, type MetricsFlag, startMetricsFlag } from './metrics-flag.js';
import {
  addSecretHeaderFlag,
  collect,
  headersFrom,
  integer,
  parseDuration,
  parseHeader,
  parsePositiveDuration,
  parseSize,
  type TimeoutFlag,
} from './parse.js';
import { createProgressView } from './progress-view.js';
import { readProxyFile } from './proxies.js';
import { redacted, redactedArgs, redactor, shownUrl } from './redaction.js';
import {
  addRetryFlags,
  addTimeoutFlag,
  policyOptions,
  type RetryFlags,
  retryFlags,
  retrySpecOf,
} from './retry-flags.js';

/** The flags of a run, as commander parses them (undefined: not given). */
export interface RunFlags extends Partial<RetryFlags>, MetricsFlag {
  concurrency?: number;
  perHost?: number;
  rate?: HostRate;
  giveUpAfter?: number;
  timeout?: TimeoutFlag;
  maxBody?: number;
  proxies?: string;
  bodies?: string;
  header?: string[];
  secretHeader?: string[];
  maxWait?: number;
  progressInterval?: number;
  quiet?: boolean;
  verbose?: boolean;
  json?: boolean;
  retryBudget?: boolean;
  lockDuration?: number;
  chunkSize?: number;
  cookies?: boolean;
  http2?: boolean;
}

/** Where a batch runs: a local journal, or a distributed job (Redis + PostgreSQL). */
export type BatchTarget =
  | { readonly kind: 'local'; readonly db: string }
  | {
      readonly kind: 'distributed';
      readonly queue: string;
      readonly store: string;
      readonly job: string;
      readonly enqueueOnly: boolean;
    };

/** Flags worth remembering in the journal, so `retry-failed` runs like the original run. */
const REMEMBERED = [
  'concurrency',
  'perHost',
  'rate',
  'giveUpAfter',
  'timeout',
  'maxBody',
  'proxies',
  'bodies',
  'header',
  'maxWait',
  'retries',
  'backoff',
  'maxBackoff',
  'jitter',
  'retryOn',
  'maxRetryAfter',
  'cookies',
  'http2',
] as const;

function rate(text: string): HostRate {
  try {
    return parseHostRate(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function bodies(text: string): string {
  try {
    parseBodiesOption(text);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return text;
}

/** Adds the run flags to `command`. */
export function addRunFlags(command: Command): Command {
  command
    .option(
      '--concurrency <n>',
      'requests in flight, all hosts together (default: 16)',
      integer(1, 10_000),
    )
    .option('--per-host <n>', 'requests in flight per host (default: 4)', integer(1, 10_000))
    .option(
      '--rate <rate>',
      "pacing per host: adaptive (find each host's limit from its 429s), none, or at most 10 or 10/s, 600/m, 3600/h (default: adaptive)",
      rate,
    )
    .option(
      '--give-up-after <duration>',
      'how long a line may be turned away by its host for rate limiting (429, 503 + Retry-After) before it fails as rate-limited; such answers do not spend --retries (default: 6h)',
      parsePositiveDuration,
    )
    .option(
      '--proxies <file>',
      'send through the proxies listed in this file (one URL a line), rotated: a proxy answering 403 or 429 is benched and the request moves on through another',
    )
    .option(
      '--bodies <where>',
      'where response bodies go: db (the journal), none (counted, dropped) or dir:PATH (one file per line) (default: db)',
      bodies,
    )
    .option(
      '--max-body <size>',
      'the largest response body accepted, e.g. 10MB or 1GiB (kB, MB, GB: powers of 1000; KiB, MiB, GiB: of 1024); a larger one fails its line as body-too-large, reading no more than that (default: 100MiB with --bodies db, at most 900MB; no limit with none or dir:)',
      parseSize,
    )
    .option(
      '-H, --header <header>',
      "a header for every request, 'Name: value' (repeatable)",
      (value: string, previous: string[] | undefined) => {
        parseHeader(value);
        return collect(value, previous);
      },
    )
    .option(
      '--max-wait <duration>',
      'stop (exit 11) instead of waiting longer than this for lines scheduled later (default: wait)',
      parseDuration,
    )
    .option(
      '--progress-interval <duration>',
      'how often to print a progress line when stderr is not a terminal (default: 2s)',
      parseDuration,
    )
    .option(
      '--cookies',
      "keep cookies: one jar per host for the run, kept in the journal (a resume keeps the sessions); off by default, as lines run in parallel and in any order, so one line's cookie would change another's result",
    )
    .option(
      '--http2',
      'offer HTTP/2 to https hosts (ALPN h2; HTTP/1.1 with a host that does not speak it)',
    )
    .option('-q, --quiet', 'no progress output')
    .option('-v, --verbose', 'print every retry to stderr')
    .option('--json', 'print the summary as JSON on stdout');
  addSecretHeaderFlag(command);
  addMetricsFlag(command);
  addTimeoutFlag(command, '10m');
  addRetryFlags(command, { retries: 5, maxRetryAfter: '24h' });
  return command;
}

/** The flags to store in the journal. */
export function rememberedFlags(flags: RunFlags): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of REMEMBERED) if (flags[key] !== undefined) out[key] = flags[key];
  return out;
}

/** `flags` over the ones remembered in the journal. */
export function withRemembered(flags: RunFlags, stored: string | undefined): RunFlags {
  if (!stored) return flags;
  let remembered: Record<string, unknown>;
  try {
    remembered = JSON.parse(stored) as Record<string, unknown>;
  } catch {
    return flags;
  }
  const merged: Record<string, unknown> = {};
  for (const key of REMEMBERED) if (remembered[key] !== undefined) merged[key] = remembered[key];
  for (const [key, value] of Object.entries(flags)) if (value !== undefined) merged[key] = value;
  return merged as RunFlags;
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

/**
 * The command line that was run, for "resume with" hints: URL credentials and the values of
 * secret headers are shown as `***`, with a note to give them again.
 */
export function thisCommandLine(): string {
  const args = process.argv.slice(2);
  const shown = redactedArgs(args);
  const line = ['dogged', ...shown].map(shellQuote).join(' ');
  return shown.some((arg, i) => arg !== args[i])
    ? `${line}\n  (secrets are shown as ***: give them again)`
    : line;
}

/** The options of a distributed batch, from the same flags. */
function distributedOptions(
  target: Extract<BatchTarget, { kind: 'distributed' }>,
  input: BatchInput | undefined,
  flags: RunFlags,
): DistributedBatchOptions {
  const policy = retryFlags(flags, { retries: 5 });
  const bodies = flags.bodies ? parseBodiesOption(flags.bodies) : 'db';
  if (typeof bodies === 'object')
    throw new TypeError(
      '--bodies must be db or none with --queue: the store keeps the bodies (dir: is local to one machine)',
    );
  return {
    queue: target.queue,
    store: target.store,
    job: target.job,
    ...(input !== undefined && { input }),
    ...(target.enqueueOnly && { enqueueOnly: true }),
    ...(flags.concurrency !== undefined && { concurrency: flags.concurrency }),
    ...(flags.perHost !== undefined && { perHost: flags.perHost }),
    ...(flags.rate !== undefined && { rate: flags.rate }),
    ...(flags.giveUpAfter !== undefined && { giveUpAfter: flags.giveUpAfter }),
    retry: retrySpecOf(policy),
    ...(policy.maxRetryAfter !== undefined && { maxRetryAfter: policy.maxRetryAfter }),
    ...(flags.timeout && { timeout: flags.timeout }),
    ...(flags.maxBody !== undefined && { maxBodySize: flags.maxBody }),
    ...(flags.header && { headers: headersFrom(flags.header) }),
    bodies,
    ...(flags.maxWait !== undefined && { maxWait: flags.maxWait }),
    ...(flags.retryBudget === false && { budget: false }),
    ...(flags.lockDuration !== undefined && { lockDurationMs: flags.lockDuration }),
    ...(flags.chunkSize !== undefined && { chunkSize: flags.chunkSize }),
    ...(flags.seed !== undefined && { seed: flags.seed }),
    ...(flags.cookies && { cookies: true }),
    ...(flags.http2 && { http2: true }),
  };
}

/** Runs a batch from CLI flags; resolves with the exit code. */
export async function runFromFlags(
  target: BatchTarget,
  input: BatchInput | undefined,
  flags: RunFlags,
  commandName: string,
): Promise<number> {
  const title = target.kind === 'local' ? target.db : `job ${target.job}`;
  const { runBatch } = await import('../batch/runner.js');
  const { formatSummary } = await import('../batch/summary-format.js');
  const policy = retryFlags(flags, { retries: 5 });
  const { maxRetryAfter, ...retry } = policyOptions(policy);
  // Remembered flags (retry-failed) were not on the command line: their secrets count too.
  for (const [name, value] of Object.entries(headersFrom(flags.header)))
    redactor.addHeader(name, value);
  if (target.kind === 'distributed')
    for (const url of [target.queue, target.store]) redactor.addUrl(url);
  let proxies: string[] | undefined;
  try {
    proxies = flags.proxies ? readProxyFile(flags.proxies) : undefined;
  } catch (error) {
    printError(commandName, error);
    return EXIT.usage;
  }
  const view = createProgressView({
    ...(flags.quiet !== undefined && { quiet: flags.quiet }),
    intervalMs: flags.progressInterval ?? 2000,
  });
  /** Every line printed above the progress goes through the redactor. */
  const log = (line: string): void => view.log(redacted(line));
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      view.stop();
      process.stderr.write(
        `\ndogged ${commandName}: ${signal} again, stopping now; every outcome so far is in the journal, the lines in flight will be fetched again on resume. Resume with:\n  ${thisCommandLine()}\n`,
      );
      process.exit(EXIT.interrupted);
    }
    log(
      `dogged ${commandName}: ${signal}: stopping; letting the requests in flight finish (press Ctrl-C again to stop at once)`,
    );
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const onRetry = (e: BatchRetryEvent): void =>
    log(
      e.held
        ? `${e.method} ${e.url} (line ${e.line}) held by its host: ${e.message}; again in ${formatDuration(e.delayMs)} (${e.delaySource}; no retry spent)`
        : `${e.method} ${e.url} (line ${e.line}) attempt ${e.attempt}${Number.isFinite(e.maxAttempts) ? `/${e.maxAttempts}` : ''} failed: ${e.message}; retry in ${formatDuration(e.delayMs)} (${e.delaySource})`,
    );
  let distributed: DistributedBatchOptions | undefined;
  try {
    distributed =
      target.kind === 'distributed' ? distributedOptions(target, input, flags) : undefined;
  } catch (error) {
    view.stop();
    printError(commandName, error);
    return EXIT.usage;
  }
  const local: BatchOptions = {
    db: target.kind === 'local' ? target.db : '',
    ...(input !== undefined && { input }),
    ...(flags.concurrency !== undefined && { concurrency: flags.concurrency }),
    ...(flags.perHost !== undefined && { perHost: flags.perHost }),
    ...(flags.rate !== undefined && { rate: flags.rate }),
    ...(flags.giveUpAfter !== undefined && { giveUpAfter: flags.giveUpAfter }),
    retry,
    ...(maxRetryAfter !== undefined && { maxRetryAfter }),
    ...(flags.timeout && { timeout: flags.timeout }),
    ...(flags.maxBody !== undefined && { maxBodySize: flags.maxBody }),
    ...(flags.header && { headers: headersFrom(flags.header) }),
    ...(flags.bodies && { bodies: parseBodiesOption(flags.bodies) }),
    ...(flags.maxWait !== undefined && { maxWait: flags.maxWait }),
    ...(proxies && { proxies }),
    ...(flags.cookies && { cookies: true }),
    ...(flags.http2 && { http2: true }),
    signal: controller.signal,
    meta: { cli_options: JSON.stringify(rememberedFlags(flags)) },
    progressIntervalMs: 125,
    onProgress: (p) => view.update(p),
    ...(flags.verbose && { onRetry }),
  };
  let result: BatchResult;
  const metrics = await startMetricsFlag(flags, commandName).catch((error: unknown) => {
    printError(commandName, error);
    return null;
  });
  if (metrics === null) {
    view.stop();
    return EXIT.usage;
  }
  const run: typeof runBatch = metrics
    ? (o) => runBatch(metrics.observeBatch(o, target.kind === 'local' ? undefined : target.job))
    : runBatch;
  try {
    result = await run(
      distributed
        ? {
            ...distributed,
            signal: controller.signal,
            ...(proxies && { proxies }),
            progressIntervalMs: 250,
            onProgress: (p) => view.update(p),
            ...(flags.verbose && { onRetry }),
          }
        : local,
    );
  } catch (error) {
    view.stop();
    printError(commandName, error);
    return exitCodeForCommand(error);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await metrics?.close();
  }
  view.stop();
  if (target.kind === 'distributed' && target.enqueueOnly) {
    const c = result.counts;
    process.stdout.write(
      redacted(
        flags.json
          ? `${JSON.stringify({ end: 'enqueued', job: target.job, total: result.summary.total, counts: c })}\n`
          : `job ${target.job}: ${result.summary.total.toLocaleString('en-US')} lines recorded, ${c.pending.toLocaleString('en-US')} waiting for workers (dogged worker --queue ${shownUrl(target.queue)} --store ...)\n`,
      ),
    );
    return EXIT.ok;
  }
  process.stdout.write(
    redacted(
      flags.json
        ? `${JSON.stringify({ end: result.end, elapsedMs: Math.round(result.elapsedMs), attemptsThisRun: result.attempts, recovered: result.recovered, ...result.summary })}\n`
        : formatSummary(result.summary, { title, elapsedMs: result.elapsedMs }),
    ),
  );
  const left = result.counts.pending + result.counts.in_flight;
  if (result.summary.total === 0)
    process.stderr.write(
      `dogged ${commandName}: the input had no URLs (no line to fetch); nothing was done\n`,
    );
  if (result.end === 'interrupted') {
    process.stderr.write(
      `dogged ${commandName}: interrupted with ${left.toLocaleString('en-US')} lines left; nothing is lost. Resume with:\n  ${thisCommandLine()}\n`,
    );
    return EXIT.interrupted;
  }
  if (result.end === 'deferred') {
    const at = result.nextDueAt;
    process.stderr.write(
      `dogged ${commandName}: ${left.toLocaleString('en-US')} lines are scheduled later${at ? ` (the next at ${new Date(at).toISOString()}, in ${formatDuration(at - Date.now())})` : ''}, beyond --max-wait. Run again then:\n  ${thisCommandLine()}\n`,
    );
    return EXIT.batchDeferred;
  }
  return result.counts.failed + result.counts.invalid > 0 ? EXIT.batchFailures : EXIT.ok;
}
