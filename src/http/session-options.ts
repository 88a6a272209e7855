import type { Dispatcher } from 'undici';
import type { Clock } from '../retry/clock.js';
import type { Logger } from '../retry/log.js';
import type { RequestBody } from './body.js';
import type { CookiesOption } from './cookies.js';
import type { TlsOptions } from './dispatchers.js';
import type { HeadersLike } from './headers.js';
import type { SessionHooks } from './hooks.js';
import type { NoProxyOption } from './no-proxy.js';
import type { RetryPolicy, RetryPolicyOptions } from './policy.js';
import type { ProxyEnvironmentOptions } from './proxy-env.js';
import type { ProxyPool } from './proxy-pool.js';
import type { StormOptions } from './storm.js';
import type { TimeoutOption } from './timeouts.js';

/** What a retry option may be: a policy, its options, a number of retries, or `false` for none. */
export type RetryOption = RetryPolicy | RetryPolicyOptions | number | false;

/** Settings that a `mount()` can override for a URL prefix (storm control included). */
export interface MountOptions extends StormOptions {
  /**
   * The retry policy.
   * @default new RetryPolicy() (3 retries, full-jitter backoff, Retry-After obeyed)
   * @example { retry: { total: 5, backoffFactor: 1000 } }
   */
  retry?: RetryOption;
  /**
   * Timeouts in ms: `{ connect, read, attempt, total }`, `[connect, read]`, or one number for
   * both connect and read. `attempt` bounds one attempt, head and body (a body dripping a byte
   * now and then never trips `read`); `total` bounds the whole request, retries included.
   * `Infinity` means no limit.
   * @default { connect: 10000, read: 30000 } (attempt: 10 minutes for a body read whole, none for a stream; no total)
   * @example { timeout: { connect: 5000, read: 30_000, attempt: 600_000 } }
   */
  timeout?: TimeoutOption;
  /**
   * The largest response body accepted, in bytes, counted after decoding (a gzip bomb stops
   * after about this many decoded bytes; with `decompress: false`, the bytes as received).
   * A larger one fails with `BodyTooLargeError` (not retried): before a byte is read when its
   * Content-Length says so, else as soon as the bytes pass the limit, and its connection is
   * closed. Set, it applies to every way of reading the body, streams included; not set, a body
   * read whole (`text()`, `json()`, `arrayBuffer()`, `bytes()`) is limited to 100 MiB and a
   * stream (`body`, `fetch()`) is not limited. `Infinity`: no limit at all.
   * @default undefined (100 MiB for a body read whole, no limit for a stream)
   * @example { maxBodySize: 10 * 1024 * 1024 } // 10 MiB
   */
  maxBodySize?: number;
  /**
   * Headers sent with every request (a request's own headers win; `undefined` removes one).
   * @default { 'user-agent': 'dogged/<version>', 'accept-encoding': 'gzip, deflate, br' } (no accept-encoding with decompress: false)
   * @example { headers: { authorization: `Bearer ${token}` } }
   */
  headers?: HeadersLike;
  /**
   * Lifecycle hooks, appended to the session's.
   * @default undefined
   * @example { hooks: { response: (res) => console.log(res.status, res.url) } }
   */
  hooks?: SessionHooks;
  /**
   * Redirects followed at most (301/302/303 turn a POST into a GET, 307/308 keep method and
   * body; another origin loses `removeHeadersOnRedirect`). 0 returns the 3xx response; more
   * throws `TooManyRedirectsError` (or returns the 3xx with `raiseOnRedirect: false`).
   * @default 20
   * @example { maxRedirects: 0 }
   */
  maxRedirects?: number;
  /**
   * Proxies to send requests through: a {@link ProxyPool} (ban detection, benching, sticky
   * keys, statistics), or proxy URLs (`http://[user:password@]host:port`) that become a pool
   * with default settings. Every request is tunnelled with CONNECT, http and https targets
   * alike. `false` (or `[]`) sends this prefix direct, whatever the session or the environment
   * say.
   * @default undefined (direct, or the environment's proxy when `proxyFromEnvironment`)
   * @example { proxies: new ProxyPool(['http://127.0.0.1:3128', 'http://127.0.0.1:3129'], { banMs: 60_000 }) }
   */
  proxies?: ProxyPool | readonly (string | URL)[] | false;
  /**
   * Hosts that never go through the proxies, as curl's `NO_PROXY`: `*`, host names (matching
   * their subdomains too; a leading `.` is ignored), IP addresses, CIDR ranges, with an
   * optional `:port`.
   * @default undefined (none)
   * @example { noProxy: ['localhost', '.internal.example', '10.0.0.0/8'] }
   */
  noProxy?: NoProxyOption;
  /**
   * Immediate retries through another proxy, per request, after a ban status or a failure of
   * the proxy itself. They are counted apart from the retry policy's counters: rotating does
   * not use up the retries a 503 will need. When they run out, the ban status (or the proxy
   * error) is the retry policy's to handle, with its backoff.
   * @default 10
   * @example { proxyRotations: 3 }
   */
  proxyRotations?: number;
}

