/**
 * Boundary checks shared by the storm-control primitives (budget, breaker, rate limiters), on
 * top of the general helpers of `validate.ts`.
 */
import { type Clock, isClock, systemClock } from './clock.js';
import { assertKnownKeys, assertPlainObject, showValue } from './validate.js';

/** Token arithmetic tolerance: a fraction of a token lost to floating point still counts. */
export const EPSILON = 1e-9;

/** A finite number, at least `min`. */
export function assertNumberAtLeast(
  where: string,
  value: unknown,
  min: number,
): asserts value is number {
  // Stryker disable next-line ConditionalExpression: the typeof test is redundant: Number.isFinite is false for any non-number
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new TypeError(
      `${where} must be a finite number, at least ${min}, got ${showValue(value)}`,
    );
  }
}

/** An options argument: `undefined` (all defaults) or a plain object with only known keys. */
export function readOptions(
  where: string,
  options: unknown,
  known: readonly string[],
  hints: Record<string, string> = {},
): Record<string, unknown> {
  if (options === undefined) return {};
  assertPlainObject(`${where} options`, options);
  const record = options as Record<string, unknown>;
  assertKnownKeys(where, record, known, hints);
  return record;
}

/** The `clock` option: a `Clock`, or the system clock when absent. */
export function readClock(where: string, value: unknown): Clock {
  if (value === undefined) return systemClock;
  if (!isClock(value)) {
    throw new TypeError(
      `${where}: clock must be an object with now() and sleep(ms, signal), got ${showValue(value)}`,
    );
  }
  return value;
}
