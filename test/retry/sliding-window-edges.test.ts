import { describe, expect, it } from 'vitest';
import { SlidingCounters } from '../../src/retry/sliding-window.js';
import { FakeClock } from '../../src/testing/index.js';

describe('SlidingCounters: edges', () => {
  it('slices are counted from the clock time the counters were made, whatever it is', async () => {
    const clock = new FakeClock({ now: 1025 });
    const c = new SlidingCounters(['n'], 1000, clock);
    c.add('n'); // at the very start of slice 0: it lives the whole window
    await clock.advance(990);
    expect(c.sum('n')).toBe(1);
    await clock.advance(10);
    expect(c.sum('n')).toBe(0);
  });

  it('takeBack goes from the newest slice to older ones, never wrapping to the oldest first', async () => {
    const clock = new FakeClock();
    const c = new SlidingCounters(['n'], 1000, clock);
    c.add('n', 1); // slice 0: the oldest
    await clock.advance(500);
    c.add('n', 1); // slice 5
    await clock.advance(400); // now in slice 9, empty
    expect(c.takeBack('n', 1)).toBe(1); // from slice 5
    await clock.advance(100); // slice 0 drops out
    expect(c.sum('n')).toBe(0);
  });
});
