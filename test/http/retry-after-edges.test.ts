import { describe, expect, it } from 'vitest';
import { parseHttpDate, parseRetryAfter } from '../../src/http/index.js';

/** The edges of Retry-After parsing, each one a mistake a parser could make unseen. */

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

describe('HTTP-dates', () => {
  it('reads every month by its name, in each of the three forms', () => {
    MONTHS.forEach((month, index) => {
      const when = Date.UTC(2026, index, 9, 10, 11, 12);
      expect(parseHttpDate(`Fri, 09 ${month} 2026 10:11:12 GMT`)).toBe(when);
      expect(parseHttpDate(`Friday, 09-${month}-26 10:11:12 GMT`, when)).toBe(when);
      expect(parseHttpDate(`Fri ${month}  9 10:11:12 2026`)).toBe(when);
    });
  });

  it('takes the last day, hour, minute and second of their ranges (a leap second as :59)', () => {
    expect(parseHttpDate('Sat, 31 Oct 2026 00:00:00 GMT')).toBe(Date.UTC(2026, 9, 31));
    expect(parseHttpDate('Wed, 21 Oct 2026 23:59:59 GMT')).toBe(Date.UTC(2026, 9, 21, 23, 59, 59));
    expect(parseHttpDate('Wed, 31 Dec 2026 23:59:60 GMT')).toBe(Date.UTC(2026, 11, 31, 23, 59, 59));
    expect(parseHttpDate('Thu, 01 Jan 2026 00:00:00 GMT')).toBe(Date.UTC(2026, 0, 1));
  });

  it('refuses each field just past its range', () => {
    for (const bad of [
      'Wed, 00 Oct 2026 07:28:00 GMT',
      'Wed, 32 Oct 2026 07:28:00 GMT',
      'Wed, 21 Oct 2026 24:00:00 GMT',
      'Sat, 31 Oct 2026 99:00:00 GMT',
      'Wed, 21 Oct 2026 23:60:00 GMT',
      'Wed, 21 Oct 2026 07:60:00 GMT',
      'Wed, 21 Oct 2026 07:28:61 GMT',
      'Wed, 31 Feb 2026 07:28:00 GMT',
    ])
      expect(parseHttpDate(bad), bad).toBeUndefined();
  });

  it('ignores whitespace around the value', () => {
    expect(parseHttpDate('  Wed, 21 Oct 2026 07:28:00 GMT \t')).toBe(Date.UTC(2026, 9, 21, 7, 28));
  });

  it('reads a two-digit year as the nearest one at most 50 years ahead', () => {
    const now = Date.UTC(2026, 0, 1);
    expect(parseHttpDate('Monday, 06-Nov-76 08:49:37 GMT', now)).toBe(
      Date.UTC(2076, 10, 6, 8, 49, 37),
    );
    expect(parseHttpDate('Monday, 06-Nov-77 08:49:37 GMT', now)).toBe(
      Date.UTC(1977, 10, 6, 8, 49, 37),
    );
  });
});

describe('delay-seconds', () => {
  it('takes decimals, and nothing that only starts like a number', () => {
    expect(parseRetryAfter('1.25')).toBe(1250);
    expect(parseRetryAfter('0')).toBe(0);
    for (const bad of ['1e3', '12abc', '12.5.3', '-5', '.5', '5.', '0x10', ''])
      expect(parseRetryAfter(bad), bad).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});
