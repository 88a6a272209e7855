export type { RequestBody } from './body.js';
export { classifyError, type FailureContext } from './classify.js';
export {
  closeDefaultSession,
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
export {
  BudgetExhaustedError,
  CircuitOpenError,
  ConnectError,
  ConnectionResetError,
  ConnectTimeoutError,
  DoggedError,
  type DoggedErrorOptions,
  HTTPStatusError,
  IncompleteBodyError,
  InvalidURLError,
  MaxRetryError,
  NameResolutionError,
  ProxyError,
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
export type { GiveUpEvent, RetryEvent } from './observe.js';
export {
  DEFAULT_ALLOWED_METHODS,
  DEFAULT_STATUS_FORCELIST,
  type IncrementInput,
  type RetryDelay,
  RetryPolicy,
  type RetryPolicyOptions,
} from './policy.js';
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
