/**
 * Whether `value` is a thenable (Promises/A+: an object or a function with a `then` method): what
 * the engine and the retry conditions await.
 */
export function isThenable<V>(value: unknown): value is PromiseLike<V> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as PromiseLike<V>).then === 'function'
  );
}
