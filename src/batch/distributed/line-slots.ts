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

  /** Resolves once a slot is this caller's. */
  acquire(): Promise<void> {
    if (this.#used < this.#size && this.#waiters.length === 0) {
      this.#used++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  /** Gives a slot back (to the longest waiter first). */
  release(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#used = Math.max(0, this.#used - 1);
  }
}
