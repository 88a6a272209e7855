/** The largest body `/bytes/:n` serves: 1 GiB. */
export const MAX_CHAOS_BYTES = 1024 * 1024 * 1024;

/** murmur3's 32-bit finaliser: a cheap, well-mixed hash of one 32-bit word. */
function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Writes the deterministic bytes `[offset, offset + target.length)` of the stream for `seed`
 * into `target`. Every byte is a pure function of (seed, position), so any range can be
 * produced without generating what comes before it.
 */
export function fillChaosBytes(target: Uint8Array, seed: number, offset: number): void {
  const seedHash = fmix32(Math.trunc(seed) ^ 0x9e3779b9);
  let position = offset;
  let index = 0;
  while (index < target.length) {
    const block = Math.floor(position / 4);
    const word = fmix32(seedHash ^ fmix32(block >>> 0) ^ Math.floor(block / 4294967296));
    for (let lane = position % 4; lane < 4 && index < target.length; lane++) {
      target[index++] = (word >>> (lane * 8)) & 0xff;
      position++;
    }
  }
}

/**
 * The exact bytes the chaos server sends for `/bytes/:n?seed=S` (or the slice starting at
 * `offset`), so a test can check a download byte for byte, including resumed ones.
 *
 * @param length - how many bytes to produce.
 * @param seed - the `seed` query parameter (or the server's `seed` option when it was omitted).
 * @param offset - the position of the first byte, as in `Range: bytes=offset-`.
 * @example
 * const body = await (await fetch(`${chaos.url}/bytes/4096?seed=7`)).arrayBuffer();
 * expect(Buffer.from(body).equals(chaosBytes(4096, 7))).toBe(true);
 */
export function chaosBytes(length: number, seed = 1, offset = 0): Buffer {
  for (const [name, value] of [
    ['length', length],
    ['offset', offset],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`chaosBytes: ${name} must be a non-negative integer, got ${value}`);
    }
  }
  if (!Number.isFinite(seed)) {
    throw new RangeError(`chaosBytes: seed must be a finite number, got ${seed}`);
  }
  const out = Buffer.allocUnsafe(length);
  fillChaosBytes(out, seed, offset);
  return out;
}
