/**
 * A worker's concurrency: at most `size` lines in flight at once, whatever their chunk, handed
 * out in the order asked (a first-in, first-out semaphore).
 */
export class LineSlots {
  readonly #size: number;
  #used = 0;
  readonly #waiters: (() => void)[] = [];

  constructor(size: number) {
    this.#size = size;
  }

  /** Takes a slot if one is free and nobody waits for one: whether it did (no promise). */
  tryAcquire(): boolean {
    if (this.#used >= this.#size || this.#waiters.length > 0) return false;
    this.#used++;
    return true;
  }

  /** Resolves once a slot is this caller's. */
  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** Gives a slot back (to the longest waiter first). */
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#used = Math.max(0, this.#used - 1);
  }
}

/**
 * The lines of each host take turns, in order: only the line whose turn it is takes a worker slot
 * and waits on the host's fleet-wide limits, so the other lines of a busy host hold nothing
 * (neither a worker slot other hosts could use, nor a host slot other workers could use).
 */
export class HostTurns {
  /** Per host with a turn taken: the lines waiting for theirs, in order. */
  readonly #waiting = new Map<string, (() => void)[]>();

  /**
   * This caller's turn at `host`: at once (a function, no promise) when nobody holds it, else
   * when the lines before it passed it on. Call the function to pass the turn on (once).
   */
  take(host: string): (() => void) | Promise<() => void> {
    const queue = this.#waiting.get(host);
    if (!queue) {
      this.#waiting.set(host, []);
      return this.#passer(host);
    }
    return new Promise<() => void>((resolve) => queue.push(() => resolve(this.#passer(host))));
  }

  #passer(host: string): () => void {
    let passed = false;
    return () => {
      if (passed) return;
      passed = true;
      const queue = this.#waiting.get(host);
      const next = queue?.shift();
      if (next) next();
      else this.#waiting.delete(host);
    };
  }
}
