import { afterAll, beforeAll, expect, it } from 'vitest';
import { FleetGate } from '../../../src/batch/distributed/fleet-gate.js';
import { HostSlots } from '../../../src/batch/distributed/host-slots.js';
import { jobKeys } from '../../../src/batch/distributed/keys.js';
import { available, needs } from '../../support/needs.js';
import { type Sandbox, sandbox } from './distributed-support.js';

let box: Sandbox;
beforeAll(async () => {
  if (available('redis')) box = await sandbox(13);
});
afterAll(async () => {
  await box?.cleanup();
});

/** Three gates on one Redis: three workers of one job, as far as the limits can tell. */
function fleet(
  job: string,
  limits: Partial<ConstructorParameters<typeof FleetGate>[2]> = {},
): FleetGate[] {
  return [0, 1, 2].map(
    () =>
      new FleetGate(box.redis, jobKeys(job), {
        perHost: 4,
        rate: 'none',
        budget: false,
        cooldown: true,
        ...limits,
      }),
  );
}

needs('redis')('FleetGate: the limits every worker of a job shares', () => {
  it('lets at most perHost requests to a host be in flight across all workers', async () => {
    const gates = fleet('slots', { perHost: 4 });
    const admissions = await Promise.all(
      Array.from({ length: 9 }, (_, i) =>
        (gates[i % 3] as FleetGate).admit('a.test:80', { isRetry: false }),
      ),
    );
    const granted = admissions.filter((a) => a.ok);
    expect(granted).toHaveLength(4);
    // The others are sent back to the queue for a moment, not failed.
    for (const a of admissions) if (!a.ok) expect(a.reason).toBe('busy');
    // Another host is not held by the first one's slots.
    expect((await (gates[0] as FleetGate).admit('b.test:80', { isRetry: false })).ok).toBe(true);
    for (const a of granted) if (a.ok) a.release();
    expect((await (gates[1] as FleetGate).admit('a.test:80', { isRetry: false })).ok).toBe(true);
  }, 20_000);

  it('shares one retry budget: retries beyond reserve + 20% of first attempts wait for the next window', async () => {
    // A reserve of 1 retry/s over 5 s = 5 retries; each first attempt deposits 0.2.
    const gates = fleet('budget', {
      perHost: 1000,
      budget: { percentCanRetry: 0.2, minRetriesPerSecond: 1, ttlMs: 5000 },
    });
    let retries = 0;
    let refused = 0;
    for (let i = 0; i < 12; i++) {
      const a = await (gates[i % 3] as FleetGate).admit('c.test:80', { isRetry: true });
      if (a.ok) {
        retries++;
        a.release();
      } else {
        refused++;
        expect(a.reason).toBe('budget');
        expect(a.until).toBeGreaterThan(Date.now());
      }
    }
    expect(retries).toBe(5);
    expect(refused).toBe(7);
    // 10 first attempts deposit 2 retries, wherever they were made.
    for (let i = 0; i < 10; i++) {
      const a = await (gates[i % 3] as FleetGate).admit('c.test:80', { isRetry: false });
      if (a.ok) a.release();
    }
    await Promise.all(gates.map((g) => g.settled())); // deposits are not awaited by admit()
    const more = [];
    for (let i = 0; i < 4; i++)
      more.push((await (gates[i % 3] as FleetGate).admit('c.test:80', { isRetry: true })).ok);
    expect(more).toEqual([true, true, false, false]);
    // A retry that succeeded gives its token back.
    await (gates[2] as FleetGate).refundRetry('c.test:80');
    await (gates[2] as FleetGate).settled(); // refunds are sent with the next flush
    expect((await (gates[0] as FleetGate).admit('c.test:80', { isRetry: true })).ok).toBe(true);
  }, 20_000);

  it('holds every worker off a host during a Retry-After cooldown', async () => {
    const gates = fleet('cool');
    const hold = (gate: FleetGate, host: string, ms: number) =>
      gate.pace.throttled(host, Date.now(), Date.now(), ms);
    await hold(gates[0] as FleetGate, 'd.test:80', 5000);
    const a = await (gates[1] as FleetGate).admit('d.test:80', { isRetry: false });
    expect(a.ok).toBe(false);
    if (!a.ok) {
      expect(a.reason).toBe('cooldown');
      expect(a.until - Date.now()).toBeGreaterThan(4000);
    }
    // A shorter Retry-After does not shorten the hold.
    await hold(gates[2] as FleetGate, 'd.test:80', 100);
    expect(await (gates[2] as FleetGate).pace.pausedUntil('d.test:80')).toBeGreaterThan(
      Date.now() + 4000,
    );
    // A short hold is waited out in-process.
    await hold(gates[0] as FleetGate, 'e.test:80', 300);
    const started = Date.now();
    const b = await (gates[1] as FleetGate).admit('e.test:80', { isRetry: false });
    expect(b.ok).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  }, 20_000);
});

