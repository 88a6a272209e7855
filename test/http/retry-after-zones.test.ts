import { afterEach, describe, expect, it } from 'vitest';
import { parseHttpDate, parseRetryAfter } from '../../src/http/index.js';

/**
 * HTTP-dates are GMT whatever the machine's zone: a parser that read them in local time would
 * pass every test on a machine set to UTC (as CI machines are) and wait hours too long or too
 * short everywhere else. Node reads a change of `process.env.TZ` at once.
 */
const ZONES = [
  // [zone, its offset from UTC on 21 Oct 2026 in minutes, as getTimezoneOffset() gives it]
  ['UTC', 0],
  ['America/New_York', 240],
  ['Asia/Kolkata', -330],
] as const;

const original = process.env.TZ;
afterEach(() => {
  if (original === undefined) delete process.env.TZ;
  else process.env.TZ = original;
});

describe.each(ZONES)('Retry-After dates with TZ=%s', (zone, offset) => {
  it('every HTTP-date form is read as GMT', () => {
    process.env.TZ = zone;
    const when = Date.UTC(2026, 9, 21, 7, 28, 0);
    // The zone really is in effect (otherwise this test would prove nothing).
    expect(new Date(when).getTimezoneOffset()).toBe(offset);
    expect(parseHttpDate('Wed, 21 Oct 2026 07:28:00 GMT')).toBe(when);
    expect(parseHttpDate('Wednesday, 21-Oct-26 07:28:00 GMT', when)).toBe(when);
    expect(parseHttpDate('Wed Oct 21 07:28:00 2026')).toBe(when);
    expect(parseRetryAfter('Wed, 21 Oct 2026 07:28:00 GMT', when - 30_000)).toBe(30_000);
    // Around midnight UTC the local date differs from the GMT one in both zones.
    expect(parseRetryAfter('Thu, 22 Oct 2026 00:10:00 GMT', Date.UTC(2026, 9, 21, 23, 50))).toBe(
      20 * 60_000,
    );
  });
});
