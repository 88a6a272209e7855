/** Which of the two listeners a request arrived on. */
export type ChaosListenerName = 'primary' | 'secondary';

/** One request as the chaos server saw it arrive (before it was answered). */
export interface ChaosArrival {
  /** 1-based arrival number since start or the last reset. */
  readonly seq: number;
  /** Monotonic milliseconds since the server started (its `clock`). */
  readonly timeMs: number;
  readonly method: string;
  /** The decoded path, without the query string. */
  readonly path: string;
  /** The request target exactly as sent, query string included. */
  readonly target: string;
  /** The socket's remote address: the "client IP" that bans and rate limits count. */
  readonly clientAddress: string;
  readonly clientPort: number;
  /** Which TCP connection carried it (1-based per server): equal ids mean keep-alive reuse. */
  readonly connectionId: number;
  readonly listener: ChaosListenerName;
  /**
   * The request's key: the `:key` of `/flaky/:key`, else the `key` query parameter, else the
   * `Idempotency-Key` header; `null` when there is none.
   */
  readonly key: string | null;
}

/** A bounded, in-order record of arrivals; the oldest are dropped past `limit`. */
export class ArrivalLog {
  #entries: ChaosArrival[] = [];
  #seq = 0;
  #dropped = 0;

  constructor(readonly limit: number) {}

  record(arrival: Omit<ChaosArrival, 'seq'>): ChaosArrival {
    const entry = Object.freeze({ seq: ++this.#seq, ...arrival });
    this.#entries.push(entry);
    const excess = this.#entries.length - this.limit;
    if (excess > 0) {
      this.#entries.splice(0, excess);
      this.#dropped += excess;
    }
    return entry;
  }

  /** A copy of the entries still held, oldest first. */
  entries(): ChaosArrival[] {
    return [...this.#entries];
  }

  /** How many entries were dropped because the log was full. */
  get dropped(): number {
    return this.#dropped;
  }

  clear(): void {
    this.#entries = [];
    this.#seq = 0;
    this.#dropped = 0;
  }
}