needs('redis')('FleetPace: the fleet estimates the host limit from every worker answers', () => {
  it('a Retry-After throttle cuts to what the whole fleet had accepted, up to the throttle', async () => {
    const gates = fleet('estimate', { rate: 'adaptive' });
    const [a, b] = gates as [FleetGate, FleetGate];
    const host = 'f.test:80';
    // Two workers, each accepted 100 answers a second for the last second: 200/s in all.
    const end = Date.now();
    for (let i = 0; i < 100; i++) {
      const at = end - 1000 + 10 * i;
      a.pace.answered(host, at, at - 5);
      b.pace.answered(host, at + 5, at);
    }
    // The first throttle, with a Retry-After long enough to cut after every answer is in.
    await a.pace.throttled(host, end, end - 5, 2000);
    // (Read through the worker that cut: another's copy of a host not paced yet may be 300 ms old.)
    const rate = await a.pace.rateOf(host, Date.now());
    // The pace restarts at 0.9 times the limit found: the limit is the fleet's 200/s (not one
    // worker's 100/s, nor one diluted by the wait before the cut).
    expect(rate / 0.9).toBeGreaterThan(190);
    expect(rate / 0.9).toBeLessThan(210);
    for (const g of gates) await g.close();
  }, 20_000);
});

needs('redis')("HostSlots: a worker's lease of a host's slots", () => {
  const prefix = { leases: 'dogged:hs:x:slots:lease', wants: 'dogged:hs:x:slots:want' };
  const leased = async (host: string, worker: string): Promise<number> =>
    Number(((await box.redis.hget(`${prefix.leases}:${host}`, worker)) ?? '0:0').split(':')[0]);

  it('never leases more than the worker can use (its concurrency), headroom included', async () => {
    const a = new HostSlots(box.redis, prefix, 64, 'a', 4);
    const host = 'g.test:80';
    const deadline = Date.now() + 5000;
    for (let i = 0; i < 4; i++) expect(await a.acquire(host, deadline)).toBe(true);
    // Unbounded, the headroom (twice the use) would have leased 8 of the 64.
    expect(await leased(host, 'a')).toBe(4);
    await a.close();
  });

  it('a worker short of slots asks the fleet on a schedule, not once per line that waits', async () => {
    let asks = 0;
    const counting = new Proxy(box.redis, {
      get(target, key, receiver) {
        if (key === 'eval')
          return (...args: unknown[]) => {
            asks++;
            return (target.eval as (...a: unknown[]) => unknown).apply(target, args);
          };
        return Reflect.get(target, key, receiver);
      },
    });
    const host = 'h.test:80';
    const holder = new HostSlots(box.redis, prefix, 2, 'holder', 2);
    const deadline = Date.now() + 5000;
    expect(await holder.acquire(host, deadline)).toBe(true);
    expect(await holder.acquire(host, deadline)).toBe(true);
    const short = new HostSlots(counting, prefix, 2, 'short', 64);
    // 60 lines come to wait, 5 ms apart, for 300 ms: none gets a slot (the holder keeps both).
    const waiting: Promise<boolean>[] = [];
    for (let i = 0; i < 60; i++) {
      waiting.push(short.acquire(host, Date.now() + 400));
      await new Promise((r) => setTimeout(r, 5));
    }
    // At most one ask per 25 ms (ASK_MS, jittered) and the first: not one per waiting line.
    expect(asks).toBeLessThanOrEqual(1 + Math.ceil((Date.now() - (deadline - 5000)) / 25));
    expect(asks).toBeLessThan(30);
    expect(new Set(await Promise.all(waiting))).toEqual(new Set([false]));
    await short.close();
    await holder.close();
  });
});
