import { describe, expect, it } from 'vitest';
import { HostTurns, LineSlots, LineStarts } from '../../../src/batch/distributed/line-slots.js';

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

/** An item of a LineStarts run that settles, and releases, when told. */
interface Held {
  readonly id: string;
  release: () => void;
  settle: (value: string) => void;
  fail: (error: Error) => void;
}

/** Runs `ids` (`host/n`) through `starts`, recording each start; their handles by id. */
function startAll(starts: LineStarts, ids: string[], started: string[], held: Map<string, Held>) {
  return starts.run(
    ids,
    (id) => id.split('/')[0] as string,
    (id, release) =>
      new Promise<string>((resolve, reject) => {
        started.push(id);
        held.set(id, { id, release, settle: resolve, fail: reject });
      }),
  );
}

describe("LineStarts: a worker starts its chunks' lines a few at a time per host", () => {
  it('keeps at most `window` lines of a host open, starting the next as one releases, in order', async () => {
    const starts = new LineStarts(2);
    const started: string[] = [];
    const held = new Map<string, Held>();
    const ids = ['a/1', 'b/1', 'a/2', 'a/3', 'b/2', 'a/4', 'b/3', 'b/4'];
    const run = startAll(starts, ids, started, held);
    // Two of each host, each host's in the items' order; the hosts do not hold each other.
    expect(started).toEqual(['a/1', 'a/2', 'b/1', 'b/2']);
    held.get('a/2')?.release();
    // Releasing twice frees one place only.
    held.get('a/2')?.release();
    expect(started).toEqual(['a/1', 'a/2', 'b/1', 'b/2', 'a/3']);
    // A line that settles releases too.
    held.get('b/1')?.settle('b/1!');
    await settle();
    expect(started.slice(5)).toEqual(['b/3']);
    for (const id of ['a/1', 'a/2', 'a/3', 'b/2', 'b/3']) held.get(id)?.settle(`${id}!`);
    await settle();
    expect(started.slice(6).sort()).toEqual(['a/4', 'b/4']);
    held.get('a/4')?.settle('a/4!');
    held.get('b/4')?.settle('b/4!');
    // The results in the items' order, whatever order they settled in.
    await expect(run).resolves.toEqual(ids.map((id) => `${id}!`));
    // Every place is free again: a new run starts `window` lines of a host at once.
    const after: string[] = [];
    void startAll(starts, ['a/5', 'a/6', 'a/7'], after, held);
    expect(after).toEqual(['a/5', 'a/6']);
  });

  it('serves the runs of a host in the order they came: a later chunk waits behind an earlier one', async () => {
    const starts = new LineStarts(1);
    const started: string[] = [];
    const held = new Map<string, Held>();
    void startAll(starts, ['a/1', 'a/2'], started, held);
    void startAll(starts, ['a/3', 'b/1'], started, held);
    // b is free: the second run's b line starts at once; its a line waits for the first run's.
    expect(started).toEqual(['a/1', 'b/1']);
    held.get('a/1')?.release();
    held.get('a/2')?.release();
    expect(started).toEqual(['a/1', 'b/1', 'a/2', 'a/3']);
  });

  it('rejects with the first error and starts nothing more of that run; other runs go on', async () => {
    const starts = new LineStarts(1);
    const started: string[] = [];
    const held = new Map<string, Held>();
    const failing = startAll(starts, ['a/1', 'a/2', 'a/3'], started, held);
    const other = startAll(starts, ['a/4'], started, held);
    held.get('a/1')?.fail(new Error('store down'));
    await expect(failing).rejects.toThrow('store down');
    // The failed run's remaining lines never start: the next run's line takes the place.
    expect(started).toEqual(['a/1', 'a/4']);
    held.get('a/4')?.settle('ok');
    await expect(other).resolves.toEqual(['ok']);
  });

  it('takes lines that release at once, a hundred thousand of them, without deep recursion', async () => {
    const starts = new LineStarts(1);
    const ids = Array.from({ length: 100_000 }, (_, i) => `a/${i}`);
    let running = 0;
    let most = 0;
    const results = await starts.run(
      ids,
      () => 'a',
      (id, release) => {
        running++;
        most = Math.max(most, running);
        // Released before its promise exists: the next line starts from the loop under way.
        release();
        running--;
        return Promise.resolve(id.length);
      },
    );
    expect(results).toHaveLength(100_000);
    expect(most).toBe(1);
  });

  it('resolves an empty run at once', async () => {
    await expect(
      new LineStarts(4).run(
        [],
        () => 'a',
        async () => 1,
      ),
    ).resolves.toEqual([]);
  });
});
