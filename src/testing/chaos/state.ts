import { createHash } from 'node:crypto';
import { ArrivalLog } from './arrival-log.js';
import { LruMap } from './lru.js';
import { mulberry32 } from './random.js';
import { SlidingWindowCounter } from './sliding-window.js';
import { TokenBucket } from './token-bucket.js';

/** A response the idempotency store replays for a repeated `Idempotency-Key`. */
export interface StoredResponse {
  readonly fingerprint: string;
  readonly status: number;
  readonly body: string;
}

/**
 * Keys (and clients) the chaos server remembers per endpoint family (`/flaky` counters,
 * `/fail-rate` streams, `/ban` counters, `/rate-limit` buckets, cut keys of `/bytes`,
 * `/idempotent` responses); past it, the least recently used key of that family is forgotten
 * (as if it had never been seen).
 */
export const MAX_STATE_KEYS = 10_000;

/**
 * Keys longer than this many characters are remembered by their SHA-256 (`sha256:<hex>`, 71
 * characters), so a client sending megabyte keys cannot grow the server's memory; two distinct
 * long keys stay distinct.
 */
export const MAX_STATE_KEY_LENGTH = 256;

/** `key` as the server stores it: as it is, or `sha256:<hex>` when longer than 256 characters. */
export function stateKey(key: string): string {
  if (key.length <= MAX_STATE_KEY_LENGTH) return key;
  return `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/** How many keys each family holds now (see {@link MAX_STATE_KEYS}). */
export interface ChaosStateSizes {
  readonly flaky: number;
  readonly failRate: number;
  readonly bans: number;
  readonly buckets: number;
  readonly cuts: number;
  readonly idempotent: number;
  /** Characters of every key held, all families together. */
  readonly keyChars: number;
}

/**
 * Everything the chaos server remembers between requests. It is shared by both listeners and
 * emptied by `/__reset` (or `server.reset()`). Bounded: at most {@link MAX_STATE_KEYS} keys per
 * endpoint family (least recently used dropped), each at most {@link MAX_STATE_KEY_LENGTH}
 * characters (longer ones are hashed), and the arrival log's `logLimit` entries.
 */
export class ChaosState {
  readonly log: ArrivalLog;
  readonly #flakyCounts = new LruMap<string, number>(MAX_STATE_KEYS);
  readonly #failRateStreams = new LruMap<string, { next: () => number; draws: number }>(
    MAX_STATE_KEYS,
  );
  readonly #bans = new LruMap<string, SlidingWindowCounter>(MAX_STATE_KEYS);
  readonly #buckets = new LruMap<string, TokenBucket>(MAX_STATE_KEYS);
  readonly #cutKeys = new LruMap<string, true>(MAX_STATE_KEYS);
  readonly #idempotent = new LruMap<string, StoredResponse>(MAX_STATE_KEYS);
  #processed = 0;

  constructor(logLimit: number) {
    this.log = new ArrivalLog(logLimit);
  }

  /** Counts one more request for a `/flaky` key and returns its 1-based number. */
  nextFlakyAttempt(key: string): number {
    const id = stateKey(key);
    const attempt = (this.#flakyCounts.get(id) ?? 0) + 1;
    this.#flakyCounts.set(id, attempt);
    return attempt;
  }

  /** The next draw of the seeded stream `(seed, key)` and its 1-based index. */
  nextDraw(seed: number, key: string): { value: number; draw: number } {
    const id = `${seed}\u0000${stateKey(key)}`;
    let stream = this.#failRateStreams.get(id);
    if (!stream) {
      stream = { next: mulberry32(seed), draws: 0 };
      this.#failRateStreams.set(id, stream);
    }
    stream.draws += 1;
    return { value: stream.next(), draw: stream.draws };
  }

  /** The ban counter of one client for one `(after, window)` configuration. */
  banCounter(client: string, after: number, windowMs: number): SlidingWindowCounter {
    const id = `${stateKey(client)}\u0000${after}\u0000${windowMs}`;
    let counter = this.#bans.get(id);
    if (!counter) {
      counter = new SlidingWindowCounter(windowMs);
      this.#bans.set(id, counter);
    }
    return counter;
  }

  /** The token bucket of one client for one `(rps, burst)` configuration. */
  bucket(client: string, rps: number, burst: number, now: number): TokenBucket {
    const id = `${stateKey(client)}\u0000${rps}\u0000${burst}`;
    let bucket = this.#buckets.get(id);
    if (!bucket) {
      bucket = new TokenBucket(rps, burst, now);
      this.#buckets.set(id, bucket);
    }
    return bucket;
  }

  /** True the first time `key` asks to be cut, false afterwards. */
  claimCut(key: string): boolean {
    const id = stateKey(key);
    if (this.#cutKeys.get(id)) return false;
    this.#cutKeys.set(id, true);
    return true;
  }

  storedResponse(key: string): StoredResponse | undefined {
    return this.#idempotent.get(stateKey(key));
  }

  /** Counts one processed `/idempotent` request and returns its 1-based sequence number. */
  process(): number {
    return ++this.#processed;
  }

  store(key: string, response: StoredResponse): void {
    this.#idempotent.set(stateKey(key), response);
  }

  get processedCount(): number {
    return this.#processed;
  }

  get idempotencyKeyCount(): number {
    return this.#idempotent.size;
  }

  /** How many keys each family holds, and their characters: what bounds the state's memory. */
  sizes(): ChaosStateSizes {
    const maps = [
      this.#flakyCounts,
      this.#failRateStreams,
      this.#bans,
      this.#buckets,
      this.#cutKeys,
      this.#idempotent,
    ];
    let keyChars = 0;
    for (const map of maps) for (const key of map.keys()) keyChars += key.length;
    return {
      flaky: this.#flakyCounts.size,
      failRate: this.#failRateStreams.size,
      bans: this.#bans.size,
      buckets: this.#buckets.size,
      cuts: this.#cutKeys.size,
      idempotent: this.#idempotent.size,
      keyChars,
    };
  }

  /** Forgets every counter, ban, bucket, stored response and arrival. */
  reset(): void {
    this.#flakyCounts.clear();
    this.#failRateStreams.clear();
    this.#bans.clear();
    this.#buckets.clear();
    this.#cutKeys.clear();
    this.#idempotent.clear();
    this.#processed = 0;
    this.log.clear();
  }
}
