import { isAbortError } from '../retry/transient.js';
import {
  ConnectError,
  ConnectionResetError,
  ConnectTimeoutError,
  DoggedError,
  HeadersTooLargeError,
  IncompleteBodyError,
  NameResolutionError,
  ProxyError,
  ReadTimeoutError,
  type RequestPhase,
  TLSError,
} from './errors.js';
import { classifyHttp2 } from './http2.js';
import { ProxyAuthError } from './proxy-errors.js';

/** What the caller knows about the failed request. */
export interface FailureContext {
  method?: string;
  url?: string;
  /** Known phase; `body` when the failure happened while reading the response body. */
  phase?: RequestPhase;
  attempts?: number;
  reusedSocket?: boolean;
  /** The proxy the attempt went through (credentials are removed from messages). */
  proxy?: string | undefined;
}

/** Marks errors raised while reaching a proxy or opening its tunnel (set by the Session). */
const PROXY_STAGE = Symbol.for('dogged.proxyStage');

/**
 * Marks `error` as a failure of the proxy itself (it happened before the tunnel to the target
 * was open), so it is classified as a `ProxyError`. Returns the error.
 */
export function markProxyFailure(error: unknown): unknown {
  // Stryker disable next-line ConditionalExpression: `error !== null` → true is equivalent: Object.isExtensible(null) is false, so null is never marked either way
  if (error !== null && typeof error === 'object' && Object.isExtensible(error))
    Object.defineProperty(error, PROXY_STAGE, { value: true });
  return error;
}

function isProxyFailure(error: unknown): boolean {
  return (
    error !== null &&
    typeof error === 'object' &&
    (error as Record<symbol, unknown>)[PROXY_STAGE] === true
  );
}

/** undici's words when a proxy answers CONNECT with anything but 200. */
const TUNNEL_REFUSED = /Proxy response \((\d{3})\) !== 200 when HTTP Tunneling/;

