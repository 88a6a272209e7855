import type { Redis } from 'ioredis';
import type { JobKeys } from './keys.js';

/**
 * Counts lines as added, each once: sets its bit in the `added` bitmap and, only if it was clear,
 * increments `lines` (and `h:<host>:lines`); an invalid line is counted as finished too, once.
 * ARGV: the count, then per line its number, its host ('' for none) and '1' when invalid. A line
 * enqueued twice, or recounted, still counts once. (No library counts "once per id".)
 */
const COUNT_ADDED = `
local n = tonumber(ARGV[1])
local add = {}
for i = 0, n - 1 do
  local line = ARGV[2 + i * 3]
  local host = ARGV[3 + i * 3]
  if redis.call('SETBIT', KEYS[1], line, 1) == 0 then
    add['lines'] = (add['lines'] or 0) + 1
    if host ~= '' then
      local field = 'h:' .. host .. ':lines'
      add[field] = (add[field] or 0) + 1
    end
  end
  if ARGV[4 + i * 3] == '1' and redis.call('SETBIT', KEYS[2], line, 1) == 0 then
    add['invalid'] = (add['invalid'] or 0) + 1
  end
end
for field, count in pairs(add) do redis.call('HINCRBY', KEYS[3], field, count) end
return n`;

/**
 * Counts lines as finished, each once (its bit in the `finished` bitmap), in one call: ARGV is the count, then per line its
 * number, its state and its host ('' for none). Returns how many were counted now.
 */
const COUNT_FINISHED = `
local counted = 0
local n = tonumber(ARGV[1])
local add = {}
for i = 0, n - 1 do
  local line = ARGV[2 + i * 3]
  local state = ARGV[3 + i * 3]
  local host = ARGV[4 + i * 3]
  if redis.call('SETBIT', KEYS[1], line, 1) == 0 then
    counted = counted + 1
    add[state] = (add[state] or 0) + 1
    if host ~= '' then
      local field = 'h:' .. host .. ':' .. state
      add[field] = (add[field] or 0) + 1
    end
  end
end
for field, count in pairs(add) do redis.call('HINCRBY', KEYS[2], field, count) end
if counted > 0 and KEYS[3] ~= '' then redis.call('INCRBY', KEYS[3], counted); redis.call('EXPIRE', KEYS[3], 120) end
return counted`;

/** The counting scripts, as ioredis commands. */
interface CountOnceClient {
  doggedCountAdded: (
    added: string,
    finished: string,
    stats: string,
    ...args: (string | number)[]
  ) => Promise<number>;
  doggedCountFinished: (
    bitmap: string,
    stats: string,
    rateKey: string,
    ...args: (string | number)[]
  ) => Promise<number>;
}

/** Adds the `doggedCountAdded` and `doggedCountFinished` commands to a client (once). */
export function defineCountOnce(redis: Redis): void {
  if ('doggedCountAdded' in redis) return;
  redis.defineCommand('doggedCountAdded', { numberOfKeys: 3, lua: COUNT_ADDED });
  redis.defineCommand('doggedCountFinished', { numberOfKeys: 3, lua: COUNT_FINISHED });
}

/** A line added, to count. */
export interface AddedLine {
  readonly line: number;
  readonly host: string | null;
  readonly state: 'pending' | 'invalid';
}

/** A line that finished, to count. */
export interface FinishedLine {
  readonly line: number;
  readonly host: string | null;
  readonly state: 'done' | 'failed';
}

/** A job's counters as the stats hash holds them. */
export interface JobStats {
  readonly lines: number;
  readonly done: number;
  readonly failed: number;
  readonly invalid: number;
  readonly inputComplete: boolean;
  /** Per host: lines, done, failed. */
  readonly hosts: ReadonlyMap<string, { lines: number; done: number; failed: number }>;
}

/** The counters of one job in Redis: lines added and finished, per state and host, per second. */
export class JobCounters {
  readonly #redis: Redis;
  readonly #keys: JobKeys;

  constructor(redis: Redis, keys: JobKeys) {
    defineCountOnce(redis);
    this.#redis = redis;
    this.#keys = keys;
  }

  #rateKey(at: number): string {
    return `${this.#keys.rate}:${Math.floor(at / 1000)}`;
  }

  /** Counts lines as added (and invalid ones as finished), each once, in one round trip. */
  async addedMany(lines: readonly AddedLine[]): Promise<void> {
    if (!lines.length) return;
    const k = this.#keys;
    const args: (string | number)[] = [lines.length];
    for (const l of lines) args.push(l.line, l.host ?? '', l.state === 'invalid' ? '1' : '0');
    await (this.#redis as unknown as CountOnceClient).doggedCountAdded(
      k.added,
      k.finished,
      k.stats,
      ...args,
    );
  }

  /**
   * Counts lines as finished, each once, in one round trip (and in the finish rate unless
   * `rate: false`: a recount is not throughput).
   */
  async finishedMany(
    lines: readonly FinishedLine[],
    options: { rate?: boolean } = {},
  ): Promise<void> {
    if (!lines.length) return;
    const k = this.#keys;
    const args: (string | number)[] = [lines.length];
    for (const l of lines) args.push(l.line, l.state, l.host ?? '');
    await (this.#redis as unknown as CountOnceClient).doggedCountFinished(
      k.finished,
      k.stats,
      options.rate === false ? '' : this.#rateKey(Date.now()),
      ...args,
    );
  }

  async setInputComplete(complete: boolean): Promise<void> {
    await this.#redis.hset(this.#keys.stats, 'input_complete', complete ? '1' : '0');
  }

  /** The counters now. */
  async read(): Promise<JobStats> {
    const raw = await this.#redis.hgetall(this.#keys.stats);
    const num = (name: string): number => Number(raw[name] ?? 0);
    const hosts = new Map<string, { lines: number; done: number; failed: number }>();
    for (const [name, value] of Object.entries(raw)) {
      if (!name.startsWith('h:')) continue;
      const cut = name.lastIndexOf(':');
      const host = name.slice(2, cut);
      const field = name.slice(cut + 1) as 'lines' | 'done' | 'failed';
      const entry = hosts.get(host) ?? { lines: 0, done: 0, failed: 0 };
      if (field in entry) entry[field] = Number(value);
      hosts.set(host, entry);
    }
    return {
      lines: num('lines'),
      done: num('done'),
      failed: num('failed'),
      invalid: num('invalid'),
      inputComplete: raw.input_complete === '1',
      hosts,
    };
  }

  /**
   * Lines in flight and waiting for a retry in the workers, as their last heartbeats (every few
   * seconds) said.
   */
  async load(): Promise<{ inFlight: number; retrying: number }> {
    const beats = await this.#redis.hvals(this.#keys.workers);
    const now = Date.now();
    let inFlight = 0;
    let retrying = 0;
    for (const text of beats) {
      const beat = JSON.parse(text) as { at?: number; inFlight?: number; retrying?: number };
      if (typeof beat.at !== 'number' || now - beat.at > 10_000) continue;
      inFlight += beat.inFlight ?? 0;
      retrying += beat.retrying ?? 0;
    }
    return { inFlight, retrying };
  }

  /** Lines finished per second over the last `seconds` whole seconds, fleet-wide. */
  async rate(seconds = 10): Promise<number> {
    const now = Math.floor(Date.now() / 1000);
    const keys = Array.from({ length: seconds }, (_, i) => `${this.#keys.rate}:${now - 1 - i}`);
    const values = await this.#redis.mget(...keys);
    return values.reduce((sum, v) => sum + Number(v ?? 0), 0) / seconds;
  }
}
