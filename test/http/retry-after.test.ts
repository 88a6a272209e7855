import { describe, expect, it } from 'vitest';
import { formatHttpDate, parseHttpDate, parseRetryAfter } from '../../src/http/index.js';

const NOW = Date.UTC(2015, 9, 21, 7, 27, 30); // Wed, 21 Oct 2015 07:27:30 GMT

describe('parseRetryAfter', () => {
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('120')).toBe(120_000);
    expect(parseRetryAfter(' 0 ')).toBe(0);
    expect(parseRetryAfter('1.5')).toBe(1500);
  });

  it('reads the three HTTP-date forms, relative to now', () => {
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', NOW)).toBe(30_000);
    expect(parseRetryAfter('Wednesday, 21-Oct-15 07:28:00 GMT', NOW)).toBe(30_000);
    expect(parseRetryAfter('Wed Oct 21 07:28:00 2015', NOW)).toBe(30_000);
    expect(parseRetryAfter('Wed Oct  1 07:28:00 2015', Date.UTC(2015, 9, 1, 7, 27, 0))).toBe(
      60_000,
    );
  });

  it('is never negative: a date in the past means now', () => {
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:00:00 GMT', NOW)).toBe(0);
  });

  it('returns undefined for anything malformed', () => {
    for (const bad of [
      '',
      'soon',
      '-5',
      '10s',
      'Wed, 32 Oct 2015 07:28:00 GMT',
      'Wed, 31 Feb 2015 07:28:00 GMT',
      '2015-10-21T07:28:00Z',
      'Wed, 21 Oct 2015 25:28:00 GMT',
    ]) {
      expect(parseRetryAfter(bad, NOW), bad).toBeUndefined();
    }
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });

  it('reads RFC 850 two-digit years as at most 50 years ahead', () => {
    const now = Date.UTC(2026, 0, 1);
    expect(
      new Date(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', now) as number).getUTCFullYear(),
    ).toBe(1994);
    expect(
      new Date(parseHttpDate('Monday, 06-Nov-30 08:49:37 GMT', now) as number).getUTCFullYear(),
    ).toBe(2030);
  });

  it('formats IMF-fixdate', () => {
    expect(formatHttpDate(Date.UTC(1994, 10, 6, 8, 49, 37))).toBe('Sun, 06 Nov 1994 08:49:37 GMT');
    expect(parseRetryAfter(formatHttpDate(NOW + 5000), NOW)).toBe(5000);
  });
});
