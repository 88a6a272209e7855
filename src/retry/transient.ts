/**
 * Which failures are worth another attempt by default.
 *
 * Transient: dogged's own errors marked `retriable`, and the network error codes of Node and
 * undici (a reset, a refusal, a timeout, a failed DNS lookup, a cut body). Never transient:
 * programming errors (`TypeError`, `RangeError`, `SyntaxError`, `ReferenceError`, ...), aborts,
 * and anything else we cannot recognise — retrying a bug only repeats it.
 */

/** Node and undici error codes that describe a network fault, not a bug. */
export const TRANSIENT_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENETRESET',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

const PROGRAMMING_ERRORS = [
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
];

/** An abort: the caller asked to stop. Never retried. */
export function isAbortError(error: unknown): boolean {
  if (error === null || typeof error !== 'object') return false;
  const { name, code } = error as { name?: unknown; code?: unknown };
  return (
    name === 'AbortError' ||
    code === 'ABORT_ERR' ||
    (name === 'TimeoutError' && error instanceof DOMException)
  );
}

/**
 * The default retry condition's test.
 *
 * @example
 * isTransientError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })); // true
 * isTransientError(new TypeError('x is not a function')); // false
 */
export function isTransientError(error: unknown): boolean {
  return isTransient(error, 0);
}

function isTransient(error: unknown, depth: number): boolean {
  if (error === null || typeof error !== 'object' || depth > 5) return false;
  if (isAbortError(error)) return false;
  const { retriable, code, cause } = error as {
    retriable?: unknown;
    code?: unknown;
    cause?: unknown;
  };
  if (typeof retriable === 'boolean') return retriable;
  // Stryker disable next-line ConditionalExpression: `true` for the typeof test is equivalent: the set holds strings only
  if (typeof code === 'string' && TRANSIENT_ERROR_CODES.has(code)) return true;
  if (PROGRAMMING_ERRORS.some((type) => error instanceof type)) {
    // undici's fetch reports every network failure as `TypeError: fetch failed` with the
    // real error as its cause: that one is a network fault, not a bug.
    return (
      error instanceof TypeError &&
      (error as Error).message === 'fetch failed' &&
      isTransient(cause, depth + 1)
    );
  }
  // A library error that wraps a network fault (`new Error('request failed', { cause })`).
  return isTransient(cause, depth + 1);
}
