import { describe, expect, it } from 'vitest';
import { AdaptiveRate } from '../../src/retry/index.js';
import { acceptEvery, throttledAt100 } from './helpers.js';

describe('AdaptiveRate: before any throttle', () => {
  it('does not limit: the rate is Infinity however many answers come', () => {
    const pace = new AdaptiveRate();
    acceptEvery(pace, 0, 10_000, 1);
    expect(pace.rateAt(10_000)).toBe(Number.POSITIVE_INFINITY);
    expect(pace.snapshot(10_000)).toMatchObject({ phase: 'unlimited', cuts: 0, limit: 0 });
  });
});

describe('AdaptiveRate: the first throttle', () => {
  it('estimates the limit from what was accepted and restarts at beta × it: 0.9 × 100 = 90', () => {
    const pace = throttledAt100();
    expect(pace.rateAt(500)).toBeCloseTo(90, 9);
    expect(pace.snapshot(500)).toMatchObject({ phase: 'search', limit: 100, cuts: 1 });
  });

  it('counts a first burst over at least 250 ms: 21 answers and a 429 in 5 ms is 88/s', () => {
    const pace = new AdaptiveRate();
    for (let i = 0; i < 21; i++) pace.accepted(i * 0.25, 0);
    pace.throttled(5, 4);
    // A burst allowance lets a first burst through at any speed: it says little of the rate.
    expect(pace.snapshot(5).limit).toBeCloseTo(88, 9);
    expect(pace.rateAt(5)).toBeCloseTo(79.2, 9);
  });

  it('a throttle as the very first answer counts as one request in 250 ms, and the search grows from there', () => {
    const pace = new AdaptiveRate();
    pace.throttled(0, 0);
    expect(pace.rateAt(0)).toBeCloseTo(3.6, 9); // 0.9 × 4/s
    pace.accepted(600, 500);
    expect(pace.rateAt(1500)).toBeCloseTo(7.2, 9); // doubled in the second since sending resumed
    expect(pace.rateAt(4500)).toBeCloseTo(3.6 * 2 ** 4, 9);
  });

  it('minRate is the floor', () => {
    const pace = new AdaptiveRate({ minRate: 20 });
    pace.throttled(0, 0);
    expect(pace.rateAt(0)).toBe(20);
  });

  it('then searches: the pace grows by searchGrowth per second from when sending resumed', () => {
    const pace = throttledAt100();
    // A Retry-After pause of 1 s: nothing sent, the pace does not grow meanwhile.
    expect(pace.rateAt(1500)).toBeCloseTo(90, 9);
    pace.accepted(1505, 1500); // the first request after the pause, sent at 1500
    expect(pace.rateAt(2500)).toBeCloseTo(180, 9);
    expect(pace.rateAt(2000)).toBeCloseTo(90 * Math.SQRT2, 9);
  });

  it('searchGrowth sets the speed of the search', () => {
    const pace = new AdaptiveRate({ searchGrowth: 1.5 });
    acceptEvery(pace, 0, 480);
    pace.throttled(500, 499);
    pace.accepted(502, 501);
    expect(pace.rateAt(1501)).toBeCloseTo(135, 9);
  });
});

describe('AdaptiveRate: stale throttles', () => {
  it('a throttle of a request sent before the last cut changes nothing', () => {
    const pace = throttledAt100();
    for (let i = 0; i < 10; i++) expect(pace.throttled(505 + i, 480)).toBe(false);
    expect(pace.rateAt(520)).toBeCloseTo(90, 9);
    expect(pace.snapshot(520).cuts).toBe(1);
    expect(pace.throttled(530, 510)).toBe(true); // sent after the cut: it counts
    expect(pace.snapshot(530).cuts).toBe(2);
  });
});

