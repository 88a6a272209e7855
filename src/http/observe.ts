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

// --- Request lifecycle channels (issue 18: OpenTelemetry spans) ---------------------------
// Published by the Session's Exchange only when `hasSubscribers` (no allocation otherwise).
// `request` is an opaque object, the same for every event of one logical request.

/** `dogged:request:start`: a logical request begins (before its first attempt). */
export interface RequestStartMessage {
  readonly request: object;
  readonly method: string;
  /** The URL, credentials shown as `***@`. */
  readonly url: string;
  /** `http://host:port` of the URL. */
  readonly origin: string;
}
/** `dogged:request:end`: the logical request resolved with a response or rejected. */
export interface RequestEndMessage {
  readonly request: object;
  /** The status returned, when it resolved. */
  readonly status: number | undefined;
  /** What it rejected with, when it did. */
  readonly error: unknown;
  readonly attempts: number;
}
/**
 * `dogged:attempt:start`: an attempt is about to be sent. A subscriber may replace `headers` by
 * a copy with more headers (a `traceparent`); the attempt sends what `headers` holds then.
 */
export interface AttemptStartMessage {
  readonly request: object;
  /** From 1. */
  readonly attempt: number;
  readonly method: string;
  readonly url: string;
  readonly origin: string;
  headers: Record<string, string | string[] | undefined>;
}
/** `dogged:attempt:end`: the head of an attempt's response arrived, or the attempt failed. */
export interface AttemptEndMessage {
  readonly request: object;
  readonly attempt: number;
  readonly status: number | undefined;
  /** The raw failure (undici's error), when no response came. */
  readonly error: unknown;
}
/** `dogged:request:retry`: the {@link RetryEvent} of `dogged:retry`, with its request. */
export interface RequestRetryMessage {
  readonly request: object;
  readonly event: RetryEvent;
}
/** `dogged:budget:rejected`: a retry was refused by the origin's retry budget. */
export interface BudgetRejectedMessage {
  readonly request: object;
  readonly origin: string;
}
/** `dogged:breaker:state`: an origin's circuit breaker changed state. */
export interface BreakerStateMessage {
  readonly origin: string;
  readonly from: 'closed' | 'open' | 'half-open';
  readonly to: 'closed' | 'open' | 'half-open';
  readonly reason: string;
}
/** `dogged:cooldown`: a Retry-After began holding an origin's new requests for `ms`. */
export interface CooldownMessage {
  readonly origin: string;
  readonly ms: number;
}
/** `dogged:wait`: an attempt waited `ms` for an origin's cooldown or rate limit. */
export interface WaitMessage {
  readonly request: object | undefined;
  readonly origin: string;
  readonly reason: 'cooldown' | 'rate-limit';
  readonly ms: number;
}

export const requestStartChannel = channel('dogged:request:start');
export const requestEndChannel = channel('dogged:request:end');
export const attemptStartChannel = channel('dogged:attempt:start');
export const attemptEndChannel = channel('dogged:attempt:end');
export const requestRetryChannel = channel('dogged:request:retry');
export const budgetRejectedChannel = channel('dogged:budget:rejected');
export const breakerStateChannel = channel('dogged:breaker:state');
export const cooldownChannel = channel('dogged:cooldown');
export const waitChannel = channel('dogged:wait');

type Described = { readonly method: string; readonly url: string; readonly origin: string };

/** Publishes `dogged:request:start` (call it when it has subscribers). */
export function publishRequestStart(request: object, target: Described): void {
  const message: RequestStartMessage = {
    request,
    method: target.method,
    url: target.url,
    origin: target.origin,
  };
  requestStartChannel.publish(message);
}

/** Publishes `dogged:request:end` (call it when it has subscribers). */
export function publishRequestEnd(
  request: object,
  attempts: number,
  status: number | undefined,
  error: unknown,
): void {
  const message: RequestEndMessage = { request, status, error, attempts };
  requestEndChannel.publish(message);
}

/** Publishes `dogged:attempt:end` (call it when it has subscribers). */
export function publishAttemptEnd(
  request: object,
  attempt: number,
  status: number | undefined,
  error: unknown,
): void {
  const message: AttemptEndMessage = { request, attempt, status, error };
  attemptEndChannel.publish(message);
}

/** Publishes `dogged:attempt:start` (call it when it has subscribers); the headers to send. */
export function publishAttemptStart<H extends Record<string, string | string[] | undefined>>(
  request: object,
  target: Described,
  attempt: number,
  headers: H,
): H {
  const message: AttemptStartMessage = {
    request,
    attempt,
    method: target.method,
    url: target.url,
    origin: target.origin,
    headers,
  };
  attemptStartChannel.publish(message);
  return message.headers as H;
}

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
