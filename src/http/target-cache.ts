/**
 * A Session's URLs as requests gave them, parsed and checked once: a URL string given again is
 * looked up instead of parsed again. Bounded: when it holds {@link TARGET_CACHE_SIZE} entries
 * it is emptied.
 *
 * Only worth it while URLs repeat. When they do not (a scraper or a batch run, every URL new),
 * a lookup and an insertion per request cost more than the parse they never save: hashing each
 * new string, and entries that live through a few young-generation collections (this policy
 * against the plain cache, in one process, switched in blocks of four rounds: 0.24–0.57 µs a
 * request of a Session loop over unique URLs, 0.25–0.65 µs a line of a batch run; see
 * docs/performance.md, the runs of 2026-12-06 12:35–13:55 UTC). So each time the cache fills,
 * it looks at its hits since it was last emptied: fewer than {@link MIN_HITS} (under a fifth of
 * the lookups), and it stands aside for the next {@link BYPASS_LOOKUPS} lookups, which neither
 * look nor insert, then starts again empty. A workload whose URLs repeat keeps it; one that changes over to repeating
 * URLs gets it back within those lookups.
 */

/** Entries at most; the cache is emptied when full. */
export const TARGET_CACHE_SIZE = 256;
/** Hits between two emptyings below which the cache stands aside (see {@link TargetCache}). */
export const MIN_HITS = 64;
/** Lookups the cache stands aside for, once its hits fell short. */
export const BYPASS_LOOKUPS = 4096;

export class TargetCache<T> {
  readonly #entries = new Map<string, T>();
  /** Hits since the cache was last emptied. */
  #hits = 0;
  /** Lookups left while the cache stands aside (0: in use). */
  #bypass = 0;

  /**
   * The entry for `key`, or undefined: the caller then parses the URL and {@link set}s it. A
   * lookup while the cache stands aside looks at nothing, and counts towards its return.
   */
  get(key: string): T | undefined {
    if (this.#bypass > 0) {
      this.#bypass--;
      return undefined;
    }
    const known = this.#entries.get(key);
    if (known !== undefined) this.#hits++;
    return known;
  }

  /** Keeps `value` for `key` (nothing while the cache stands aside). */
  set(key: string, value: T): void {
    if (this.#bypass > 0) return;
    const entries = this.#entries;
    if (entries.size >= TARGET_CACHE_SIZE) {
      if (this.#hits < MIN_HITS) this.#bypass = BYPASS_LOOKUPS;
      entries.clear();
      this.#hits = 0;
      if (this.#bypass > 0) return;
    }
    entries.set(key, value);
  }

  /** True while the cache stands aside (for tests and diagnostics). */
  get bypassed(): boolean {
    return this.#bypass > 0;
  }

  /** Entries held. */
  get size(): number {
    return this.#entries.size;
  }
}
