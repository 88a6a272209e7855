import { brand } from '../retry/brand.js';
import { clipLongValues, describeError, formatDuration } from '../retry/describe.js';
import { redactText, redactUrl } from './redact.js';

/**
 * Where a request was when it failed; it decides whether retrying is safe.
 * - `connect`: no connection yet, the server cannot have seen the request (safe for any method).
 * - `request`: connected, the request may have been (partly) sent.
 * - `headers`: sent, waiting for the response head.
 * - `body`: the response head arrived; its body failed.
 * - `none`: not tied to one attempt (a give-up, a validation error).
 */
export type RequestPhase = 'connect' | 'request' | 'headers' | 'body' | 'none';

/** What every dogged error can be constructed with, so users can simulate failures in tests. */
export interface DoggedErrorOptions {
  /** The underlying error (a Node or undici error, the last failure of a give-up...). */
  cause?: unknown;
  /** The request's method, upper case. */
  method?: string;
  /** The request's URL, credentials shown as `***@`. */
  url?: string;
  /** Attempts made when this error was raised. @default 1 */
  attempts?: number;
  /** Where the request was; each class has a sensible default. */
  phase?: RequestPhase;
}

export { redactUrl } from './redact.js';

/**
 * The base of every dogged HTTP error: a stable `code`, whether a retry may help (`retriable`),
 * the request (`method`, `url` with its credentials shown as `***@`), `attempts`, `phase` and `cause`.
 *
 * @example
 * try { await get(url) } catch (err) {
 *   if (err instanceof DoggedError) console.error(err.code, err.retriable, err.attempts);
 * }
 */
export class DoggedError extends Error {
  override name = 'DoggedError';
  /** Stable, machine-readable. */
  readonly code: string = 'ERR_DOGGED';
  /** Whether another attempt could succeed (the policy still decides whether to make it). */
  readonly retriable: boolean = false;
  readonly method: string | undefined;
  readonly url: string | undefined;
  attempts: number;
  readonly phase: RequestPhase;