describe('AdaptiveRate: later throttles and the curve', () => {
  /** After the first cut, answers at 100/s from 500 to 1500 ms, then a throttle: steady, limit 100. */
  function steadyAt100(): AdaptiveRate {
    const pace = throttledAt100();
    acceptEvery(pace, 500, 1500); // resumed at 509 (sent 1 ms before the first answer at 510)
    pace.throttled(1500, 1499);
    return pace;
  }

  it('a throttle after the search sets the limit to what the server accepted since sending resumed', () => {
    const pace = steadyAt100();
    // The window keeps the last second in tenths: 91 answers from 600 to 1500 ms, over 900 ms.
    expect(pace.snapshot(1500)).toMatchObject({ phase: 'steady', cuts: 2 });
    expect(pace.snapshot(1500).limit).toBeCloseTo(91 / 0.9, 9);
    expect(pace.rateAt(1500)).toBeCloseTo((0.9 * 91) / 0.9, 9);
  });

  it('the limit is never above the pace that was allowed', () => {
    const pace = throttledAt100(); // 90/s, searching
    acceptEvery(pace, 500, 1500, 2); // the server took 500/s (a caller ignoring the pace)
    const allowed = pace.rateAt(1500);
    pace.throttled(1500, 1499);
    expect(pace.snapshot(1500).limit).toBeCloseTo(allowed, 9);
  });

  it('follows W · ((1 + beta) / 2 + ((1 − beta) / 2) · ((t − K) / K)³): a plateau under W at K, W at 2K, then searches again', () => {
    const pace = steadyAt100();
    const w = pace.snapshot(1500).limit;
    pace.accepted(1502, 1501); // resumed at 1501
    const at = (seconds: number): number => {
      const now = 1501 + seconds * 1000;
      acceptEvery(pace, now - 1000, now, 4); // keep answers flowing so the cap does not bind
      return pace.rateAt(now);
    };
    const curve = (t: number): number =>
      t <= 16 ? w * (0.95 + 0.05 * ((t - 8) / 8) ** 3) : w * 2 ** (t - 16);
    for (const t of [1, 4, 8, 12, 16, 17, 18]) expect(at(t)).toBeCloseTo(curve(t), 6);
    expect(curve(0)).toBeCloseTo(0.9 * w, 9);
    expect(curve(8)).toBeCloseTo(0.95 * w, 9);
    expect(curve(16)).toBeCloseTo(w, 9);
  });

  it('a throttle while searching past 2K measures the last second, not the long plateau before it', () => {
    const pace = new AdaptiveRate({ probeAfterMs: 1000 });
    acceptEvery(pace, 0, 480);
    pace.throttled(500, 499);
    acceptEvery(pace, 500, 1500);
    pace.throttled(1500, 1499); // steady; K = 1 s
    acceptEvery(pace, 1500, 4500, 10); // 100/s for 3 s: back at W at 2 s, searching after
    acceptEvery(pace, 4500, 5500, 4); // the raised limit: 250/s in the last second
    pace.throttled(5500, 5499);
    // The whole cycle would say about 140/s; the last second says 250.
    expect(pace.snapshot(5500).limit).toBeGreaterThan(200);
  });

  it('probeAfterMs sets K', () => {
    const pace = new AdaptiveRate({ probeAfterMs: 2000 });
    acceptEvery(pace, 0, 480);
    pace.throttled(500, 499);
    acceptEvery(pace, 500, 1500);
    pace.throttled(1500, 1499);
    const w = pace.snapshot(1500).limit;
    acceptEvery(pace, 1500, 5500, 4); // resumed at 1503
    expect(pace.rateAt(3503)).toBeCloseTo(0.95 * w, 6);
    expect(pace.rateAt(5503)).toBeCloseTo(w, 6);
  });

  it('above the limit, the pace is held to twice what the server accepted lately', () => {
    const pace = steadyAt100();
    const w = pace.snapshot(1500).limit;
    pace.accepted(1502, 1501);
    // Thirty seconds later with only that answer: the search says 2^14 × W; nothing backs it.
    expect(pace.rateAt(31_501)).toBeCloseTo(w, 9);
  });

  it('a throttle too soon after sending resumed to measure anything is a plain cut of the pace', () => {
    const pace = throttledAt100(); // 90/s
    pace.accepted(502, 501);
    pace.throttled(510, 505); // 1 answer since resuming: not an estimate
    expect(pace.snapshot(510).limit).toBeCloseTo(0.9 * 100 * 2 ** (9 / 1000), 9);
    expect(pace.rateAt(510)).toBeCloseTo(0.9 * 0.9 * 100 * 2 ** (9 / 1000), 9);
  });

  it('throttles with nothing accepted in between cut the pace down to minRate', () => {
    const pace = throttledAt100();
    let t = 500;
    for (let i = 0; i < 100; i++) {
      t += 10;
      pace.throttled(t, t - 1);
    }
    expect(pace.rateAt(t)).toBe(0.5);
  });
});

