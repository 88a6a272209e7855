export type { RequestBody } from './body.js';
export { BodyFileError } from './body-file.js';
export { classifyError, type FailureContext } from './classify.js';
export type { CookieStore, CookiesOption } from './cookies.js';
export { DEFAULT_ACCEPT_ENCODING, DecompressionError } from './decompress.js';
export {
  closeDefaultSession,
  configureDefaultSession,
  defaultSession,
  del,
  del as delete,
  fetch,
  get,
  head,
  options,
  patch,
  post,
  put,
  request,
} from './default-session.js';
export type { TlsOptions } from './dispatchers.js';
export {
  AttemptTimeoutError,
  BodyTooLargeError,
  BudgetExhaustedError,
  CircuitOpenError,
  ConnectError,
  ConnectionResetError,
  ConnectTimeoutError,
  DoggedError,
  type DoggedErrorOptions,
  HeadersTooLargeError,
  HTTPStatusError,
  IncompleteBodyError,
  InvalidResponseError,
  InvalidURLError,
  MaxRetryError,
  NameResolutionError,
  ProxyError,
  type ProxyErrorOptions,
  ReadTimeoutError,
  type RequestHistoryEntry,
  type RequestPhase,
  RetryAfterTooLongError,
  redactUrl,
  type StatusResponse,
  TLSError,
  TooManyRedirectsError,
  TotalTimeoutError,
  UnreplayableBodyError,
} from './errors.js';
export type { HeadersLike } from './headers.js';
export type { BeforeRequestContext, ErrorContext, SessionHooks } from './hooks.js';
export { type RetryInterceptorOptions, retryInterceptor } from './interceptor.js';
export { NoProxyList, type NoProxyOption } from './no-proxy.js';
export type { GiveUpEvent, RetryEvent } from './observe.js';
export {
  enableOpenTelemetry,
  type OpenTelemetryHandle,
  type OpenTelemetryOptions,
} from './otel-metrics.js';
export {
  DEFAULT_ALLOWED_METHODS,
  DEFAULT_STATUS_FORCELIST,
  type IncrementInput,
  type RetryDelay,
  RetryPolicy,
  type RetryPolicyOptions,
} from './policy.js';
export type { ProxyEnvironmentOptions } from './proxy-env.js';
export { NoProxyAvailableError, ProxyAuthError } from './proxy-errors.js';
export { type ProxyEntry, type ProxyPick, ProxyPool } from './proxy-pool.js';
export type { ProxyPoolOptions, ProxyStrategy, WhenAllBenched } from './proxy-pool-options.js';
export type { ProxyStatistics } from './proxy-statistics.js';
export {
  DEFAULT_SECRET_HEADERS,
  REDACTED,
  Redactor,
  type RedactorOptions,
  redactHeaders,
  redactText,
} from './redact.js';
export { DoggedResponse } from './response.js';
export { formatHttpDate, parseHttpDate, parseRetryAfter } from './retry-after.js';
export {
  type MountOptions,
  type RequestOptions,
  type RetryOption,
  Session,
  type SessionOptions,
} from './session.js';
export type { TimeoutOption, Timeouts } from './timeouts.js';