/** Options of {@link Session}. */
export interface SessionOptions extends MountOptions {
  /**
   * Send `Accept-Encoding: gzip, deflate, br` (unless the request sets its own Accept-Encoding)
   * and decode a gzip, deflate (zlib or raw) or br body as it is read, codings listed together
   * undone in reverse order. A body with a coding dogged does not know comes as it was sent.
   * `maxBodySize` counts decoded bytes. A body that does not decode is a `DecompressionError`
   * (an `IncompleteBodyError`: retried like a cut body). The response headers stay as received
   * (`Content-Encoding` and `Content-Length` describe the bytes on the wire). `false`: no
   * Accept-Encoding is added and bodies come as received.
   * @default true
   * @example new Session({ decompress: false }) // raw bytes, as the server sent them
   */
  decompress?: boolean;
  /**
   * Cookies, as a browser or `requests.Session` keeps them: `true` gives the Session a
   * tough-cookie `CookieJar` of its own (RFC 6265: domain, path, Secure, expiry, public
   * suffixes); the `Set-Cookie` of every response (each redirect hop's, each retried attempt's)
   * is stored, and every attempt sends the jar's cookies for its own URL, so a cookie never goes
   * to a host it was not set for. Pass a `CookieJar` (or any object with
   * `getCookieString(url)` and `setCookie(cookie, url)`, sync or async) to share or persist
   * one; `false` for none. A `Cookie` header the request sets is sent too, and wins over a jar
   * cookie of the same name.
   * @default true (a new jar per Session)
   * @example new Session({ cookies: new CookieJar() }) // import { CookieJar } from 'tough-cookie'
   */
  cookies?: CookiesOption;
  /**
   * Offer HTTP/2 to https origins (ALPN `h2`, through undici's own `allowH2`); a server that does
   * not speak it is answered over HTTP/1.1 as before, and plain http stays HTTP/1.1. Retries,
   * timeouts and Retry-After work the same; a stream the server refused (`REFUSED_STREAM`, it
   * processed nothing) or a connection it closed with GOAWAY is retried like a connection reset
   * on HTTP/1.1. Requests through proxies stay HTTP/1.1.
   * @default false
   * @example new Session({ http2: true })
   */
  http2?: boolean;
  /**
   * Prefix for relative URLs: `baseURL + '/' + url`, slashes joined once (no `new URL()` surprises).
   * @default undefined
   * @example { baseURL: 'http://127.0.0.1:8080/api/v1' }
   */
  baseURL?: string | URL;
  /**
   * Where retry lines (`warn`) and request lines (`debug`) go: `console`, pino, winston...
   * `false` silences even `DOGGED_LOG`.
   * @default the stderr logger of `DOGGED_LOG=debug|info|warn`, if set; else none
   * @example { logger: console }
   */
  logger?: Logger | false;
  /**
   * The undici dispatcher to send through; dogged's own keep-alive `Agent` when not given.
   * (With your own dispatcher, the connect timeout is the dispatcher's.)
   * @default a new undici Agent per session
   * @example { dispatcher: new Agent({ connections: 16 }) }
   */
  dispatcher?: Dispatcher;
  /**
   * The clock that retries sleep on (tests pass `FakeClock`).
   * @default the system clock
   * @example { clock: new FakeClock({ autoAdvance: true }) }
   */
  clock?: Clock;
  /**
   * TLS settings for https targets and https proxies: `ca` to trust (a private or test CA),
   * client `cert` and `key`, `rejectUnauthorized`. Not with `dispatcher` (configure yours).
   * @default Node's defaults (verify against its root certificates)
   * @example { tls: { ca: readFileSync('test-ca.pem') } }
   */
  tls?: TlsOptions;
  /**
   * Use the proxies of the `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY` environment variables
   * (lower-case names first) for requests that have no `proxies` of their own. Loopback
   * targets always go direct unless `{ includeLoopback: true }`. The module-level functions
   * (`get`, `fetch`...) have it on; a `new Session()` has it off.
   * @default false
   * @example { proxyFromEnvironment: true }
   */
  proxyFromEnvironment?: boolean | ProxyEnvironmentOptions;
}

