import { describe, expect, it } from 'vitest';
import { AdaptiveRate } from '../../src/retry/index.js';
import { acceptEvery, throttledAt100 } from './helpers.js';

/**
 * The edges of AdaptiveRate's decisions: the boundaries of its thresholds, which window a
 * throttle is measured over, the share of throttles, and its state. The times are plain numbers
 * (the model never reads a clock), with the defaults: 100 slots of 100 ms, K = 8 s.
 */

/** Then 100/s to 1500 ms and a throttle: steady, cut at 1500, with a floor from a stray throttle. */
function steadyAt100(): AdaptiveRate {
  const pace = throttledAt100();
  acceptEvery(pace, 500, 1500);
  expect(pace.throttled(1500, 1499)).toBe(true);
  return pace;
}

describe('AdaptiveRate: options', () => {
  it('beta and searchGrowth must be numbers in range, strings that compare as such included', () => {
    // @ts-expect-error: not a number
    expect(() => new AdaptiveRate({ beta: '0.9' })).toThrow(/^AdaptiveRate: beta must be/);
    expect(() => new AdaptiveRate({ beta: 0 })).toThrow(/^AdaptiveRate: beta must be/);
    // @ts-expect-error: not a number
    expect(() => new AdaptiveRate({ searchGrowth: '2' })).toThrow(
      /^AdaptiveRate: searchGrowth must be/,
    );
    expect(() => new AdaptiveRate({ searchGrowth: 100.5 })).toThrow(
      /^AdaptiveRate: searchGrowth must be/,
    );
    expect(new AdaptiveRate({ searchGrowth: 100 })).toBeInstanceOf(AdaptiveRate);
  });

  it('names the caller in the windowMs error', () => {
    expect(() => new AdaptiveRate({ windowMs: 10 }, 'Pacer')).toThrow(/^Pacer: windowMs must/);
  });
});

describe('AdaptiveRate: state', () => {
  it('counts answers and throttles per slot, slot 0 included, and knows when the first came', () => {
    const pace = new AdaptiveRate();
    pace.accepted(50, 49);
    expect(pace.state()).toMatchObject({ firstAt: 50, resumedAt: null, slots: [[0, 1, 0]] });
    const throttled = new AdaptiveRate();
    throttled.throttled(50, 49);
    expect(throttled.throttled(60, 40)).toBe(false); // stale, but counted
    expect(throttled.state().slots).toEqual([[0, 0, 2]]);
  });

  it('an answer to a request sent before the cut, or in its millisecond, does not resume sending', () => {
    const pace = throttledAt100();
    pace.accepted(510, 490);
    pace.accepted(511, 500);
    expect(pace.state().resumedAt).toBeNull();
    pace.accepted(512, 501);
    expect(pace.state().resumedAt).toBe(501);
  });

  it('a throttle of a request sent in the millisecond of the cut is stale', () => {
    const pace = throttledAt100();
    expect(pace.throttled(510, 500)).toBe(false);
    expect(pace.snapshot(510).cuts).toBe(1);
  });

  it('a pace restored from a steady state still knows when it was cut', () => {
    const copy = AdaptiveRate.fromState(JSON.parse(JSON.stringify(steadyAt100().state())));
    expect(copy.throttled(1510, 1400)).toBe(false);
    expect(copy.throttled(1520, 1501)).toBe(true);
  });
});

describe('AdaptiveRate: the estimate needs 100 ms and 4 answers since sending resumed', () => {
  it('exactly 100 ms is enough: 5 answers in 100 ms is 50/s', () => {
    const pace = throttledAt100();
    for (let i = 1; i <= 5; i++) pace.accepted(600 + i, 599 + i); // resumed at 600
    pace.throttled(700, 699);
    expect(pace.snapshot(700).limit).toBeCloseTo(50, 9);
  });

  it('exactly 4 answers are enough: 4 in 200 ms is 20/s', () => {
    const pace = throttledAt100();
    for (let i = 1; i <= 4; i++) pace.accepted(600 + i, 599 + i);
    pace.throttled(800, 799);
    expect(pace.snapshot(800).limit).toBeCloseTo(20, 9);
  });

  it('under 100 ms, however many answers, is a plain cut of the pace allowed', () => {
    const pace = throttledAt100();
    for (let i = 1; i <= 4; i++) pace.accepted(600 + i, 599 + i);
    pace.throttled(650, 649);
    expect(pace.snapshot(650).limit).toBeCloseTo(90 * 2 ** 0.05, 9);
  });

  it('under 4 answers, however long, is a plain cut of the pace allowed', () => {
    const pace = throttledAt100();
    for (let i = 1; i <= 3; i++) pace.accepted(600 + i, 599 + i);
    pace.throttled(1100, 1099);
    expect(pace.snapshot(1100).limit).toBeCloseTo(90 * 2 ** 0.5, 9);
  });
});

