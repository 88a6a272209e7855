import { brand } from './brand.js';
import { formatDuration } from './describe.js';

/** Why a circuit breaker refused a request: what `tryAcquire()` returns instead of a permit. */
export interface CircuitRefusal {
  readonly allowed: false;
  /** `open`: waiting out the half-open delay; `half-open`: every probe slot is taken. */
  readonly state: 'open' | 'half-open';
  /**
   * When, on the breaker's clock, a request may be let through: the end of the half-open delay
   * when open; when half-open, the moment the oldest probe counts as lost and frees its slot.
   */
  readonly retryAtMs: number;
  /** The same moment as a delay from now, in milliseconds. */
  readonly retryAfterMs: number;
  /** The failure that last counted against the circuit (the one that opened it), if reported. */
  readonly lastFailure: unknown;
}

/**
 * Thrown by `CircuitBreaker.execute()` when the circuit refuses the call: it fails fast without
 * calling the function. Not retriable: retrying into an open circuit only spins. (The HTTP
 * layer maps it to its own `CircuitOpenError`.)
 *
 * @example
 * try {
 *   await breaker.execute(() => callInventory());
 * } catch (error) {
 *   if (error instanceof BrokenCircuitError) serveFromCache(error.retryAfterMs);
 *   else throw error;
 * }
 */
export class BrokenCircuitError extends Error {
  override readonly name = 'BrokenCircuitError';
  /** Stable code for programs. */
  readonly code = 'ERR_DOGGED_CIRCUIT_OPEN';
  readonly retriable = false;
  readonly state: 'open' | 'half-open';
  /** When the breaker will let a request through, on its clock. */
  readonly retryAtMs: number;
  /** How long from now, in milliseconds. */
  readonly retryAfterMs: number;
  /** The breaker's `name` option. */
  readonly circuit: string | undefined;

  constructor(refusal: CircuitRefusal, circuit?: string) {
    const who = circuit ? `circuit ${JSON.stringify(circuit)}` : 'the circuit';
    const when = formatDuration(refusal.retryAfterMs);
    const message =
      refusal.state === 'open'
        ? `${who} is open after repeated failures; failing fast. It lets a probe request through in ${when}`
        : `${who} is half-open and every probe slot is taken; failing fast. A slot frees in ${when} at the latest`;
    super(message, refusal.lastFailure === undefined ? undefined : { cause: refusal.lastFailure });
    this.state = refusal.state;
    this.retryAtMs = refusal.retryAtMs;
    this.retryAfterMs = refusal.retryAfterMs;
    this.circuit = circuit;
  }
}
brand(BrokenCircuitError, 'BrokenCircuitError');
