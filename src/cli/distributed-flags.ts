/** The flags that point a command at the distributed backend: --queue, --store, --job. */
import type { Command } from 'commander';

/** What the flags parse to (undefined: not given). */
export interface DistributedFlags {
  queue?: string;
  store?: string;
  job?: string;
}

/** Adds `--queue`, `--store` and (optionally) `--job`. */
export function addDistributedFlags(
  command: Command,
  which: { job: boolean; store?: boolean },
): Command {
  command.option('--queue <url>', 'the Redis of a distributed batch: redis://HOST:PORT/DB');
  if (which.store !== false)
    command.option(
      '--store <url>',
      'the PostgreSQL of a distributed batch: postgres://USER@HOST:PORT/DB (?schema=NAME, default dogged)',
    );
  if (which.job) command.option('--job <name>', 'the name of a distributed batch');
  return command;
}

/**
 * The distributed target the flags give, or undefined when none of them is given. Throws when
 * only some are: `need` lists the ones the command requires.
 */
export function distributedTarget(
  flags: DistributedFlags,
  need: { jobRequired: boolean; storeRequired?: boolean; queueRequired?: boolean },
): { queue: string; store: string; job: string | undefined } | undefined {
  const given = flags.queue !== undefined || flags.store !== undefined || flags.job !== undefined;
  if (!given) return undefined;
  const missing: string[] = [];
  if (flags.queue === undefined && need.queueRequired !== false) missing.push('--queue');
  if (flags.store === undefined && need.storeRequired !== false) missing.push('--store');
  if (flags.job === undefined && need.jobRequired) missing.push('--job');
  if (missing.length) throw new Error(`a distributed batch needs ${missing.join(' and ')} too`);
  return { queue: flags.queue ?? '', store: flags.store ?? '', job: flags.job };
}
