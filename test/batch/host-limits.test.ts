import { describe, expect, it } from 'vitest';
import { HostLimits, parseRate } from '../../src/batch/host-limits.js';

describe('per-host limits', () => {
  it('lets at most perHost requests of a host run at once, others unaffected', () => {
    const limits = new HostLimits(2, undefined);
    limits.start('a:80', 0);
    expect(limits.readyAt('a:80', 0)).toBe(0);
    limits.start('a:80', 0);
    expect(limits.readyAt('a:80', 0)).toBe(Number.POSITIVE_INFINITY);
    expect(limits.readyAt('b:80', 0)).toBe(0);
    limits.finish('a:80');
    expect(limits.readyAt('a:80', 0)).toBe(0);
  });

  it('spaces the starts of a host evenly at the rate', () => {
    const limits = new HostLimits(10, 4); // one start every 250 ms
    limits.start('a:80', 1000);
    expect(limits.readyAt('a:80', 1000)).toBe(1250);
    expect(limits.readyAt('a:80', 1250)).toBe(0);
    limits.start('a:80', 1300);
    expect(limits.readyAt('a:80', 1400)).toBe(1550);
    expect(limits.readyAt('b:80', 1400)).toBe(0);
  });

  it('reads rates per second, minute and hour', () => {
    expect(parseRate('10')).toBe(10);
    expect(parseRate('10/s')).toBe(10);
    expect(parseRate('120/m')).toBe(2);
    expect(parseRate('3600/h')).toBe(1);
    expect(() => parseRate('fast')).toThrow(/a rate must be/);
    expect(() => parseRate('0')).toThrow(/a rate must be/);
  });
});
