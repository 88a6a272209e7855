/**
 * Per-host limits of a batch: at most `perHost` requests in flight to one `host:port`, and, with
 * a rate, starts spaced at least `1000 / rate` ms apart per host (a smooth pace rather than
 * bursts: what rate-limited APIs and polite crawlers want). Memory is bounded by the hosts that
 * are busy now, not by the hosts seen.
 */
export class HostLimits {
  readonly #perHost: number;
  readonly #intervalMs: number;
  readonly #inFlight = new Map<string, number>();
  readonly #nextStart = new Map<string, number>();

  /**
   * @param perHost - requests in flight per host.
   * @param ratePerSecond - request starts per second per host; undefined for no limit.
   */
  constructor(perHost: number, ratePerSecond: number | undefined) {
    this.#perHost = perHost;
    this.#intervalMs = ratePerSecond === undefined ? 0 : 1000 / ratePerSecond;
  }

  /**
   * 0 when a request to `host` may start at `now`; else when it may (epoch ms), or `Infinity`
   * when the host is at its concurrency limit (it frees up when a request ends).
   */
  readyAt(host: string, now: number): number {
    if ((this.#inFlight.get(host) ?? 0) >= this.#perHost) return Number.POSITIVE_INFINITY;
    const next = this.#nextStart.get(host);
    return next === undefined || next <= now ? 0 : next;
  }

  start(host: string, now: number): void {
    this.#inFlight.set(host, (this.#inFlight.get(host) ?? 0) + 1);
    if (this.#intervalMs > 0) {
      const previous = this.#nextStart.get(host);
      this.#nextStart.set(
        host,
        (previous === undefined || previous < now ? now : previous) + this.#intervalMs,
      );
      if (this.#nextStart.size > 1024) this.#forget(now);
    }
  }

  finish(host: string): void {
    const n = (this.#inFlight.get(host) ?? 1) - 1;
    if (n <= 0) this.#inFlight.delete(host);
    else this.#inFlight.set(host, n);
  }

  /** Hosts whose pacing is over have nothing to remember. */
  #forget(now: number): void {
    for (const [host, at] of this.#nextStart) if (at <= now) this.#nextStart.delete(host);
  }
}

/**
 * Parses a rate: `10` or `10/s` (per second), `600/m` or `600/min`, `3600/h`.
 * @example parseRate('120/m') // 2
 */
export function parseRate(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:\/\s*(s|sec|second|m|min|minute|h|hour))?\s*$/i.exec(
    text,
  );
  const value = match ? Number(match[1]) : Number.NaN;
  if (!match || !(value > 0))
    throw new TypeError(
      `a rate must be a positive number per second, or N/s, N/m, N/h; got ${JSON.stringify(text)}`,
    );
  const unit = (match[2] ?? 's').toLowerCase();
  const divisor = unit.startsWith('h') ? 3600 : unit.startsWith('m') ? 60 : 1;
  return value / divisor;
}
