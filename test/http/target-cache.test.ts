import { describe, expect, it } from 'vitest';
import {
  BYPASS_LOOKUPS,
  MIN_HITS,
  TARGET_CACHE_SIZE,
  TargetCache,
} from '../../src/http/target-cache.js';

/** A lookup as Session.#target makes it: get, and on a miss compute and set. */
function lookUp(cache: TargetCache<string>, key: string): 'hit' | 'miss' {
  if (cache.get(key) !== undefined) return 'hit';
  cache.set(key, `parsed ${key}`);
  return 'miss';
}

describe('TargetCache', () => {
  it('answers a URL given again from the cache, and is emptied when full', () => {
    const cache = new TargetCache<string>();
    expect(lookUp(cache, 'a')).toBe('miss');
    expect(lookUp(cache, 'a')).toBe('hit');
    expect(cache.get('a')).toBe('parsed a');
    for (let i = 1; i < TARGET_CACHE_SIZE; i++) lookUp(cache, `u${i}`);
    expect(cache.size).toBe(TARGET_CACHE_SIZE);
    // Full, with too few hits: the cache stands aside rather than keep the next one.
    lookUp(cache, 'next');
    expect(cache.size).toBe(0);
    expect(cache.bypassed).toBe(true);
  });

  it('stays in use while URLs repeat often enough', () => {
    const cache = new TargetCache<string>();
    // Each new URL looked up once more: one hit per insertion, well above MIN_HITS.
    for (let i = 0; i < 10 * TARGET_CACHE_SIZE; i++) {
      expect(lookUp(cache, `u${i}`)).toBe('miss');
      expect(lookUp(cache, `u${i}`)).toBe('hit');
    }
    expect(cache.bypassed).toBe(false);
  });

  it('keeps going at exactly MIN_HITS hits, and stands aside at one fewer', () => {
    for (const hits of [MIN_HITS, MIN_HITS - 1]) {
      const cache = new TargetCache<string>();
      for (let i = 0; i < TARGET_CACHE_SIZE; i++) lookUp(cache, `u${i}`);
      for (let i = 0; i < hits; i++) expect(lookUp(cache, `u${i}`)).toBe('hit');
      lookUp(cache, 'one more');
      expect(cache.bypassed).toBe(hits < MIN_HITS);
      expect(cache.size).toBe(hits < MIN_HITS ? 0 : 1);
    }
  });

  it('stands aside for BYPASS_LOOKUPS lookups over unique URLs, then caches again', () => {
    const cache = new TargetCache<string>();
    for (let i = 0; i <= TARGET_CACHE_SIZE; i++) lookUp(cache, `u${i}`);
    expect(cache.bypassed).toBe(true);
    // Standing aside: a URL given again is not found, and nothing is kept.
    for (let i = 0; i < BYPASS_LOOKUPS - 1; i++) expect(lookUp(cache, 'same')).toBe('miss');
    expect(cache.size).toBe(0);
    expect(cache.bypassed).toBe(true);
    // The last lookup of the bypass ends it, and its URL is kept: the cache is in use again.
    expect(lookUp(cache, 'same')).toBe('miss');
    expect(cache.bypassed).toBe(false);
    expect(cache.size).toBe(1);
    expect(lookUp(cache, 'same')).toBe('hit');
  });

  it('over a long run of unique URLs, inserts only a small share of them', () => {
    const cache = new TargetCache<string>();
    let stored = 0;
    const original = cache.set.bind(cache);
    cache.set = (key, value) => {
      const before = cache.size;
      original(key, value);
      if (cache.size > before) stored++;
    };
    const lookups = 100_000;
    for (let i = 0; i < lookups; i++) lookUp(cache, `https://example.test/item/${i}`);
    // One fill of the cache per TARGET_CACHE_SIZE + BYPASS_LOOKUPS lookups.
    const rounds = Math.ceil(lookups / (TARGET_CACHE_SIZE + BYPASS_LOOKUPS));
    expect(stored).toBeLessThanOrEqual(rounds * TARGET_CACHE_SIZE);
    expect(stored / lookups).toBeLessThan(0.07);
  });
});
