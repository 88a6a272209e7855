import type { OutgoingHttpHeaders } from 'node:http';
import { badParameter, type QueryReader } from '../params.js';
import type { ParamSpec } from '../route.js';

/** The three ways an endpoint can be told to send `Retry-After`. */
export const RETRY_AFTER_PARAMS: readonly ParamSpec[] = [
  { name: 'retry-after', description: 'Send Retry-After as delta-seconds (a whole number).' },
  {
    name: 'retry-after-date',
    description: 'Send Retry-After as an HTTP date: an ISO-8601 instant, sent as IMF-fixdate.',
  },
  {
    name: 'retry-after-raw',
    description: 'Send this exact Retry-After value, valid or not (for malformed-header tests).',
  },
];

/** Characters Node refuses in a header value (it would throw ERR_INVALID_CHAR). */
const INVALID_HEADER_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

/** Checks a value the client wants sent as a header verbatim. */
export function headerValue(name: string, value: string): string {
  if (INVALID_HEADER_CHAR.test(value)) {
    throw badParameter(name, `${name} contains characters that cannot appear in a header value`);
  }
  return value;
}

/** The `Retry-After` header the query asks for; empty when it asks for none. */
export function retryAfterHeaders(query: QueryReader): OutgoingHttpHeaders {
  const given = RETRY_AFTER_PARAMS.map((p) => p.name).filter(
    (name) => query.string(name) !== undefined,
  );
  if (given.length > 1) {
    throw badParameter(given[1] ?? '', `give only one of ${given.join(', ')}`);
  }
  const seconds = query.optionalInteger('retry-after', { min: 0 });
  if (seconds !== undefined) return { 'retry-after': String(seconds) };
  const date = query.string('retry-after-date');
  if (date !== undefined) {
    const ms = Date.parse(date);
    if (Number.isNaN(ms)) {
      throw badParameter(
        'retry-after-date',
        `retry-after-date must be an ISO-8601 date such as 2030-01-01T00:00:00Z, got ${JSON.stringify(date)}`,
      );
    }
    return { 'retry-after': new Date(ms).toUTCString() };
  }
  const raw = query.string('retry-after-raw');
  if (raw !== undefined) return { 'retry-after': headerValue('retry-after-raw', raw) };
  return {};
}
