import { describe, expect, it } from 'vitest';
import { formatPlan, planRetries } from '../../src/cli/commands/plan.js';
import { parseDuration, parseHeader, parseTimeouts } from '../../src/cli/parse.js';
import { runCli } from '../batch/batch-support.js';

describe('durations and headers on the command line', () => {
  it('reads 500ms, 2s, 1.5s, 1m, 1h and bare milliseconds', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('2s')).toBe(2000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('1m')).toBe(60_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('250')).toBe(250);
    expect(() => parseDuration('soon')).toThrow(/not a duration/);
  });

  it('reads a timeout as one duration, connect,read or connect,read,attempt', () => {
    expect(parseTimeouts('5s')).toEqual({ connect: 5000, read: 5000 });
    expect(parseTimeouts('5s,30s')).toEqual({ connect: 5000, read: 30_000 });
    expect(parseTimeouts('5s,30s,10m')).toEqual({ connect: 5000, read: 30_000, attempt: 600_000 });
    expect(() => parseTimeouts('0s')).toThrow(/more than 0/);
    expect(() => parseTimeouts('1s,2s,3s,4s')).toThrow(/connect,read,attempt/);
  });

  it("reads 'Name: value' headers", () => {
    expect(parseHeader('X-Api-Key:  abc ')).toEqual(['x-api-key', 'abc']);
    expect(() => parseHeader('no colon')).toThrow(/not a header/);
  });
});

describe('dogged plan', () => {
  const flags = { retries: 5, backoff: 1000, maxBackoff: 30_000, jitter: 'full' as const };

  it('samples full jitter: each wait between 0 and the exponential cap, median about half', () => {
    const plan = planRetries(flags, 4000);
    expect(plan.steps).toHaveLength(5);
    for (const [i, step] of plan.steps.entries()) {
      const cap = 1000 * 2 ** i;
      expect(step.wait.min).toBeGreaterThanOrEqual(0);
      expect(step.wait.max).toBeLessThanOrEqual(cap);
      expect(step.wait.median / cap).toBeGreaterThan(0.4);
      expect(step.wait.median / cap).toBeLessThan(0.6);
    }
  });

  it("follows urllib3's formula exactly: 0, then factor times 2^(n-1)", () => {
    const plan = planRetries({ ...flags, jitter: 'urllib3' }, 10);
    expect(plan.steps.map((s) => s.wait.median)).toEqual([0, 2000, 4000, 8000, 16_000]);
    expect(plan.steps.map((s) => s.startsAt.max)).toEqual([0, 2000, 6000, 14_000, 30_000]);
  });

  it('is the same plan for the same seed, another for another seed', () => {
    const plan = planRetries({ ...flags, seed: 3 }, 500);
    expect(planRetries({ ...flags, seed: 3 }, 500)).toEqual(plan);
    const other = planRetries({ ...flags, seed: 4 }, 500);
    expect(other.steps).toHaveLength(plan.steps.length);
    expect(other.steps.map((s) => s.wait.median)).not.toEqual(plan.steps.map((s) => s.wait.median));
  });

  it('draws a table and a timeline', () => {
    const text = formatPlan(planRetries({ ...flags, jitter: 'none', retries: 3 }, 10), 40);
    expect(text).toContain('3 retries (4 attempts)');
    expect(text).toMatch(/retry\s+wait min\s+median\s+max/);
    expect(text).toMatch(/attempt 4 {2}\s*o$/m);
  });

  it('runs from the command line', async () => {
    const { code, stdout } = await runCli([
      'plan',
      '--retries',
      '5',
      '--backoff',
      '1s',
      '--jitter',
      'full',
    ]);
    expect(code).toBe(0);
    expect(stdout).toContain('5 retries (6 attempts)');
    expect(stdout).toContain('timeline');
  });
});