const NAME_RESOLUTION = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA']);
const CONNECT = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'EADDRINUSE',
]);
const CONNECT_TIMEOUT = new Set(['UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT', 'ESOCKETTIMEDOUT']);
const DROPPED = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ENETRESET',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED_BY_PEER',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);
const TLS_CODES = new Set([
  'EPROTO',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Maps a raw Node or undici failure to dogged's taxonomy. Returns `undefined` for aborts (the
 * caller rethrows the signal's reason) and the error itself when it is not a network failure
 * (a programming error is never dressed up as a retriable one).
 */
export function classifyError(error: unknown, context: FailureContext = {}): unknown {
  if (error instanceof DoggedError) return error;
  // Before the abort check: undici reports a refused CONNECT as a RequestAbortedError.
  const proxied = classifyProxyFailure(error, context);
  if (proxied) return proxied;
  if (
    isAbortError(error) ||
    codeOf(error) === 'UND_ERR_ABORTED' ||
    codeOf(error) === 'UND_ERR_ABORT'
  )
    return undefined;
  const h2 = classifyHttp2(error, context);
  if (h2) return h2;
  const code = codeOf(error);
  if (code === undefined) {
    // undici's fetch wraps network failures in `TypeError: fetch failed`.
    const cause = (error as { cause?: unknown } | null)?.cause;
    if (error instanceof TypeError && error.message === 'fetch failed' && cause !== undefined)
      return classifyError(cause, context);
    return error;
  }
  const base = {
    cause: error,
    // Stryker disable next-line ConditionalExpression: a field of undefined is no field (DoggedError sets only the defined ones)
    ...(context.method !== undefined && { method: context.method }),
    // Stryker disable next-line ConditionalExpression: a field of undefined is no field (DoggedError sets only the defined ones)
    ...(context.url !== undefined && { url: context.url }),
    // Stryker disable next-line ConditionalExpression: a field of undefined is no field (DoggedError sets only the defined ones)
    ...(context.attempts !== undefined && { attempts: context.attempts }),
  };
  const inBody = context.phase === 'body';

  if (NAME_RESOLUTION.has(code))
    return new NameResolutionError(`could not resolve the host name: ${messageOf(error)}`, base);
  if (CONNECT.has(code)) return new ConnectError(`could not connect: ${messageOf(error)}`, base);
  if (CONNECT_TIMEOUT.has(code) && !inBody)
    return new ConnectTimeoutError(`connect timed out: ${messageOf(error)}`, base);
  if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    return new ReadTimeoutError(`no response head within the read timeout`, {
      ...base,
      phase: 'headers',
    });
  }
  if (code === 'UND_ERR_BODY_TIMEOUT' || (inBody && CONNECT_TIMEOUT.has(code))) {
    return new ReadTimeoutError(`the response body stalled past the read timeout`, {
      ...base,
      phase: 'body',
    });
  }
  if (code === 'UND_ERR_HEADERS_OVERFLOW' || code === 'HPE_HEADER_OVERFLOW') {
    return new HeadersTooLargeError(
      `the response head is larger than the client accepts (a header flood): ${messageOf(error)}`,
      { ...base, phase: 'headers' },
    );
  }
  if (DROPPED.has(code) || code.startsWith('HPE_')) {
    if (inBody || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
      return new IncompleteBodyError(`the response body was cut short: ${messageOf(error)}`, base);
    }
    return new ConnectionResetError(
      `the connection dropped before a complete response: ${messageOf(error)}`,
      {
        ...base,
        // Stryker disable next-line ConditionalExpression: a field of undefined is no field (DoggedError sets only the defined ones)
        ...(context.reusedSocket !== undefined && { reusedSocket: context.reusedSocket }),
      },
    );
  }
  if (
    TLS_CODES.has(code) ||
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_SSL_') ||
    code.startsWith('CERT_')
  ) {
    return new TLSError(`TLS failed: ${messageOf(error)}`, base);
  }
  return error;
}

/** A failure of the proxy itself, or undefined when the error is not one. */
function classifyProxyFailure(error: unknown, context: FailureContext): ProxyError | undefined {
  const message = messageOf(error);
  const code = codeOf(error);
  const tunnel = TUNNEL_REFUSED.exec(message);
  const authRefused =
    code === 'UND_ERR_INVALID_ARG' && message === 'Proxy Authentication Required (407)';
  if (!tunnel && !authRefused && !isProxyFailure(error) && code !== 'UND_ERR_PRX_TLS')
    return undefined;
  const proxy = context.proxy;
  const options = {
    cause: error,
    // Stryker disable next-line ConditionalExpression: a field of undefined is no field (DoggedError sets only the defined ones)
    ...(context.method !== undefined && { method: context.method }),
    // Stryker disable next-line ConditionalExpression: a field of undefined is no field (DoggedError sets only the defined ones)
    ...(context.url !== undefined && { url: context.url }),
    // Stryker disable next-line ConditionalExpression: a field of undefined is no field (DoggedError sets only the defined ones)
    ...(context.attempts !== undefined && { attempts: context.attempts }),
    // Stryker disable next-line ConditionalExpression: a field of undefined is no field (DoggedError sets only the defined ones)
    ...(proxy !== undefined && { proxy }),
  };
  const which = proxy === undefined ? 'the proxy' : `proxy ${proxy}`;
  const status = authRefused ? 407 : tunnel ? Number(tunnel[1]) : undefined;
  if (status === 407 || status === 401) {
    return new ProxyAuthError(
      `${which} refused the credentials (answered CONNECT with ${status}); check the user and password in the proxy URL`,
      { ...options, proxyStatus: status },
    );
  }
  if (status !== undefined) {
    return new ProxyError(
      `${which} could not open a tunnel to the target (answered CONNECT with ${status})`,
      { ...options, proxyStatus: status },
    );
  }
  // Stryker disable next-line ConditionalExpression: the sets hold no undefined; the check narrows the type
  if (code !== undefined && (CONNECT.has(code) || NAME_RESOLUTION.has(code)))
    return new ProxyError(`could not connect to ${which}: ${message}`, options);
  // Stryker disable next-line ConditionalExpression: the set holds no undefined; the check narrows the type
  if (code !== undefined && CONNECT_TIMEOUT.has(code))
    return new ProxyError(`${which} could not be reached in time: ${message}`, options);
  if (code === 'UND_ERR_HEADERS_TIMEOUT')
    return new ProxyError(`${which} did not answer CONNECT within the connect timeout`, options);
  return new ProxyError(`${which} failed: ${message}`, options);
}
