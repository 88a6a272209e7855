import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/retry/clock.js';
import { SlidingCounters } from '../../src/retry/sliding-window.js';
import {
  assertNumberAtLeast,
  EPSILON,
  readClock,
  readOptions,
} from '../../src/retry/storm-validate.js';
import { FakeClock } from '../../src/testing/index.js';

describe('SlidingCounters', () => {
  it('counts per key over the window, starting at the clock time it was made', async () => {
    const clock = new FakeClock({ now: 5000 });
    const c = new SlidingCounters(['a', 'b'], 1000, clock);
    c.add('a');
    c.add('a', 3);
    c.add('b', 2);
    expect(c.sum('a')).toBe(4);
    expect(c.sum('b')).toBe(2);
    // Slices of 100 ms from 5000: a count made in slice 0 lives until 6000.
    await clock.advance(999);
    expect(c.sum('a')).toBe(4);
    await clock.advance(1);
    expect(c.sum('a')).toBe(0);
    expect(c.sum('b')).toBe(0);
  });

  it('each slice drops out on its own', async () => {
    const clock = new FakeClock();
    const c = new SlidingCounters(['n'], 1000, clock);
    for (let i = 0; i < 10; i++) {
      c.add('n', i + 1);
      await clock.advance(100);
    }
    // Now in slice 10: slice 0 (1) has dropped out.
    expect(c.sum('n')).toBe(54);
    await clock.advance(100);
    expect(c.sum('n')).toBe(52);
    await clock.advance(450);
    // Slice 15: slices 6..9 (7 + 8 + 9 + 10) remain.
    expect(c.sum('n')).toBe(34);
  });

  it('a jump longer than the window forgets everything, and counting goes on', async () => {
    const clock = new FakeClock();
    const c = new SlidingCounters(['n'], 1000, clock, 4);
    c.add('n', 5);
    await clock.advance(250);
    c.add('n', 6);
    await clock.advance(10_000);
    expect(c.sum('n')).toBe(0);
    c.add('n', 2);
    expect(c.sum('n')).toBe(2);
    await clock.advance(999);
    expect(c.sum('n')).toBe(2);
    await clock.advance(251);
    expect(c.sum('n')).toBe(0);
  });

  it('a clock that goes backwards keeps the newest slice', () => {
    let now = 1000;
    const clock = { now: () => now, sleep: () => Promise.resolve() };
    const c = new SlidingCounters(['n'], 1000, clock);
    now = 1500;
    c.add('n', 1);
    now = 1200;
    c.add('n', 1);
    expect(c.sum('n')).toBe(2);
    now = 2400;
    // Slice 14 from slice 5: both counts are still within 10 slices.
    expect(c.sum('n')).toBe(2);
    now = 2500;
    expect(c.sum('n')).toBe(0);
  });

  it('takeBack takes from the newest slices first, never below zero, and says how much', async () => {
    const clock = new FakeClock();
    const c = new SlidingCounters(['n'], 1000, clock);
    c.add('n', 2);
    await clock.advance(100);
    c.add('n', 1);
    await clock.advance(100);
    expect(c.takeBack('n')).toBe(0 + 1);
    // The newest slice (2) was empty; the one before had 1.
    expect(c.sum('n')).toBe(2);
    expect(c.takeBack('n', 5)).toBe(2);
    expect(c.sum('n')).toBe(0);
    expect(c.takeBack('n', 1)).toBe(0);
    expect(c.sum('n')).toBe(0);
    // What was taken back does not come back when its slice drops out.
    c.add('n', 3);
    expect(c.takeBack('n', 2)).toBe(2);
    await clock.advance(900);
    expect(c.sum('n')).toBe(1);
    await clock.advance(100);
    expect(c.sum('n')).toBe(0);
  });

  it('takeBack reaches back through the whole window, not past it', async () => {
    const clock = new FakeClock();
    const c = new SlidingCounters(['n'], 1000, clock);
    c.add('n', 1);
    await clock.advance(950);
    c.add('n', 1);
    expect(c.takeBack('n', 2)).toBe(2);
    expect(c.sum('n')).toBe(0);
    c.add('n', 4);
    await clock.advance(100);
    expect(c.takeBack('n', 10)).toBe(4);
  });

  it('takeBack takes partly from a slice', () => {
    const clock = new FakeClock();
    const c = new SlidingCounters(['n'], 1000, clock);
    c.add('n', 5);
    expect(c.takeBack('n', 2)).toBe(2);
    expect(c.sum('n')).toBe(3);
  });

  it('clear forgets every key', () => {
    const c = new SlidingCounters(['a', 'b'], 1000, new FakeClock());
    c.add('a', 1);
    c.add('b', 1);
    c.clear();
    expect([c.sum('a'), c.sum('b')]).toEqual([0, 0]);
  });

  it('an unknown key is an error', () => {
    const c = new SlidingCounters(['a'], 1000, new FakeClock());
    expect(() => c.add('b' as 'a')).toThrow('SlidingCounters: unknown key "b"');
    expect(() => c.sum('b' as 'a')).toThrow('SlidingCounters: unknown key "b"');
    expect(() => c.takeBack('b' as 'a')).toThrow('SlidingCounters: unknown key "b"');
  });
});

describe('storm option checks', () => {
  it('assertNumberAtLeast takes finite numbers from min up', () => {
    expect(() => assertNumberAtLeast('x', 0, 0)).not.toThrow();
    expect(() => assertNumberAtLeast('x', -0.5, 0)).toThrow(
      'x must be a finite number, at least 0, got -0.5',
    );
    expect(() => assertNumberAtLeast('x', Number.POSITIVE_INFINITY, 0)).toThrow(
      'x must be a finite number, at least 0, got Infinity',
    );
    expect(() => assertNumberAtLeast('x', '1', 0)).toThrow(
      'x must be a finite number, at least 0, got "1"',
    );
    expect(EPSILON).toBe(1e-9);
  });

  it('readOptions: undefined is no options; the rest must be a plain object with known keys', () => {
    expect(readOptions('W', undefined, ['a'])).toEqual({});
    const o = { a: 1 };
    expect(readOptions('W', o, ['a'])).toBe(o);
    expect(() => readOptions('W', null, ['a'])).toThrow(/W options must be/);
    expect(() => readOptions('W', { b: 1 }, ['a'], { b: 'use a' })).toThrow(
      'W: unknown option "b"; use a',
    );
  });

  it('readClock: the system clock by default, a Clock, or an error', () => {
    expect(readClock('W', undefined)).toBe(systemClock);
    const clock = new FakeClock();
    expect(readClock('W', clock)).toBe(clock);
    expect(() => readClock('W', { now: () => 0 })).toThrow(
      'W: clock must be an object with now() and sleep(ms, signal), got an object',
    );
  });
});
