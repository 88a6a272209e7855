import type { Redis } from 'ioredis';
import type { JobKeys } from './keys.js';

/**
 * Takes back the "finished as failed" count of lines that `retry-failed` put back to pending:
 * clears each line's bit in the finished bitmap and, only if it was set, decrements `failed`
 * and the line's `h:<host>:failed` in the stats hash. A line counted again when it finishes
 * (the bitmap's bit is clear again) then counts once, as done or failed. Idempotent: a line
 * whose bit is already clear is left alone, so running it twice takes nothing back twice.
 * ARGV: line, host ('' for none), line, host...
 */
const UNCOUNT_FAILED = `
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('GETBIT', KEYS[1], ARGV[i]) == 1 then
    redis.call('SETBIT', KEYS[1], ARGV[i], 0)
    redis.call('HINCRBY', KEYS[2], 'failed', -1)
    if ARGV[i + 1] ~= '' then redis.call('HINCRBY', KEYS[2], 'h:' .. ARGV[i + 1] .. ':failed', -1) end
    n = n + 1
  end
end
return n`;

/** Lines per script call: keeps each call short (Redis runs a script alone). */
const CHUNK = 1000;

interface UncountClient {
  doggedUncountFailed(finished: string, stats: string, ...args: string[]): Promise<number>;
}

/**
 * Uncounts failed lines that are pending again (see the script above) from a job's counters in
 * Redis, so `dogged status --queue` and the progress count them as left, not failed. Resolves
 * with how many were counted as finished (and are not any more).
 * @example await uncountFailed(redis, jobKeys('nightly'), [{ line: 3, host: 'example.com:443' }])
 */
export async function uncountFailed(
  redis: Redis,
  keys: Pick<JobKeys, 'finished' | 'stats'>,
  lines: readonly { readonly line: number; readonly host: string | null }[],
): Promise<number> {
  if (!('doggedUncountFailed' in redis))
    redis.defineCommand('doggedUncountFailed', { numberOfKeys: 2, lua: UNCOUNT_FAILED });
  const client = redis as unknown as UncountClient;
  let uncounted = 0;
  for (let i = 0; i < lines.length; i += CHUNK) {
    const args = lines.slice(i, i + CHUNK).flatMap((l) => [String(l.line), l.host ?? '']);
    uncounted += await client.doggedUncountFailed(keys.finished, keys.stats, ...args);
  }
  return uncounted;
}
