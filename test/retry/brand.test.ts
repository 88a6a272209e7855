import { describe, expect, it } from 'vitest';
import { brand } from '../../src/retry/brand.js';
import { RetryError, TryAgain } from '../../src/retry/index.js';

describe('instanceof across duplicate copies of the package', () => {
  it('an error made by another copy of dogged is still an instance', () => {
    // What a second copy of the package would define: same brand key, different class.
    class OtherCopyTryAgain extends Error {}
    brand(OtherCopyTryAgain, 'TryAgain');
    expect(new OtherCopyTryAgain() instanceof TryAgain).toBe(true);
    expect(new TryAgain() instanceof OtherCopyTryAgain).toBe(true);
    expect(new Error('x') instanceof TryAgain).toBe(false);
    expect(new TryAgain() instanceof RetryError).toBe(false);
    expect(('TryAgain' as unknown) instanceof TryAgain).toBe(false);
  });

  it("a user's unbranded subclass keeps ordinary instanceof", () => {
    class MyTryAgain extends TryAgain {}
    expect(new MyTryAgain() instanceof TryAgain).toBe(true);
    expect(new MyTryAgain() instanceof MyTryAgain).toBe(true);
    expect(new TryAgain() instanceof MyTryAgain).toBe(false);
  });

  it('null, primitives and functions are answered like a plain instanceof would', () => {
    expect((null as unknown) instanceof RetryError).toBe(false);
    expect(('RetryError' as unknown) instanceof RetryError).toBe(false);
    const callable = (): void => {};
    expect(callable instanceof RetryError).toBe(false);
    Object.setPrototypeOf(callable, RetryError.prototype);
    expect(callable instanceof RetryError).toBe(true);
  });
});
