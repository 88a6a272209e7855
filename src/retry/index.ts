export {
  AdaptiveRate,
  type AdaptiveRateOptions,
  type AdaptiveRateSnapshot,
  type AdaptiveRateState,
} from './adaptive-rate.js';
export type { AttemptState, Outcome } from './attempt-state.js';
export {
  CircuitBreaker,
  type CircuitBreakerJSON,
  type CircuitChangeReason,
  type CircuitPermit,
  type CircuitState,
  type CircuitStateChange,
} from './breaker.js';
export { BrokenCircuitError, type CircuitRefusal } from './breaker-error.js';
export type {
  CircuitBreakerCommonOptions,
  CircuitBreakerOptions,
  ConsecutiveBreakerOptions,
  RatioBreakerOptions,
} from './breaker-options.js';
export { RetryBudget, type RetryBudgetOptions, type RetryBudgetSnapshot } from './budget.js';
export { type Clock, systemClock } from './clock.js';
export { getRetrying, retrying } from './decorator.js';
export { describeError, formatDuration } from './describe.js';
export type { Attempt } from './engine.js';
export { RetryError, TryAgain } from './errors.js';
export type { Listener, Subscription } from './events.js';
export {
  formatRetryLine,
  type LogBeforeSleepOptions,
  type Logger,
  type LogLevel,
  logBeforeSleep,
} from './log.js';
export { defaults, type RetryHook, type RetryOptions } from './options.js';
export { defaultRandom, type RandomSource, seededRandom } from './random.js';
export {
  type RateLimiter,
  TokenBucketLimiter,
  type TokenBucketLimiterOptions,
} from './rate-limiter.js';
export {
  AdaptiveRateLimiter,
  type AdaptiveRateLimiterOptions,
  type AdaptiveRateLimiterSnapshot,
} from './rate-limiter-adaptive.js';
export { retry } from './retry.js';
export {
  type ErrorClass,
  type ErrorMatcher,
  type RetryCondition,
  type RetryConditionLike,
  retryIf,
} from './retry-if.js';
export { Retrying, type RetryingFunction, type RunOptions } from './retrying.js';
export type { RetryStatistics, RunStatistics } from './statistics.js';
export { type StopLike, type StopStrategy, stop } from './stop.js';
export { isAbortError, isTransientError, TRANSIENT_ERROR_CODES } from './transient.js';
export {
  type DecorrelatedJitterOptions,
  type ExponentialJitterOptions,
  type ExponentialOptions,
  type IncrementingOptions,
  type Urllib3BackoffOptions,
  type WaitLike,
  type WaitStrategy,
  wait,
} from './wait.js';
