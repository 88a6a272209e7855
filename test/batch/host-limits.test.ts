import { describe, expect, it } from 'vitest';
import { HostLimits, parseHostRate, parseRate } from '../../src/batch/host-limits.js';
import { seededRandom } from '../../src/retry/index.js';

const limits = (rate: number | 'adaptive' | 'none', perHost = 10) =>
  new HostLimits({ perHost, rate, maxPauseMs: 30_000, random: seededRandom(1) });

describe('per-host limits', () => {
  it('lets at most perHost requests of a host run at once, others unaffected', () => {
    const hosts = limits('none', 2);
    hosts.start('a:80', 0);
    expect(hosts.readyAt('a:80', 0)).toBe(0);
    hosts.start('a:80', 0);
    expect(hosts.readyAt('a:80', 0)).toBe(Number.POSITIVE_INFINITY);
    expect(hosts.readyAt('b:80', 0)).toBe(0);
    hosts.finish('a:80');
    expect(hosts.readyAt('a:80', 0)).toBe(0);
  });

  it('spaces the starts of a host evenly at a fixed rate', () => {
    const hosts = limits(4); // one start every 250 ms
    hosts.start('a:80', 1000);
    expect(hosts.readyAt('a:80', 1000)).toBe(1250);
    expect(hosts.readyAt('a:80', 1250)).toBe(0);
    // Started 50 ms after its slot (a late timer): the schedule holds, the next slot is 1500.
    hosts.start('a:80', 1300);
    expect(hosts.readyAt('a:80', 1400)).toBe(1500);
    // Started long after its slot (the host was idle): a new schedule from now.
    hosts.start('a:80', 5000);
    expect(hosts.readyAt('a:80', 5000)).toBe(5250);
    expect(hosts.readyAt('b:80', 1400)).toBe(0);
  });

  it('adaptive: does not pace a host until it throttles, then paces it under what it accepted', () => {
    const hosts = limits('adaptive');
    for (let t = 0; t < 500; t += 10) {
      hosts.start('a:80', t);
      expect(hosts.rateOf('a:80', t)).toBe(Number.POSITIVE_INFINITY);
      hosts.answered('a:80', t + 10, t);
      hosts.finish('a:80');
    }
    hosts.start('a:80', 500);
    hosts.throttled('a:80', 510, 500, undefined);
    hosts.finish('a:80');
    // 50 answers and the throttle over 500 ms: 102/s, paced at 0.9 × that.
    expect(hosts.rateOf('a:80', 510)).toBeCloseTo(0.9 * 102, 6);
    expect(hosts.rateOf('b:80', 510)).toBe(Number.POSITIVE_INFINITY);
  });

  it('a fixed rate is a cap: the host still slows down below it when it throttles', () => {
    const hosts = limits(50);
    expect(hosts.rateOf('a:80', 0)).toBe(50);
    for (let t = 0; t < 1000; t += 40) hosts.answered('a:80', t + 5, t); // 25/s accepted
    hosts.throttled('a:80', 1000, 999, undefined);
    expect(hosts.rateOf('a:80', 1000)).toBeLessThan(25);
  });

  it('a throttle with Retry-After pauses the whole host for it, once per round of requests', () => {
    const hosts = limits('adaptive');
    for (let i = 0; i < 3; i++) hosts.start('a:80', 100);
    expect(hosts.throttled('a:80', 200, 100, 1000)).toBe(1200);
    expect(hosts.readyAt('a:80', 500)).toBe(1200);
    // The other two were in flight when the pause began: they do not extend it.
    expect(hosts.throttled('a:80', 1100, 100, 1000)).toBe(1200);
    expect(hosts.throttled('a:80', 1150, 100, 1000)).toBe(1200);
    // A request sent after the pause began and throttled again does.
    expect(hosts.throttled('a:80', 1300, 1250, 1000)).toBe(2300);
  });

  it('a throttle without Retry-After pauses the host for a pacing interval, doubled per throttle in a row', () => {
    const hosts = limits(10); // 100 ms apart
    for (let t = 0; t < 1000; t += 100) hosts.answered('a:80', t + 5, t); // 10/s accepted
    const first = hosts.throttled('a:80', 1000, 1000, undefined) - 1000;
    const second = hosts.throttled('a:80', 2000, 2000, undefined) - 2000;
    const third = hosts.throttled('a:80', 3000, 3000, undefined) - 3000;
    // 0.9 × 10/s after the cut: an interval of 111 ms, drawn in its upper half.
    expect(first).toBeGreaterThanOrEqual(1000 / 9 / 2);
    expect(first).toBeLessThanOrEqual(1000 / 9);
    expect(second).toBeGreaterThan(first);
    expect(third).toBeGreaterThan(second);
    hosts.answered('a:80', 3500, 3400);
    expect(hosts.throttled('a:80', 4000, 4000, undefined) - 4000).toBeLessThan(third);
  });

  it('reads rates per second, minute and hour, and the words adaptive and none', () => {
    expect(parseRate('10')).toBe(10);
    expect(parseRate('10/s')).toBe(10);
    expect(parseRate('120/m')).toBe(2);
    expect(parseRate('3600/h')).toBe(1);
    expect(parseHostRate('adaptive')).toBe('adaptive');
    expect(parseHostRate('None')).toBe('none');
    expect(parseHostRate('5/s')).toBe(5);
    expect(() => parseRate('fast')).toThrow(/a rate must be/);
    expect(() => parseRate('0')).toThrow(/a rate must be/);
  });

  it('an outage (20 failures in a row) pauses the host, probes it one request at a time, and says the lines wait', () => {
    const hosts = limits('adaptive', 4);
    for (let i = 0; i < 19; i++) expect(hosts.failed('a:80', 1000 + i, 1000 + i)).toBeUndefined();
    const until = hosts.failed('a:80', 1019, 1019) as number;
    expect(until).toBeGreaterThanOrEqual(1019 + 125);
    expect(until).toBeLessThanOrEqual(1019 + 250);
    expect(hosts.readyAt('a:80', 1100)).toBe(until);
    hosts.start('a:80', until); // the probe
    expect(hosts.readyAt('a:80', until)).toBe(Number.POSITIVE_INFINITY);
    // The probe fails: a longer pause (doubled), still one at a time.
    hosts.finish('a:80');
    const next = hosts.failed('a:80', until + 5, until) as number;
    expect(next - (until + 5)).toBeGreaterThanOrEqual(250);
    // An answer ends the outage: full concurrency, no pause.
    hosts.answered('a:80', next + 10, next);
    hosts.start('a:80', next + 10);
    expect(hosts.readyAt('a:80', next + 10)).toBe(0);
    expect(hosts.failed('a:80', next + 20, next + 20)).toBeUndefined();
  });

  it('a host down for more than 30 s is dead: its lines spend their retries again', () => {
    const hosts = limits('adaptive', 4);
    for (let i = 0; i < 20; i++) hosts.failed('a:80', 1000, 1000);
    expect(hosts.failed('a:80', 20_000, 20_000)).toBeGreaterThan(20_000);
    expect(hosts.failed('a:80', 31_001, 31_001)).toBeUndefined();
    expect(hosts.readyAt('a:80', 40_000)).toBe(0);
  });

  it('a throttle is an answer: it ends a run of failures', () => {
    const hosts = limits('adaptive', 4);
    for (let i = 0; i < 19; i++) hosts.failed('a:80', 1000, 1000);
    hosts.throttled('a:80', 1001, 1001, 0);
    expect(hosts.failed('a:80', 1002, 1002)).toBeUndefined();
  });
});
