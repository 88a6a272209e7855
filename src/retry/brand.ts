/**
 * `instanceof` that survives duplicate copies of the package.
 *
 * When two versions of dogged end up in one `node_modules` tree, an error thrown by one copy is
 * not an instance of the other copy's class by prototype. Each branded class marks its
 * prototype with a global `Symbol.for` key and answers `instanceof` by that mark, so
 * `err instanceof RetryError` holds whichever copy created `err`.
 */
// biome-ignore lint/suspicious/noExplicitAny: constructors of any shape can be branded.
type AnyClass = abstract new (...args: any[]) => object;

export function brand(ctor: AnyClass, key: string): void {
  const mark = Symbol.for(`dogged.${key}`);
  Object.defineProperty(ctor.prototype, mark, { value: true });
  Object.defineProperty(ctor, Symbol.hasInstance, {
    value(this: AnyClass, instance: unknown): boolean {
      // A user's unbranded subclass inherits this static method: let it use the normal check.
      if (this !== ctor) return Function.prototype[Symbol.hasInstance].call(this, instance);
      if (instance === null || (typeof instance !== 'object' && typeof instance !== 'function')) {
        return false;
      }
      return (instance as Record<symbol, unknown>)[mark] === true;
    },
  });
}
