import type { AttemptState } from './attempt-state.js';
import { describeOutcome, formatDuration } from './describe.js';

/** Anything shaped like `console` or a pino/winston logger. */
export interface Logger {
  error(message: string): void;
  warn(message: string): void;
  info(message: string): void;
  debug(message: string): void;
}

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/** Options of {@link logBeforeSleep}. */
export interface LogBeforeSleepOptions {
  /**
   * The logger method to call.
   * @default 'warn'
   */
  level?: LogLevel;
}

/** `retrying "fetchData" in 1.2 s: attempt 2 threw ReadTimeoutError: ...` */
export function formatRetryLine(state: AttemptState<unknown>): string {
  const who = state.name ? ` ${JSON.stringify(state.name)}` : '';
  const delay = formatDuration(state.upcomingDelayMs ?? 0);
  return `retrying${who} in ${delay}: attempt ${state.attempt} ${describeOutcome(state.outcome)}`;
}

/**
 * A `beforeSleep` hook that logs one line per retry (Tenacity's `before_sleep_log`).
 *
 * @example
 * await retry(fetchData, { name: 'fetchData', beforeSleep: logBeforeSleep(console) });
 * // retrying "fetchData" in 1.2 s: attempt 1 threw Error ECONNRESET: read ECONNRESET
 */
export function logBeforeSleep(
  logger: Logger,
  options: LogBeforeSleepOptions = {},
): (state: AttemptState<unknown>) => void {
  const level = options.level ?? 'warn';
  if (logger === null || typeof logger !== 'object' || typeof logger[level] !== 'function') {
    throw new TypeError(`logBeforeSleep(logger): logger must have a ${level}(message) method`);
  }
  return (state) => logger[level](formatRetryLine(state));
}
