/**
 * A Map that keeps at most `limit` entries: reading or writing an entry makes it the most
 * recently used; past the limit, the least recently used is dropped. What bounds the chaos
 * server's per-key state however many distinct keys clients send.
 */
export class LruMap<K, V> {
  readonly #map = new Map<K, V>();
  readonly limit: number;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new TypeError(`LruMap: limit must be a positive integer, got ${String(limit)}`);
    this.limit = limit;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The value of `key` (now the most recently used), or undefined. */
  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value === undefined) return undefined;
    this.#map.delete(key);
    this.#map.set(key, value);
    return value;
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  /** Sets `key` (now the most recently used); drops the least recently used past the limit. */
  set(key: K, value: V): this {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.limit) {
      const oldest = this.#map.keys().next().value as K;
      this.#map.delete(oldest);
    }
    return this;
  }

  keys(): IterableIterator<K> {
    return this.#map.keys();
  }

  clear(): void {
    this.#map.clear();
  }
}