  constructor(message: string, options: DoggedErrorOptions = {}) {
    // Whoever built the message, it never carries URL credentials or secret header values; a
    // value a server chose (a host, a Location, a URL) may be a megabyte long: each long one is
    // cut to 200 characters with its length, so a message stays one readable line.
    super(
      clipLongValues(redactText(message)),
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.method = options.method;
    this.url = redactUrl(options.url);
    this.attempts = options.attempts ?? 1;
    this.phase = options.phase ?? 'none';
  }

  /** True when the server may have received (and acted on) the request. */
  get mayHaveReachedServer(): boolean {
    return this.phase !== 'connect' && this.phase !== 'none';
  }

  /** `GET http://host/path`, for messages. */
  protected get target(): string {
    return [this.method, this.url].filter(Boolean).join(' ');
  }
}
brand(DoggedError, 'DoggedError');

/** Could not connect: refused, unreachable, reset before any response byte. */
export class ConnectError extends DoggedError {
  override name = 'ConnectError';
  override readonly code: string = 'ERR_DOGGED_CONNECT';
  override readonly retriable: boolean = true;
  constructor(message: string, options: DoggedErrorOptions = {}) {
    super(message, { phase: 'connect', ...options });
  }
}
brand(ConnectError, 'ConnectError');

/** The host name did not resolve (ENOTFOUND, EAI_AGAIN). */
export class NameResolutionError extends ConnectError {
  override name = 'NameResolutionError';
  override readonly code: string = 'ERR_DOGGED_NAME_RESOLUTION';
}
brand(NameResolutionError, 'NameResolutionError');

/** No TCP connection within the connect timeout. */
export class ConnectTimeoutError extends ConnectError {
  override name = 'ConnectTimeoutError';
  override readonly code: string = 'ERR_DOGGED_CONNECT_TIMEOUT';
}
brand(ConnectTimeoutError, 'ConnectTimeoutError');

/** Connected, but the response head or body did not come within the read timeout. */
export class ReadTimeoutError extends DoggedError {
  override name = 'ReadTimeoutError';
  override readonly code: string = 'ERR_DOGGED_READ_TIMEOUT';
  override readonly retriable: boolean = true;
  constructor(message: string, options: DoggedErrorOptions = {}) {
    super(message, { phase: 'headers', ...options });
  }
}
brand(ReadTimeoutError, 'ReadTimeoutError');

/**
 * One attempt took longer than `timeout.attempt` (head and body together): a server that keeps
 * the connection busy with a byte now and then never trips the read timeout, which only sees
 * silences. A kind of read timeout: retriable, exit code 28 in the CLI.
 */
export class AttemptTimeoutError extends ReadTimeoutError {
  override name = 'AttemptTimeoutError';
  override readonly code: string = 'ERR_DOGGED_ATTEMPT_TIMEOUT';
  /** The deadline of one attempt that passed, in milliseconds. */
  readonly timeoutMs: number;
  constructor(message: string, options: DoggedErrorOptions & { timeoutMs: number }) {
    super(message, options);
    this.timeoutMs = options.timeoutMs;
  }
}
brand(AttemptTimeoutError, 'AttemptTimeoutError');

/**
 * The connection dropped after it was established and before a complete response head: a
 * `ConnectError` (as in requests), but the server may have acted on the request, so only
 * replay-safe requests are retried (urllib3's `ProtocolError`).
 */
export class ConnectionResetError extends ConnectError {
  override name = 'ConnectionResetError';
  override readonly code: string = 'ERR_DOGGED_CONNECTION_RESET';
  /** True when the socket was a reused keep-alive connection (the stale-connection race). */
  readonly reusedSocket: boolean;
  constructor(message: string, options: DoggedErrorOptions & { reusedSocket?: boolean } = {}) {
    super(message, { phase: 'headers', ...options });
    this.reusedSocket = options.reusedSocket ?? false;
  }
}
brand(ConnectionResetError, 'ConnectionResetError');

/** The response body was cut short: truncated chunked encoding, or fewer bytes than Content-Length. */
export class IncompleteBodyError extends DoggedError {
  override name = 'IncompleteBodyError';
  override readonly code: string = 'ERR_DOGGED_INCOMPLETE_BODY';
  override readonly retriable: boolean = true;
  /** Bytes received before the cut, when known. */
  readonly received: number | undefined;
  /** Bytes announced by Content-Length, when known. */
  readonly expected: number | undefined;
  constructor(
    message: string,
    options: DoggedErrorOptions & { received?: number; expected?: number } = {},
  ) {
    super(message, { phase: 'body', ...options });
    this.received = options.received;
    this.expected = options.expected;
  }
}
brand(IncompleteBodyError, 'IncompleteBodyError');

/**
 * The response body is larger than the limit (`maxBodySize`, `--max-body`): its Content-Length
 * said so before a byte was read, or the bytes received passed it (reading stopped there and the
 * connection was closed). Not retried: the next attempt would be as large.
 */
export class BodyTooLargeError extends DoggedError {
  override name = 'BodyTooLargeError';
  override readonly code: string = 'ERR_DOGGED_BODY_TOO_LARGE';
  /** The limit, in bytes. */
  readonly limit: number;
  /** Bytes received when reading stopped; 0 when the Content-Length alone was too large. */
  readonly received: number;
  /** The Content-Length the server announced, when it sent one. */
  readonly contentLength: number | undefined;
  constructor(
    message: string,
    options: DoggedErrorOptions & { limit: number; received: number; contentLength?: number },
  ) {
    super(message, { phase: 'body', ...options });
    this.limit = options.limit;
    this.received = options.received;
    this.contentLength = options.contentLength;
  }
}
brand(BodyTooLargeError, 'BodyTooLargeError');

/** What a proxy error knows about the proxy. */
export interface ProxyErrorOptions extends DoggedErrorOptions {
  /** The proxy's URL; credentials are replaced by `***@` before it is stored. */
  proxy?: string;
  /** The status the proxy answered a CONNECT with, when it answered. */
  proxyStatus?: number;
}

/**
 * A proxy refused, failed or could not be reached (connection refused, CONNECT answered with
 * an error, tunnel closed). The request never reached its target, so any method may be retried
 * through another proxy.
 */
export class ProxyError extends DoggedError {
  override name = 'ProxyError';
  override readonly code: string = 'ERR_DOGGED_PROXY';
  override readonly retriable: boolean = true;
  /** The proxy, without credentials (`http://127.0.0.1:3128`). */
  readonly proxy: string | undefined;
  /** The status of the proxy's answer to CONNECT (407, 502...), when it answered. */
  readonly proxyStatus: number | undefined;
  constructor(message: string, options: ProxyErrorOptions = {}) {
    super(message, { phase: 'connect', ...options });
    this.proxy = redactUrl(options.proxy);
    this.proxyStatus = options.proxyStatus;
  }
}
brand(ProxyError, 'ProxyError');

/** TLS failed (bad certificate, handshake error). Never retried: it will fail the same way. */
export class TLSError extends DoggedError {
  override name = 'TLSError';
  override readonly code: string = 'ERR_DOGGED_TLS';
  constructor(message: string, options: DoggedErrorOptions = {}) {
    super(message, { phase: 'connect', ...options });
  }
}
brand(TLSError, 'TLSError');

/** The URL is not a valid absolute http(s) URL (after `baseURL` was applied). */
export class InvalidURLError extends DoggedError {
  override name = 'InvalidURLError';
  override readonly code: string = 'ERR_DOGGED_INVALID_URL';
}
brand(InvalidURLError, 'InvalidURLError');

/**
 * The server's answer cannot be used as HTTP: a `Location` that is not a usable URL (bad
 * percent-encoding, a host name longer than DNS allows), a malformed response head. Not
 * retried: the server would answer the same. The CLI exits 8 (curl's "weird server reply").
 */
export class InvalidResponseError extends DoggedError {
  override name = 'InvalidResponseError';
  override readonly code: string = 'ERR_DOGGED_INVALID_RESPONSE';
  constructor(message: string, options: DoggedErrorOptions = {}) {
    super(message, { phase: 'headers', ...options });
  }
}
brand(InvalidResponseError, 'InvalidResponseError');

/**
 * The response head is larger than the client accepts (undici's `maxHeaderSize`, 16 KiB by
 * default): a header flood. Not retried. The CLI exits 100 (curl's `CURLE_TOO_LARGE`).
 */
export class HeadersTooLargeError extends InvalidResponseError {
  override name = 'HeadersTooLargeError';
  override readonly code: string = 'ERR_DOGGED_HEADERS_TOO_LARGE';
}
brand(HeadersTooLargeError, 'HeadersTooLargeError');

/** A response that carries its status: thrown for a status >= 400 (`raiseForStatus`, give-ups). */
export interface StatusResponse {
  readonly status: number;
  readonly statusText?: string;
  readonly url: string;
  readonly headers: Headers;
}

/** The server answered with an error status. `response` is the (drained) final response. */
export class HTTPStatusError extends DoggedError {
  override name = 'HTTPStatusError';
  override readonly code: string = 'ERR_DOGGED_HTTP_STATUS';
  override readonly retriable: boolean;
  readonly status: number;
  readonly response: StatusResponse | undefined;
  constructor(
    message: string,
    options: DoggedErrorOptions & {
      status: number;
      response?: StatusResponse;
      retriable?: boolean;
    },
  ) {
    super(message, { phase: 'body', ...options });
    this.status = options.status;
    this.response = options.response;
    this.retriable = options.retriable ?? [408, 429, 500, 502, 503, 504].includes(options.status);
  }
}
brand(HTTPStatusError, 'HTTPStatusError');

/** One entry of a policy's history: what happened on one attempt. */
export interface RequestHistoryEntry {
  readonly method: string;
  readonly url: string;
  /** The error of that attempt, if it failed without a response. */
  readonly error: DoggedError | undefined;
  /** The status of that attempt's response, if any. */
  readonly status: number | undefined;
  /** Where a redirect pointed, for redirects. */
  readonly redirectLocation: string | undefined;
}

/** The retries ran out. `reason` is the last error, or the last response for a status. */
export class MaxRetryError extends DoggedError {
  override name = 'MaxRetryError';
  override readonly code: string = 'ERR_DOGGED_MAX_RETRIES';
  readonly history: readonly RequestHistoryEntry[];
  readonly reason: DoggedError | StatusResponse | undefined;
  /** The final response when the last attempt got one (its body was drained). */
  readonly response: StatusResponse | undefined;
  constructor(
    message: string,
    options: DoggedErrorOptions & {
      history?: readonly RequestHistoryEntry[];
      reason?: DoggedError | StatusResponse;
      response?: StatusResponse;
    },
  ) {
    super(message, options);
    this.history = options.history ?? [];
    this.reason = options.reason;
    this.response = options.response;
  }
}
brand(MaxRetryError, 'MaxRetryError');

/** A Retry-After asked for more than `maxRetryAfter`: no sleep, the retries end here. */
export class RetryAfterTooLongError extends DoggedError {
  override name = 'RetryAfterTooLongError';
  override readonly code: string = 'ERR_DOGGED_RETRY_AFTER_TOO_LONG';
  /** The delay the server asked for, in milliseconds. */
  readonly retryAfterMs: number;
  /** The limit it exceeded. */
  readonly maxRetryAfterMs: number;
  readonly response: StatusResponse | undefined;
  constructor(
    options: DoggedErrorOptions & {
      retryAfterMs: number;
      maxRetryAfterMs: number;
      response?: StatusResponse;
    },
  ) {
    super(
      `Retry-After of ${formatDuration(options.retryAfterMs)} exceeds maxRetryAfter ${formatDuration(options.maxRetryAfterMs)}` +
        `${options.url ? ` for ${[options.method, redactUrl(options.url)].filter(Boolean).join(' ')}` : ''}; ` +
        'raise maxRetryAfter or schedule the request later',
      { phase: 'none', ...options },
    );
    this.retryAfterMs = options.retryAfterMs;
    this.maxRetryAfterMs = options.maxRetryAfterMs;
    this.response = options.response;
  }
}
brand(RetryAfterTooLongError, 'RetryAfterTooLongError');

/** The total deadline (`timeout.total`) passed, or the next sleep would have crossed it. */
export class TotalTimeoutError extends DoggedError {
  override name = 'TotalTimeoutError';
  override readonly code: string = 'ERR_DOGGED_TOTAL_TIMEOUT';
  constructor(message: string, options: DoggedErrorOptions = {}) {
    super(message, { phase: 'none', ...options });
  }
}
brand(TotalTimeoutError, 'TotalTimeoutError');

/** A retry was needed but the request body (a consumed stream) cannot be sent again. */
export class UnreplayableBodyError extends DoggedError {
  override name = 'UnreplayableBodyError';
  override readonly code: string = 'ERR_DOGGED_UNREPLAYABLE_BODY';
  constructor(options: DoggedErrorOptions) {
    super(
      `${[options.method, redactUrl(options.url)].filter(Boolean).join(' ')} failed (${describeError(options.cause)}) and was not ` +
        'retried: its body is a stream that was already consumed. Pass a string, a Buffer, or a function ' +
        'returning a fresh stream (body: () => createReadStream(path)) to make it replayable.',
      { phase: 'none', ...options },
    );
  }
}
brand(UnreplayableBodyError, 'UnreplayableBodyError');

/** The retry budget is spent: failing fast instead of adding load. `cause` is the real last outcome. */
export class BudgetExhaustedError extends DoggedError {
  override name = 'BudgetExhaustedError';
  override readonly code: string = 'ERR_DOGGED_BUDGET_EXHAUSTED';
}
brand(BudgetExhaustedError, 'BudgetExhaustedError');

/** The circuit is open: failing fast. */
export class CircuitOpenError extends DoggedError {
  override name = 'CircuitOpenError';
  override readonly code: string = 'ERR_DOGGED_CIRCUIT_OPEN';
}
brand(CircuitOpenError, 'CircuitOpenError');

/** More redirects than `maxRedirects` (or the policy's `redirect` counter) allow. */
export class TooManyRedirectsError extends DoggedError {
  override name = 'TooManyRedirectsError';
  override readonly code: string = 'ERR_DOGGED_TOO_MANY_REDIRECTS';
  readonly history: readonly RequestHistoryEntry[];
  /** The last redirect response (drained). */
  readonly response: StatusResponse | undefined;
  constructor(
    message: string,
    options: DoggedErrorOptions & {
      history?: readonly RequestHistoryEntry[];
      response?: StatusResponse;
    },
  ) {
    super(message, { phase: 'none', ...options });
    this.history = options.history ?? [];
    this.response = options.response;
  }
}
brand(TooManyRedirectsError, 'TooManyRedirectsError');