describe('AdaptiveRate: a throttle soon after a pause', () => {
  it('cuts 0.85 times deeper: a rested burst allowance let through everything that was sent', () => {
    const pace = throttledAt100(); // 90/s, searching; then a Retry-After pause of 1 s
    acceptEvery(pace, 1500, 1800, 5); // resumed at 1504: everything accepted, 200/s
    pace.throttled(1800, 1799); // 296 ms after resuming
    const allowed = 90 * 2 ** (296 / 1000);
    expect(pace.snapshot(1800).limit).toBeCloseTo(0.85 * allowed, 9);
  });

  it('does not when sending resumed at once (no pause: the server was not rested)', () => {
    const pace = throttledAt100();
    acceptEvery(pace, 500, 800, 5); // resumed at 504
    pace.throttled(800, 799);
    expect(pace.snapshot(800).limit).toBeCloseTo(90 * 2 ** (296 / 1000), 9);
  });

  it('does not when the throttle came half a second or more after resuming', () => {
    const pace = throttledAt100();
    acceptEvery(pace, 1500, 2600, 10); // resumed at 1509, 110 answers: 100/s
    pace.throttled(2600, 2599);
    // The search looks at the last second, in tenths: 91 answers from 1700 to 2600 ms.
    expect(pace.snapshot(2600).limit).toBeCloseTo(91 / 0.9, 9);
  });
});

describe('AdaptiveRate: stray throttles', () => {
  it('few throttles among many answers cannot spiral the pace down: a floor at half what the server took', () => {
    const pace = throttledAt100();
    acceptEvery(pace, 500, 1500); // 100/s
    pace.throttled(1500, 1499); // steady, 1 throttle in 150 answers: a stray one
    let t = 1500;
    for (let i = 0; i < 30; i++) {
      acceptEvery(pace, t, t + 100); // 10 answers, then another stray 429
      t += 100;
      pace.throttled(t, t - 1);
    }
    // The floor is half the 100/s the server took, not half of any pace a search allowed.
    const limit = pace.snapshot(t).limit;
    expect(limit).toBeGreaterThanOrEqual(45);
    expect(limit).toBeLessThan(60);
  });

  it('many throttles are followed down: a server over its limit', () => {
    const pace = throttledAt100();
    acceptEvery(pace, 500, 1500);
    pace.throttled(1500, 1499);
    let t = 1500;
    for (let i = 0; i < 30; i++) {
      pace.accepted(t + 50, t + 49);
      for (let j = 0; j < 3; j++) pace.throttled(t + 60 + j, t + 49); // stale ones, counted
      t += 100;
      pace.throttled(t, t - 1);
    }
    expect(pace.snapshot(t).limit).toBeLessThan(20);
  });
});

describe('AdaptiveRate: options', () => {
  it('rejects bad options with a TypeError naming the option and the value', () => {
    expect(() => new AdaptiveRate({ beta: 1 })).toThrow(
      /AdaptiveRate: beta must be a number above 0 and below 1, got 1/,
    );
    expect(() => new AdaptiveRate({ minRate: 0 })).toThrow(
      /AdaptiveRate: minRate must be a finite number greater than 0, got 0/,
    );
    expect(() => new AdaptiveRate({ probeAfterMs: 10 })).toThrow(/probeAfterMs/);
    expect(() => new AdaptiveRate({ searchGrowth: 1 })).toThrow(
      /searchGrowth must be a number above 1, at most 100, got 1/,
    );
    // @ts-expect-error: unknown option
    expect(() => new AdaptiveRate({ scaleConstant: 1 })).toThrow(
      /unknown option "scaleConstant"; the speed of recovery is set by probeAfterMs/,
    );
  });
});

describe('AdaptiveRate: state', () => {
  it('a pace restored from its state (through JSON) decides exactly as the original', () => {
    const pace = throttledAt100();
    acceptEvery(pace, 500, 1500);
    pace.throttled(1500, 1499);
    acceptEvery(pace, 1500, 3000, 7);
    const copy = AdaptiveRate.fromState(JSON.parse(JSON.stringify(pace.state())));
    expect(copy.snapshot(3000)).toEqual(pace.snapshot(3000));
    for (const t of [3000, 5000, 9000]) expect(copy.rateAt(t)).toBe(pace.rateAt(t));
    expect(copy.throttled(3100, 3050)).toBe(pace.throttled(3100, 3050));
    expect(copy.state()).toEqual(pace.state());
  });

  it('a fresh pace has an unlimited state', () => {
    expect(new AdaptiveRate().state()).toMatchObject({ phase: 'unlimited', cuts: 0, slots: [] });
  });
});
