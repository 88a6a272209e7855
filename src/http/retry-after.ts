/**
 * Retry-After (RFC 9110 §10.2.3): either delay-seconds or an HTTP-date in one of its three
 * forms. Pure functions, no I/O.
 */

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY = '(?:mon|tue|wed|thu|fri|sat|sun)';
const LONG_DAY = '(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
const MONTH = '(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)';

/** IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT` */
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ${MONTH} (\\d{4}) ${TIME} GMT$`, 'i');
/** RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT` */
const RFC_850 = new RegExp(`^${LONG_DAY}, (\\d{2})-${MONTH}-(\\d{2}) ${TIME} GMT$`, 'i');
/** asctime: `Sun Nov  6 08:49:37 1994` */
const ASCTIME = new RegExp(`^${DAY} ${MONTH} ( \\d|\\d{2}) ${TIME} (\\d{4})$`, 'i');

function utc(
  year: number,
  month: string,
  day: number,
  h: number,
  m: number,
  s: number,
): number | undefined {
  const monthIndex = MONTHS.indexOf(month.toLowerCase());
  // A minute or second past its range could roll over within the same day: refused here. A
  // day (00, 32, 31 Feb) or an hour (24 to 99) past its range rolls the date over: refused below.
  if (m > 59 || s > 60) return undefined;
  const ms = Date.UTC(year, monthIndex, day, h, m, Math.min(s, 59));
  return new Date(ms).getUTCDate() === day ? ms : undefined;
}

/**
 * Parses an HTTP-date (IMF-fixdate, RFC 850 or asctime) to epoch milliseconds, or undefined.
 * RFC 850's two-digit year is read as the nearest year not more than 50 years ahead of `now`.
 */
export function parseHttpDate(value: string, now: number = Date.now()): number | undefined {
  const text = value.trim();
  let m = IMF_FIXDATE.exec(text);
  if (m)
    return utc(
      Number(m[3]),
      m[2] as string,
      Number(m[1]),
      Number(m[4]),
      Number(m[5]),
      Number(m[6]),
    );
  m = RFC_850.exec(text);
  if (m) {
    const yy = Number(m[3]);
    const thisYear = new Date(now).getUTCFullYear();
    let year = Math.floor(thisYear / 100) * 100 + yy;
    if (year > thisYear + 50) year -= 100;
    return utc(year, m[2] as string, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  }
  m = ASCTIME.exec(text);
  if (m)
    return utc(
      Number(m[6]),
      m[1] as string,
      // Stryker disable next-line MethodExpression: Number(' 6') is 6 already; the trim says what the space is.
      Number((m[2] as string).trim()),
      Number(m[3]),
      Number(m[4]),
      Number(m[5]),
    );
  return undefined;
}

/**
 * The longest delay {@link parseRetryAfter} returns, in ms (2^53 − 1, about 285,000 years): a
 * longer one (`Retry-After: 99999...9`, 400 digits) is read as this, so it stays a number that
 * every comparison and sum handles, and is still far beyond any `maxRetryAfter`.
 */
export const MAX_RETRY_AFTER_MS = Number.MAX_SAFE_INTEGER;

/**
 * The delay a Retry-After value asks for, in milliseconds, never negative and never more than
 * {@link MAX_RETRY_AFTER_MS}; `undefined` when the value is missing or malformed (the caller
 * then falls back to its backoff).
 *
 * @param value - the header value (delay-seconds or an HTTP-date)
 * @param now - the current time in epoch milliseconds, for dates
 * @example
 * parseRetryAfter('120') // 120000
 * parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.UTC(2015, 9, 21, 7, 27, 30)) // 30000
 * parseRetryAfter('soon') // undefined
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  // Missing and empty values fall through both forms: undefined.
  // Stryker disable next-line StringLiteral: any text that is neither form reads as undefined too.
  const text = String(value ?? '').trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Math.min(Number(text) * 1000, MAX_RETRY_AFTER_MS);
  const date = parseHttpDate(text, now);
  return date === undefined ? undefined : Math.min(Math.max(0, date - now), MAX_RETRY_AFTER_MS);
}

/** Formats epoch milliseconds as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`). */
export function formatHttpDate(epochMs: number): string {
  return new Date(epochMs).toUTCString();
}
