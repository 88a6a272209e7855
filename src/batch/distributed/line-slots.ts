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

/** One run's remaining items of one host, waiting in the host's queue of {@link LineStarts}. */
interface Cursor {
  readonly indexes: number[];
  next: number;
  /** The run failed: start nothing more of it. */
  stopped: boolean;
  readonly start: (index: number, release: () => void) => void;
}

/** A host's state in {@link LineStarts}. */
interface HostStarts {
  open: number;
  readonly cursors: Cursor[];
  starting: boolean;
}

/**
 * Starts a worker's lines, chunk after chunk, with at most `window` lines of each host open at
 * once, whatever their chunk: a line is open from its start until it calls its `release` (or
 * settles). A host's lines start in the order their chunks asked, each chunk's in its order.
 *
 * Without it, every line of every chunk under way would wait for its host's turn at once,
 * holding its state in memory meanwhile: young objects kept that long are copied by each
 * scavenge, then promoted. A line releases when its request is answered, when it waits for a
 * retry and when it ends, so lines waiting for a retry or for their outcome to be written never
 * keep another from starting.
 */
export class LineStarts {
  readonly #window: number;
  readonly #hosts = new Map<string, HostStarts>();

  constructor(window: number) {
    this.#window = window;
  }

  /**
   * Runs `run` for each item; resolves with the results in the items' order, or rejects with
   * the first error (and starts no more of these items).
   */
  run<T, R>(
    items: readonly T[],
    hostOf: (item: T) => string,
    run: (item: T, release: () => void) => Promise<R>,
  ): Promise<R[]> {
    const results = new Array<R>(items.length);
    if (items.length === 0) return Promise.resolve(results);
    return new Promise<R[]>((resolve, reject) => {
      let left = items.length;
      const cursors = new Map<string, Cursor>();
      const fail = (error: unknown): void => {
        for (const cursor of cursors.values()) cursor.stopped = true;
        reject(error);
      };
      const start = (index: number, release: () => void): void => {
        let running: Promise<R>;
        try {
          running = run(items[index] as T, release);
        } catch (error) {
          fail(error);
          release();
          return;
        }
        running.then(
          (result) => {
            results[index] = result;
            release();
            if (--left === 0) resolve(results);
          },
          (error: unknown) => {
            // Stopped first: its place goes to another run's line, not to this run's next.
            fail(error);
            release();
          },
        );
      };
      for (let i = 0; i < items.length; i++) {
        const host = hostOf(items[i] as T);
        let cursor = cursors.get(host);
        if (!cursor) {
          cursor = { indexes: [], next: 0, stopped: false, start };
          cursors.set(host, cursor);
        }
        cursor.indexes.push(i);
      }
      for (const [host, cursor] of cursors) {
        let h = this.#hosts.get(host);
        if (!h) {
          h = { open: 0, cursors: [], starting: false };
          this.#hosts.set(host, h);
        }
        h.cursors.push(cursor);
        this.#startMore(host, h);
      }
    });
  }

  // Not reentrant: a release inside `run` leaves the starting to the loop already under way.
  #startMore(host: string, h: HostStarts): void {
    if (h.starting) return;
    h.starting = true;
    while (h.open < this.#window) {
      const cursor = h.cursors[0];
      if (!cursor) break;
      if (cursor.stopped || cursor.next >= cursor.indexes.length) {
        h.cursors.shift();
        continue;
      }
      const index = cursor.indexes[cursor.next++] as number;
      h.open++;
      let released = false;
      cursor.start(index, () => {
        if (released) return;
        released = true;
        h.open--;
        this.#startMore(host, h);
      });
    }
    h.starting = false;
    if (h.open === 0 && h.cursors.length === 0) this.#hosts.delete(host);
  }
}
