import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/testing/index.js';

describe('FakeClock', () => {
  it('starts at the given time and only moves when told', async () => {
    const clock = new FakeClock({ now: 1000 });
    expect(clock.now()).toBe(1000);
    await clock.advance(250);
    expect(clock.now()).toBe(1250);
  });

  it('resolves sleeps in due order as time advances, running woken code in between', async () => {
    const clock = new FakeClock();
    const order: string[] = [];
    void clock.sleep(300).then(() => order.push(`a@${clock.now()}`));
    void clock.sleep(100).then(async () => {
      order.push(`b@${clock.now()}`);
      await clock.sleep(50);
      order.push(`c@${clock.now()}`);
    });
    await clock.advance(200);
    expect(order).toEqual(['b@100', 'c@150']);
    expect(clock.now()).toBe(200);
    await clock.advance(100);
    expect(order).toEqual(['b@100', 'c@150', 'a@300']);
    expect(clock.sleeps).toEqual([300, 100, 50]);
  });

  it('runAll fires every pending sleep, and refuses to spin forever', async () => {
    const clock = new FakeClock();
    let woke = 0;
    void clock.sleep(5000).then(() => woke++);
    void clock.sleep(10).then(() => woke++);
    await clock.runAll();
    expect(woke).toBe(2);
    expect(clock.now()).toBe(5000);
    expect(clock.pending).toBe(0);

    const forever = async (): Promise<void> => {
      for (;;) await clock.sleep(1);
    };
    void forever();
    await expect(clock.runAll(50)).rejects.toThrow(/still sleeping after 50 timers/);
  });

  it('an aborted sleep rejects with the reason and is removed', async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    const sleeping = clock.sleep(1000, controller.signal);
    expect(clock.pending).toBe(1);
    controller.abort(new Error('cancelled'));
    await expect(sleeping).rejects.toThrow('cancelled');
    expect(clock.pending).toBe(0);
    await expect(clock.sleep(5, AbortSignal.abort(new Error('early')))).rejects.toThrow('early');
  });

  it('autoAdvance resolves sleeps at once and moves time forward', async () => {
    const clock = new FakeClock({ autoAdvance: true });
    await clock.sleep(1500);
    await clock.sleep(500);
    expect(clock.now()).toBe(2000);
    expect(clock.pending).toBe(0);
  });

  it('rejects nonsense durations', async () => {
    const clock = new FakeClock();
    await expect(clock.sleep(-1)).rejects.toThrow(TypeError);
    await expect(clock.advance(Number.NaN)).rejects.toThrow(/got NaN/);
    expect(() => new FakeClock({ now: Number.POSITIVE_INFINITY })).toThrow(TypeError);
  });
});
