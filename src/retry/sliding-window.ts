import type { Clock } from './clock.js';

/**
 * Counters over a sliding time window, kept in a fixed number of slices (Finagle's
 * `WindowedAdder`, cockatiel's sampling buckets): memory stays constant however much traffic
 * passes, and the arithmetic is exact under a fake clock.
 *
 * Time is cut into slices of `windowMs / slices`, counted from the moment the counters were
 * created. A count added during slice `k` is part of the sums while the current slice is
 * `k .. k + slices - 1`, then drops out at once: it lives between `windowMs - windowMs / slices`
 * and `windowMs`. With the usual 10 slices and a 10 s window, a count lives 9 to 10 s.
 */
export class SlidingCounters<Key extends string> {
  readonly #clock: Clock;
  readonly #sliceMs: number;
  readonly #slices: number;
  readonly #origin: number;
  /** Slice index of the newest slot, relative to `#origin`. */
  #index = 0;
  readonly #counts: Map<Key, number[]>;

  constructor(keys: readonly Key[], windowMs: number, clock: Clock, slices = 10) {
    this.#clock = clock;
    this.#slices = slices;
    this.#sliceMs = windowMs / slices;
    this.#origin = clock.now();
    this.#counts = new Map(keys.map((key) => [key, new Array<number>(slices).fill(0)]));
  }

  /** Adds `n` to `key` in the current slice. */
  add(key: Key, n = 1): void {
    const row = this.#row(key);
    const slot = this.#advance();
    row[slot] = (row[slot] ?? 0) + n;
  }

  /** The sum of `key` over the window. */
  sum(key: Key): number {
    this.#advance();
    let total = 0;
    for (const count of this.#row(key)) total += count;
    return total;
  }

  /**
   * Takes back up to `n` from `key`, newest slices first (the count most likely to belong to
   * what is being taken back); returns how much was taken. Never makes a slice negative.
   */
  takeBack(key: Key, n = 1): number {
    const row = this.#row(key);
    const newest = this.#advance();
    let left = n;
    // Stryker disable next-line EqualityOperator,ConditionalExpression: equivalent: a pass with left === 0 takes nothing, and one more pass (age === slices) finds the newest slice already emptied (`age >= slices` and `left <= 0` are killed)
    for (let age = 0; age < this.#slices && left > 0; age++) {
      const slot = (newest - age + this.#slices) % this.#slices;
      const count = row[slot] ?? 0;
      const taken = Math.min(count, left);
      row[slot] = count - taken;
      left -= taken;
    }
    return n - left;
  }

  /** Forgets every count. */
  clear(): void {
    for (const row of this.#counts.values()) row.fill(0);
  }

  #row(key: Key): number[] {
    const row = this.#counts.get(key);
    if (!row) throw new Error(`SlidingCounters: unknown key ${JSON.stringify(key)}`);
    return row;
  }

  /** Moves to the current slice, zeroing the slots that fell out of the window; its slot. */
  #advance(): number {
    const current = Math.floor((this.#clock.now() - this.#origin) / this.#sliceMs);
    // A clock that goes backwards (it should not) keeps the newest slice.
    // Stryker disable next-line EqualityOperator: `>=` is equivalent: at current === index there are no slots to zero and the index stays (`<=` is killed)
    if (current > this.#index) {
      const steps = Math.min(current - this.#index, this.#slices);
      for (let step = 1; step <= steps; step++) {
        const slot = (this.#index + step) % this.#slices;
        for (const row of this.#counts.values()) row[slot] = 0;
      }
      this.#index = current;
    }
    return this.#index % this.#slices;
  }
}
