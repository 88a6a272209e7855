import type { RetryOptions } from './options.js';
import { Retrying, type RetryingFunction, wrapWith } from './retrying.js';
import { showValue } from './validate.js';

/**
 * A standard (TC39) method decorator: the method is retried per `options` and keeps its `this`.
 * The method must be async (the decorated one always returns a promise). One `Retrying` serves
 * every instance; read its counters with `getRetrying(instance.method)?.statistics`.
 *
 * @example
 * class ReportClient {
 *   @retrying({ stop: stop.afterAttempt(3), wait: wait.fixed(100) })
 *   async fetch(id: string): Promise<Report> { ... }
 * }
 */
export function retrying<T = unknown>(options: RetryOptions<T> = {}) {
  // Validate at class definition time, not at the first call.
  new Retrying<T>(options);
  return <This, A extends unknown[], R extends T>(
    method: (this: This, ...args: A) => Promise<R>,
    context: ClassMethodDecoratorContext<This, (this: This, ...args: A) => Promise<R>>,
  ): ((this: This, ...args: A) => Promise<R>) => {
    if (context?.kind !== 'method') {
      throw new TypeError(`@retrying() decorates methods only, not ${showValue(context?.kind)}`);
    }
    const name = options.name ?? String(context.name);
    const runner = new Retrying<R>({ ...(options as unknown as RetryOptions<R>), name });
    return wrapWith(runner, method) as (this: This, ...args: A) => Promise<R>;
  };
}

/** The `Retrying` behind a function made by `wrap()` or `@retrying()`, if it is one. */
export function getRetrying<R = unknown>(fn: unknown): Retrying<R> | undefined {
  if (typeof fn !== 'function') return undefined;
  const r = (fn as Partial<RetryingFunction<unknown[], R>>).retrying;
  return r instanceof Retrying ? r : undefined;
}
