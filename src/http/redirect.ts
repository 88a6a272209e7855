import { clip } from '../retry/describe.js';
import { NO_BODY, type PreparedBody } from './body.js';
import { InvalidResponseError, redactUrl } from './errors.js';
import type { HeaderRecord } from './headers.js';
import { basicAuthOf, hostNameProblem } from './url-checks.js';

/** Where an attempt goes: what a redirect changes. */
export interface Target {
  readonly method: string;
  readonly origin: string;
  /** Path and query. */
  readonly path: string;
  /** The URL for messages, logs and history: credentials shown as `***@`. */
  readonly url: string;
  readonly headers: HeaderRecord;
  readonly body: PreparedBody;
}

/** Statuses that redirect. */
export const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** Headers that describe a body; they go when a redirect drops the body. */
const BODY_HEADERS = [
  'content-type',
  'content-length',
  'content-encoding',
  'content-language',
  'content-location',
  'transfer-encoding',
];

/**
 * The request a redirect leads to, as browsers and fetch do it: 303 becomes GET (HEAD stays
 * HEAD), 301 and 302 turn a POST into a GET, 307 and 308 keep method and body; the body and its
 * headers go with a method change; a redirect to another origin drops `removeOnCrossOrigin`
 * (credentials, cookies). Undefined when `location` is not an http(s) URL. Throws
 * `InvalidResponseError` when it is one that cannot be fetched: a host name longer than DNS
 * allows, credentials with bad percent-encoding.
 */
export function redirectTarget(
  current: Target,
  status: number,
  location: string,
  removeOnCrossOrigin: readonly string[],
): Target | undefined {
  let next: URL;
  try {
    next = new URL(location, `${current.origin}${current.path}`);
  } catch {
    return undefined;
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') return undefined;
  const unusable = (why: string): InvalidResponseError =>
    new InvalidResponseError(
      `${current.method} ${current.url} was redirected (${status}) to a Location that cannot be fetched: ${why}; the Location was ${JSON.stringify(clip(redactUrl(location) as string))}`,
      { method: current.method, url: current.url },
    );
  const hostProblem = hostNameProblem(next);
  if (hostProblem) throw unusable(hostProblem);
  const authorization = basicAuthOf(next);
  if (authorization === false)
    throw unusable('its user name or password is not valid percent-encoding');
  const headers: HeaderRecord = { ...current.headers };
  let method = current.method;
  let body = current.body;
  if (
    (status === 303 && method !== 'HEAD') ||
    ((status === 301 || status === 302) && method === 'POST')
  ) {
    method = 'GET';
    body = NO_BODY;
    for (const name of BODY_HEADERS) delete headers[name];
  }
  if (next.origin !== current.origin) {
    for (const name of removeOnCrossOrigin) delete headers[name.toLowerCase()];
  }
  // Credentials in a Location header are not followed blindly into logs; they become Basic auth.
  if (authorization !== undefined) headers.authorization = authorization;
  return {
    method,
    origin: next.origin,
    path: `${next.pathname}${next.search}`,
    url: redactUrl(next.href) as string,
    headers,
    body,
  };
}
