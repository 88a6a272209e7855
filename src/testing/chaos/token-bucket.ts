/** The outcome of one {@link TokenBucket.take}. */
export interface TokenBucketDecision {
  /** Whether a token was available (and spent). */
  readonly allowed: boolean;
  /** Whole tokens left after this decision. */
  readonly remaining: number;
  /** How long until one token is available again; 0 when `allowed` left at least one. */
  readonly retryAfterMs: number;
}

/**
 * A classic token bucket: it starts full with `burst` tokens and refills at `ratePerSecond`,
 * never above `burst`. Time is passed in, so it is a pure state machine.
 */
export class TokenBucket {
  #tokens: number;
  #updatedAt: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    now: number,
  ) {
    this.#tokens = burst;
    this.#updatedAt = now;
  }

  take(now: number): TokenBucketDecision {
    const elapsedMs = Math.max(0, now - this.#updatedAt);
    this.#tokens = Math.min(this.burst, this.#tokens + (elapsedMs / 1000) * this.ratePerSecond);
    this.#updatedAt = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return {
        allowed: true,
        remaining: Math.floor(this.#tokens),
        retryAfterMs: this.#tokens >= 1 ? 0 : this.#msUntilOneToken(),
      };
    }
    return { allowed: false, remaining: 0, retryAfterMs: this.#msUntilOneToken() };
  }

  #msUntilOneToken(): number {
    return ((1 - this.#tokens) / this.ratePerSecond) * 1000;
  }
}