/** Options of one request. */
export interface RequestOptions {
  /**
   * The method.
   * @default 'GET'
   */
  method?: string;
  /**
   * Headers for this request, over the session's (`undefined` removes one).
   * @default undefined
   */
  headers?: HeadersLike;
  /**
   * The body: string, Uint8Array, ArrayBuffer, URLSearchParams, FormData, Blob, a stream, or a
   * function returning a fresh body per attempt (makes a stream replayable).
   * @default undefined
   * @example { method: 'POST', body: () => createReadStream('upload.bin') }
   */
  body?: RequestBody;
  /**
   * A value sent as JSON (sets `content-type: application/json`).
   * @default undefined
   * @example { method: 'POST', json: { name: 'Ada' } }
   */
  json?: unknown;
  /**
   * Query parameters appended to the URL.
   * @default undefined
   * @example { query: { page: 2, tags: ['a', 'b'] } }
   */
  query?:
    | Record<
        string,
        string | number | boolean | readonly (string | number | boolean)[] | null | undefined
      >
    | URLSearchParams;
  /**
   * Timeouts for this request, over the session's.
   * @default the session's
   * @example { timeout: { attempt: 60_000 } }
   */
  timeout?: TimeoutOption;
  /**
   * The largest response body accepted for this request, in bytes (see the Session option).
   * @default the session's (or the mount's)
   * @example { maxBodySize: 1_000_000 }
   */
  maxBodySize?: number;
  /**
   * Decode this response's body (see the Session option); `false` for the raw bytes (and no
   * Accept-Encoding added by dogged).
   * @default the session's (true)
   * @example { decompress: false }
   */
  decompress?: boolean;
  /**
   * The retry policy for this request.
   * @default the session's (or the mount's)
   */
  retry?: RetryOption;
  /**
   * Aborts the request (and any retry sleep) at once; rejects with the signal's reason.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Sends an `Idempotency-Key` so the server can deduplicate, which makes any method safe to
   * retry: `true` generates one key per logical request (the same on every attempt), a string
   * is used as given.
   * @default false
   * @example { method: 'POST', json: order, idempotencyKey: true }
   */
  idempotencyKey?: boolean | string;
  /**
   * Redirects followed at most for this request.
   * @default the session's (20)
   * @example { maxRedirects: 0 }
   */
  maxRedirects?: number;
  /**
   * Throw `HTTPStatusError` for a final status of 400 or more (its `response` keeps the body).
   * @default false (like requests: check `ok` or call `raiseForStatus()`)
   */
  throwOnStatus?: boolean;
  /**
   * The sticky key of the request (an account, a crawl session): with a sticky pool, requests
   * with the same key keep going through the same proxy until it is benched.
   * @default undefined (the pool's strategy picks)
   * @example { proxyKey: 'account-42' }
   */
  proxyKey?: string;
  /**
   * Immediate retries through another proxy for this request.
   * @default the session's (or the mount's): 10
   * @example { proxyRotations: 0 } // never rotate this one
   */
  proxyRotations?: number;
}

export const SESSION_KEYS = [
  'retry',
  'timeout',
  'maxBodySize',
  'decompress',
  'cookies',
  'http2',
  'headers',
  'hooks',
  'maxRedirects',
  'baseURL',
  'logger',
  'dispatcher',
  'clock',
  'proxies',
  'noProxy',
  'proxyRotations',
  'tls',
  'proxyFromEnvironment',
  'budget',
  'breaker',
  'rateLimit',
  'cooldown',
] as const;
export const MOUNT_KEYS = [
  'retry',
  'timeout',
  'maxBodySize',
  'headers',
  'hooks',
  'maxRedirects',
  'proxies',
  'noProxy',
  'proxyRotations',
  'budget',
  'breaker',
  'rateLimit',
  'cooldown',
] as const;
export const REQUEST_KEYS = [
  'method',
  'headers',
  'body',
  'json',
  'query',
  'timeout',
  'maxBodySize',
  'decompress',
  'retry',
  'signal',
  'idempotencyKey',
  'maxRedirects',
  'throwOnStatus',
  'proxyKey',
  'proxyRotations',
] as const;
export const REQUEST_HINTS: Record<string, string> = {
  params: 'use query',
  data: 'use body (or json)',
  timeoutMs: 'use timeout',
  maxContentLength: 'use maxBodySize',
  maxBodyLength: 'use maxBodySize (the response body; request bodies are not limited)',
  retries: 'use retry: { total: n }',
  idempotent: 'use idempotencyKey: true',
  proxy: 'use proxies on the Session or mount(), proxyKey on a request',
  sessionKey: 'use proxyKey',
};
