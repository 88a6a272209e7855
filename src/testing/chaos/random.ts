/**
 * A seeded generator (mulberry32) yielding numbers in [0, 1). The chaos server keeps its own
 * copy instead of importing the retry engine's, so `testing/` stays the bottom layer.
 */
export function mulberry32(seed: number): () => number {
  let a = Math.trunc(seed) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
