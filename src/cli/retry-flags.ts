import { type Command, InvalidArgumentError, Option } from 'commander';
import {
  policyOptionsFromSpec,
  type RetryJitter,
  type RetrySpec,
} from '../batch/distributed/job-config.js';
import type { RetryPolicyOptions } from '../http/policy.js';
import { seededRandom } from '../retry/random.js';
import { integer, parseDuration, parsePositiveDuration, parseTimeouts } from './parse.js';

/** The jitter styles `--jitter` accepts. */
export const JITTERS = [
  'full',
  'equal',
  'none',
  'urllib3',
] as const satisfies readonly RetryJitter[];
export type Jitter = (typeof JITTERS)[number];

/** What the retry flags parse to. */
export interface RetryFlags {
  retries: number;
  backoff: number;
  maxBackoff: number;
  jitter: Jitter;
  retryOn?: number[];
  maxRetryAfter?: number;
  seed?: number;
}

function statusList(text: string): number[] {
  const list = text.split(',').map((s) => Number(s.trim()));
  if (!list.length || list.some((n) => !Number.isInteger(n) || n < 100 || n > 599))
    throw new InvalidArgumentError(
      `must be HTTP statuses such as 429,503, got ${JSON.stringify(text)}`,
    );
  return list;
}

/**
 * Adds `--retries`, `--backoff`, `--max-backoff`, `--jitter`, `--retry-on`, `--seed` (and
 * optionally `--max-retry-after`) to `command`.
 */
export function addRetryFlags(
  command: Command,
  defaults: { retries: number; maxRetryAfter?: string },
): Command {
  command
    .option(
      '--retries <n>',
      `retries after the first attempt (0: none) (default: ${defaults.retries})`,
      integer(0, 1000),
    )
    .option('--backoff <duration>', 'the first backoff step (default: 500ms)', parseDuration)
    .option('--max-backoff <duration>', 'cap of each backoff delay (default: 30s)', parseDuration)
    .addOption(
      new Option(
        '--jitter <kind>',
        'backoff style: full, equal, none (plain exponential) or urllib3 (default: full)',
      ).choices(JITTERS),
    )
    .option(
      '--retry-on <statuses>',
      'statuses that are retried (default: 408,429,500,502,503,504)',
      statusList,
    )
    .option('--seed <n>', 'seed of the jitter, for reproducible waits', integer(0, 0xffff_ffff));
  if (defaults.maxRetryAfter !== undefined) {
    command.option(
      '--max-retry-after <duration>',
      `the longest Retry-After obeyed (default: ${defaults.maxRetryAfter})`,
      parsePositiveDuration,
    );
  }
  return command;
}

/** Adds `--timeout <connect[,read[,attempt]]>`; `attempt` defaults to `attemptDefault`. */
export function addTimeoutFlag(command: Command, attemptDefault: string): Command {
  return command.option(
    '--timeout <connect[,read[,attempt]]>',
    `timeouts of each attempt: to connect, for each silence while reading, and for the whole attempt (head and body), e.g. 5s, 5s,30s or 5s,30s,10m (default: 10s,30s,${attemptDefault})`,
    parseTimeouts,
  );
}

/** The parsed flags with their defaults. */
export function retryFlags(
  options: Partial<RetryFlags>,
  defaults: { retries: number },
): RetryFlags {
  return {
    retries: options.retries ?? defaults.retries,
    backoff: options.backoff ?? 500,
    maxBackoff: options.maxBackoff ?? 30_000,
    jitter: options.jitter ?? 'full',
    ...(options.retryOn && { retryOn: options.retryOn }),
    ...(options.maxRetryAfter !== undefined && { maxRetryAfter: options.maxRetryAfter }),
    ...(options.seed !== undefined && { seed: options.seed }),
  };
}

/** The RetryPolicy options the flags describe. */
export function policyOptions(flags: RetryFlags): RetryPolicyOptions {
  return {
    ...policyOptionsFromSpec(retrySpecOf(flags)),
    ...(flags.maxRetryAfter !== undefined && { maxRetryAfter: flags.maxRetryAfter }),
    ...(flags.seed !== undefined && { random: seededRandom(flags.seed) }),
  };
}

/** The retry flags as a {@link RetrySpec}: the policy as data, as a distributed job stores it. */
export function retrySpecOf(flags: RetryFlags): RetrySpec {
  return {
    total: flags.retries,
    jitter: flags.jitter,
    backoff: flags.backoff,
    maxBackoff: flags.maxBackoff,
    ...(flags.retryOn && { statusForcelist: flags.retryOn }),
  };
}
