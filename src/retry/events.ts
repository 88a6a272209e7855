/**
 * Typed events in cockatiel's style: subscribing returns a handle whose `dispose()` (or a
 * `using` declaration) unsubscribes.
 */

/** What subscribing to an event returns: dispose of it to stop listening. Idempotent. */
export interface Subscription {
  dispose(): void;
  [Symbol.dispose](): void;
}

/** A listener of events of type `T`. */
export type Listener<T> = (event: T) => void;

/**
 * A synchronous event emitter. Listeners run in subscription order; one that throws does not
 * keep the others from running, and its error is rethrown to the code that emitted once all
 * have run (an `AggregateError` when several threw).
 */
export class Emitter<T> {
  #listeners: Listener<T>[] = [];

  subscribe(listener: Listener<T>): Subscription {
    if (typeof listener !== 'function') {
      throw new TypeError(`an event listener must be a function, got ${typeof listener}`);
    }
    // A wrapper per subscription, so the same function subscribed twice is disposed once each.
    const entry: Listener<T> = (event) => listener(event);
    this.#listeners = [...this.#listeners, entry];
    const dispose = (): void => {
      this.#listeners = this.#listeners.filter((l) => l !== entry);
    };
    return { dispose, [Symbol.dispose]: dispose };
  }

  emit(event: T): void {
    const errors: unknown[] = [];
    // A copy-on-write array: a listener that (un)subscribes does not disturb this loop.
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length === 1) throw errors[0];
    // Stryker disable next-line EqualityOperator: `>= 1` is equivalent: a single error was thrown on the line before
    if (errors.length > 1) throw new AggregateError(errors, 'several event listeners threw');
  }
}
