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

/**
 * The lines of each host take turns, in order: only the line whose turn it is takes a worker slot
 * and waits on the host's fleet-wide limits, so the other lines of a busy host hold nothing
 * (neither a worker slot other hosts could use, nor a host slot other workers could use).
 */
export class HostTurns {
  readonly #tails = new Map<string, Promise<void>>();

  /** Resolves when it is this caller's turn at `host`; call the returned function to pass it on. */
  async take(host: string): Promise<() => void> {
    const before = this.#tails.get(host) ?? Promise.resolve();
    let pass = (): void => {};
    const mine = new Promise<void>((resolve) => {
      pass = resolve;
    });
    const tail = before.then(() => mine);
    this.#tails.set(host, tail);
    await before;
    let passed = false;
    return () => {
      if (passed) return;
      passed = true;
      pass();
      if (this.#tails.get(host) === tail) this.#tails.delete(host);
    };
  }
}
