import { describe, expect, it } from 'vitest';
import { HostTurns, LineSlots } from '../../../src/batch/distributed/line-slots.js';

/** Lets every pending promise callback run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('HostTurns: the lines of a host take turns', () => {
  it('gives a free host at once, then the turns in the order asked, each passed once', async () => {
    const turns = new HostTurns();
    const first = turns.take('a:80');
    expect(typeof first).toBe('function');
    const order: number[] = [];
    const waiting = [1, 2, 3].map((n) => {
      const turn = turns.take('a:80');
      expect(turn).toBeInstanceOf(Promise);
      return (turn as Promise<() => void>).then((pass) => {
        order.push(n);
        return pass;
      });
    });
    await settle();
    expect(order).toEqual([]);
    (first as () => void)();
    // Passing twice hands on nothing more.
    (first as () => void)();
    await settle();
    expect(order).toEqual([1]);
    (await waiting[0])?.();
    await settle();
    expect(order).toEqual([1, 2]);
    (await waiting[1])?.();
    (await waiting[2])?.();
    // Every turn passed: the host is free again, at once.
    expect(typeof turns.take('a:80')).toBe('function');
  });

  it('keeps hosts apart: a host whose turn is held does not hold another', () => {
    const turns = new HostTurns();
    turns.take('a:80');
    expect(typeof turns.take('b:80')).toBe('function');
    expect(turns.take('a:80')).toBeInstanceOf(Promise);
  });
});

describe('LineSlots: the lines in flight at once', () => {
  it('hands out `size` slots, then the freed ones in the order asked', async () => {
    const slots = new LineSlots(2);
    await slots.acquire();
    await slots.acquire();
    const order: number[] = [];
    const third = slots.acquire().then(() => order.push(3));
    const fourth = slots.acquire().then(() => order.push(4));
    await settle();
    expect(order).toEqual([]);
    slots.release();
    await third;
    expect(order).toEqual([3]);
    slots.release();
    await fourth;
    expect(order).toEqual([3, 4]);
    slots.release();
    slots.release();
    // Both free: two more at once, a third waits.
    await slots.acquire();
    await slots.acquire();
    let got = false;
    void slots.acquire().then(() => {
      got = true;
    });
    await settle();
    expect(got).toBe(false);
  });

  it('takes a free slot without a promise, never ahead of a line that waits', async () => {
    const slots = new LineSlots(1);
    expect(slots.tryAcquire()).toBe(true);
    expect(slots.tryAcquire()).toBe(false);
    let got = false;
    const waiting = slots.acquire().then(() => {
      got = true;
    });
    slots.release();
    // The slot went to the waiting line: none is free for a newcomer.
    expect(slots.tryAcquire()).toBe(false);
    await waiting;
    expect(got).toBe(true);
    slots.release();
    expect(slots.tryAcquire()).toBe(true);
  });
});
