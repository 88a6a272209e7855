import { assertFunction } from './validate.js';

/**
 * A source of uniformly distributed numbers in [0, 1), like `Math.random`.
 *
 * Every random choice dogged makes (jitter, proxy picks) goes through one of these, so a test
 * that injects {@link seededRandom} is fully deterministic.
 */
export type RandomSource = () => number;

/** `Math.random`, the default source. */
export const defaultRandom: RandomSource = () => Math.random();

/**
 * A small, fast, seeded generator (mulberry32): the same seed always yields the same sequence.
 *
 * @param seed - any finite number; it is reduced to 32 bits.
 * @example
 * const random = seededRandom(42);
 * await retry(fetchReport, { random }); // the same jittered delays on every run
 */
export function seededRandom(seed: number): RandomSource {
  // Stryker disable next-line ConditionalExpression: the typeof test is redundant: Number.isFinite is false for any non-number
  if (typeof seed !== 'number' || !Number.isFinite(seed)) {
    throw new TypeError(`seededRandom: seed must be a finite number, got ${String(seed)}`);
  }
  let a = Math.trunc(seed) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Checks a user-supplied source once, at the boundary. */
export function assertRandomSource(where: string, value: unknown): asserts value is RandomSource {
  assertFunction(where, value);
}

/** A uniform draw in [low, high]; an infinite upper bound stays infinite instead of NaN. */
export function uniform(random: RandomSource, low: number, high: number): number {
  if (high <= low) return low;
  if (!Number.isFinite(high)) return high;
  return low + random() * (high - low);
}
