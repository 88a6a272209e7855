import { channel } from 'node:diagnostics_channel';
import { describeError, formatDuration } from '../retry/describe.js';
import type { Logger } from '../retry/log.js';
import type { DoggedError } from './errors.js';
import { describeStatus } from './status.js';

/** Published on `dogged:retry` before each sleep, and passed to `beforeRetry` hooks. */
export interface RetryEvent {
  readonly method: string;
  /** The URL, credentials shown as `***@`. */
  readonly url: string;
  /** The attempt that just failed, from 1. */
  readonly attempt: number;
  /** The most attempts the policy allows (`Infinity` when unbounded). */
  readonly maxAttempts: number;
  /** The delay before the next attempt, ms. */
  readonly delayMs: number;
  /**
   * Where the delay came from: `immediate` for the free stale-connection retry, `rotation` for a
   * ban or a proxy failure retried at once through another proxy of the pool.
   */
  readonly delaySource: 'retry-after' | 'backoff' | 'immediate' | 'rotation';
  /** The failure: an error, or undefined when a status is retried. */
  readonly error: DoggedError | undefined;
  /** The retried status, when a response is retried. */
  readonly status: number | undefined;
  /** The proxy the failed attempt went through (credentials removed), if any. */
  readonly proxy: string | undefined;
}

/** Published on `dogged:giveup` when a request fails for good. */
export interface GiveUpEvent {
  readonly method: string;
  readonly url: string;
  readonly attempts: number;
  readonly error: unknown;
}

export const retryChannel = channel('dogged:retry');
export const giveUpChannel = channel('dogged:giveup');

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
type Level = (typeof LEVELS)[number];

/**
 * The logger `DOGGED_LOG=debug|info|warn|error` turns on: lines on stderr at that level and
 * above. Retries are logged at `warn`, every request at `debug`.
 */
export function environmentLogger(env: NodeJS.ProcessEnv = process.env): Logger | undefined {
  const wanted = env.DOGGED_LOG?.trim().toLowerCase();
  if (!wanted || wanted === '0' || wanted === 'off' || wanted === 'false') return undefined;
  const threshold = LEVELS.indexOf(
    (LEVELS as readonly string[]).includes(wanted) ? (wanted as Level) : 'debug',
  );
  const at =
    (level: Level) =>
    (message: string): void => {
      if (LEVELS.indexOf(level) >= threshold) process.stderr.write(`dogged ${level}: ${message}\n`);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/**
 * `GET http://127.0.0.1:8080/status/503 attempt 1/4 failed: 503 Service Unavailable; retrying in 412 ms (backoff)`;
 * through a pool: `... attempt 1/4 via proxy http://127.0.0.1:3128 failed: 403 Forbidden; rotating to another proxy at once`
 */
export function formatRetry(event: RetryEvent): string {
  const of = Number.isFinite(event.maxAttempts) ? `/${event.maxAttempts}` : '';
  const cause = event.error ? describeError(event.error) : describeStatus(event.status ?? 0);
  const when =
    event.delaySource === 'rotation'
      ? 'rotating to another proxy at once'
      : event.delaySource === 'immediate'
        ? 'retrying at once'
        : `retrying in ${formatDuration(event.delayMs)} (${event.delaySource})`;
  const via = event.proxy === undefined ? '' : ` via proxy ${event.proxy}`;
  return `${event.method} ${event.url} attempt ${event.attempt}${of}${via} failed: ${cause}; ${when}`;
}

export function formatGiveUp(event: GiveUpEvent): string {
  return `${event.method} ${event.url} gave up after ${event.attempts} ${event.attempts === 1 ? 'attempt' : 'attempts'}: ${describeError(event.error)}`;
}
