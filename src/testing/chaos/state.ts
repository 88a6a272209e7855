import { ArrivalLog } from './arrival-log.js';
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
 * Everything the chaos server remembers between requests. It is shared by both listeners and
 * emptied by `/__reset` (or `server.reset()`).
 */
export class ChaosState {
  readonly log: ArrivalLog;
  readonly #flakyCounts = new Map<string, number>();
  readonly #failRateStreams = new Map<string, { next: () => number; draws: number }>();
  readonly #bans = new Map<string, SlidingWindowCounter>();
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #cutKeys = new Set<string>();
  readonly #idempotent = new Map<string, StoredResponse>();
  #processed = 0;

  constructor(logLimit: number) {
    this.log = new ArrivalLog(logLimit);
  }

  /** Counts one more request for a `/flaky` key and returns its 1-based number. */
  nextFlakyAttempt(key: string): number {
    const attempt = (this.#flakyCounts.get(key) ?? 0) + 1;
    this.#flakyCounts.set(key, attempt);
    return attempt;
  }

  /** The next draw of the seeded stream `(seed, key)` and its 1-based index. */
  nextDraw(seed: number, key: string): { value: number; draw: number } {
    const id = `${seed}\u0000${key}`;
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
    const id = `${client}\u0000${after}\u0000${windowMs}`;
    let counter = this.#bans.get(id);
    if (!counter) {
      counter = new SlidingWindowCounter(windowMs);
      this.#bans.set(id, counter);
    }
    return counter;
  }

  /** The token bucket of one client for one `(rps, burst)` configuration. */
  bucket(client: string, rps: number, burst: number, now: number): TokenBucket {
    const id = `${client}\u0000${rps}\u0000${burst}`;
    let bucket = this.#buckets.get(id);
    if (!bucket) {
      bucket = new TokenBucket(rps, burst, now);
      this.#buckets.set(id, bucket);
    }
    return bucket;
  }

  /** True the first time `key` asks to be cut, false afterwards. */
  claimCut(key: string): boolean {
    if (this.#cutKeys.has(key)) return false;
    this.#cutKeys.add(key);
    return true;
  }

  storedResponse(key: string): StoredResponse | undefined {
    return this.#idempotent.get(key);
  }

  /** Counts one processed `/idempotent` request and returns its 1-based sequence number. */
  process(): number {
    return ++this.#processed;
  }

  store(key: string, response: StoredResponse): void {
    this.#idempotent.set(key, response);
  }

  get processedCount(): number {
    return this.#processed;
  }

  get idempotencyKeyCount(): number {
    return this.#idempotent.size;
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
