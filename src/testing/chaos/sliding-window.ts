/**
 * Counts events in the last `windowMs` milliseconds (a sliding log). Time is passed in, so it
 * is a pure state machine.
 */
export class SlidingWindowCounter {
  readonly #times: number[] = [];

  constructor(readonly windowMs: number) {}

  /** Records one event at `now` and returns how many fall inside the window, this one included. */
  hit(now: number): number {
    const horizon = now - this.windowMs;
    let expired = 0;
    while (expired < this.#times.length && (this.#times[expired] ?? now) <= horizon) expired++;
    if (expired > 0) this.#times.splice(0, expired);
    this.#times.push(now);
    return this.#times.length;
  }

  /** Milliseconds until the oldest event in the window leaves it. */
  msUntilOldestExpires(now: number): number {
    const oldest = this.#times[0];
    return oldest === undefined ? 0 : Math.max(0, oldest + this.windowMs - now);
  }
}