describe('AdaptiveRate: the quick cut after a pause, at its boundaries', () => {
  it('a pause of exactly 500 ms counts as a pause', () => {
    const pace = throttledAt100(); // cut at 500
    for (let i = 1; i <= 10; i++) pace.accepted(1000 + i, 999 + i); // resumed at 1000
    pace.throttled(1200, 1199);
    expect(pace.snapshot(1200).limit).toBeCloseTo(0.85 * 50, 9); // 10 answers in 200 ms
  });

  it('a throttle exactly 500 ms after resuming is not quick', () => {
    const pace = throttledAt100();
    for (let i = 1; i <= 10; i++) pace.accepted(1000 + i, 999 + i);
    pace.throttled(1500, 1499);
    expect(pace.snapshot(1500).limit).toBeCloseTo(20, 9); // 10 answers in 500 ms
  });
});

describe('AdaptiveRate: the window a steady throttle is measured over', () => {
  it('before 2K, the whole cycle since sending resumed', () => {
    const pace = steadyAt100();
    acceptEvery(pace, 1500, 3504, 12); // resumed at 1511: about 83/s for 2 s
    acceptEvery(pace, 3504, 4504, 100); // then 10/s for the last second
    pace.throttled(4504, 4503);
    // From the slot sending resumed in (with the answer at 1500 in it): 1 + 167 + 10 answers over
    // the 2993 ms since, about 59/s; the last second alone would say 10/s (and the floor 50).
    expect(pace.snapshot(4504).limit).toBeCloseTo(178 / 2.993, 6);
  });

  it('at exactly 2K it is still the whole cycle (searching starts past it)', () => {
    const pace = steadyAt100();
    pace.accepted(1505, 1504); // resumed at 1504
    acceptEvery(pace, 1505, 16_505, 12); // about 83/s
    acceptEvery(pace, 16_504, 17_504, 100); // then 10/s for the last second
    pace.throttled(17_504, 17_503); // exactly 16 s after resuming
    // The last 10 s (slots 76 to 175): 743 + 10 answers over 9904 ms, about 76/s; the last
    // second alone would say 10/s (and the floor 50).
    expect(pace.snapshot(17_504).limit).toBeCloseTo(753 / 9.904, 6);
  });
});

describe('AdaptiveRate: the share of throttles and the floor', () => {
  it('a share of exactly 0.2 is not stray: the floor goes, and a new one is taken when throttles are few again', () => {
    const pace = steadyAt100(); // a floor of about 50 from the stray throttle at 1500
    pace.accepted(1502, 1501); // resumed at 1501
    for (let i = 0; i < 4; i++) pace.accepted(5450 + i, 5449 + i);
    pace.throttled(5500, 5499); // 1 throttle and 4 answers in the last 2 s: 0.2
    // 6 answers (the one at 1500 included) over the 3999 ms since resuming, no floor under it.
    expect(pace.snapshot(5500).limit).toBeCloseTo(6 / 3.999, 9);
    acceptEvery(pace, 5500, 7500, 100); // 10/s for 2 s; resumed at 5599
    pace.throttled(7500, 7499); // 1 in 21: stray again, a new floor from what is taken now
    expect(pace.snapshot(7500).limit).toBeLessThan(2);
  });

  it('a share just under 0.2, over the last 20 slots only, keeps the floor', () => {
    const pace = steadyAt100(); // a floor of about 50 from the stray throttle at 1500
    pace.accepted(1502, 1501); // resumed at 1501
    expect(pace.throttled(3550, 1400)).toBe(false); // stale, in slot 35: 21 slots before 55
    for (let i = 0; i < 5; i++) pace.accepted(5450 + i, 5449 + i);
    pace.throttled(5500, 5499); // 1 throttle and 5 answers in the last 2 s: 1/6
    expect(pace.snapshot(5500).limit).toBeGreaterThan(40);
  });
});
