import { defaultRandom, type RandomSource } from '../retry/random.js';
import { assertKnownKeys, assertPlainObject, showValue } from '../retry/validate.js';
import { toWait, urllib3Backoff, type WaitLike, type WaitStrategy, wait } from '../retry/wait.js';
import { classifyError } from './classify.js';
import {
  DoggedError,
  MaxRetryError,
  type RequestHistoryEntry,
  RetryAfterTooLongError,
  redactUrl,
  type StatusResponse,
} from './errors.js';
import { parseRetryAfter } from './retry-after.js';
import { describeStatus } from './status.js';

/** Options of {@link RetryPolicy}: urllib3's `Retry` with dogged's defaults, in milliseconds. */
export interface RetryPolicyOptions {
  /**
   * Total retries (not attempts) of any kind. 0 disables retries.
   * @default 3
   * @example { total: 5 }
   */
  total?: number;
  /**
   * Retries after connect-phase failures (refused, DNS, connect timeout); undefined: only `total` limits.
   * @default undefined
   * @example { connect: 2 }
   */
  connect?: number;
  /**
   * Retries after read-phase failures (read timeout, reset after sending, cut body).
   * @default undefined
   * @example { read: 1 }
   */
  read?: number;
  /**
   * Retries after a status in `statusForcelist` (or with Retry-After).
   * @default undefined
   * @example { status: 4 }
   */
  status?: number;
  /**
   * Redirects to follow.
   * @default undefined
   * @example { redirect: 5 }
   */
  redirect?: number;
  /**
   * Retries after other retriable errors.
   * @default undefined
   * @example { other: 0 }
   */
  other?: number;
  /**
   * Methods retried after the request may have reached the server (read-phase failures and
   * statuses). Connect-phase failures are retried for every method. A request with an
   * Idempotency-Key is retried whatever its method.
   * @default ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'TRACE']
   * @example { allowedMethods: ['GET', 'HEAD'] }
   */
  allowedMethods?: readonly string[];
  /**
   * Statuses that are retried.
   * @default [408, 429, 500, 502, 503, 504]
   * @example { statusForcelist: [429, 503] }
   */
  statusForcelist?: readonly number[];
  /**
   * The backoff between retries (a dogged wait strategy; `n` counts consecutive errors since the
   * last redirect). Exclusive with `backoffFactor`.
   * @default wait.fullJitter({ multiplier: 500, max: 30_000 })
   * @example { backoff: wait.exponential({ multiplier: 250, max: 10_000 }) }
   */
  backoff?: WaitLike;
  /**
   * Selects urllib3's exact formula (`wait.urllib3`): 0 for the first retry, then
   * `backoffFactor · 2^(n−1)`, in milliseconds (urllib3's `backoff_factor=1` is 1000).
   * @default undefined (the `backoff` strategy is used)
   * @example { backoffFactor: 1000, backoffJitter: 500 }
   */
  backoffFactor?: number;
  /**
   * Cap of each backoff delay with `backoffFactor`.
   * @default 120000
   * @example { backoffFactor: 500, backoffMax: 10_000 }
   */
  backoffMax?: number;
  /**
   * Random extra delay U(0, backoffJitter) with `backoffFactor`.
   * @default 0
   * @example { backoffFactor: 1000, backoffJitter: 500 }
   */
  backoffJitter?: number;
  /**
   * Sleep as long as a Retry-After header asks (instead of the backoff).
   * @default true
   * @example { respectRetryAfterHeader: false }
   */
  respectRetryAfterHeader?: boolean;
  /**
   * Statuses retried when they carry Retry-After, even outside `statusForcelist`.
   * @default [413, 429, 503]
   * @example { retryAfterStatusCodes: [429] }
   */
  retryAfterStatusCodes?: readonly number[];
  /**
   * The longest Retry-After obeyed, in ms. Longer: no sleep, `RetryAfterTooLongError` at once,
   * for that request only: such an answer sets no cooldown (later requests to the origin go out
   * normally), and no Retry-After ever holds an origin or a proxy longer than this.
   * @default 120000
   * @example { maxRetryAfter: 600_000 }
   */
  maxRetryAfter?: number;
  /**
   * When status retries run out, throw `MaxRetryError` (true) or return the last response (false).
   * @default true
   * @example { raiseOnStatus: false }
   */
  raiseOnStatus?: boolean;
  /**
   * When redirects run out, throw (true) or return the last 3xx response (false).
   * @default true
   * @example { raiseOnRedirect: false }
   */
  raiseOnRedirect?: boolean;
  /**
   * Headers removed when a redirect leaves the origin.
   * @default ['authorization', 'cookie', 'proxy-authorization']
   * @example { removeHeadersOnRedirect: ['authorization', 'cookie', 'x-api-key'] }
   */
  removeHeadersOnRedirect?: readonly string[];
  /**
   * The random source jittered backoffs draw from.
   * @default Math.random
   * @example { random: seededRandom(1) }
   */
  random?: RandomSource;
}

const KEYS = [
  'total',
  'connect',
  'read',
  'status',
  'redirect',
  'other',
  'allowedMethods',
  'statusForcelist',
  'backoff',
  'backoffFactor',
  'backoffMax',
  'backoffJitter',
  'respectRetryAfterHeader',
  'retryAfterStatusCodes',
  'maxRetryAfter',
  'raiseOnStatus',
  'raiseOnRedirect',
  'removeHeadersOnRedirect',
  'random',
] as const;

const HINTS: Record<string, string> = {
  retries: 'use total',
  maxRetries: 'use total',
  methods: 'use allowedMethods',
  statusCodes: 'use statusForcelist',
  backoff_factor: 'use backoffFactor (in milliseconds)',
  status_forcelist: 'use statusForcelist',
  allowed_methods: 'use allowedMethods',
};

/** The default methods that are safe to send twice. */
export const DEFAULT_ALLOWED_METHODS: readonly string[] = Object.freeze([
  'GET',
  'HEAD',
  'PUT',
  'DELETE',
  'OPTIONS',
  'TRACE',
]);
/** The default retried statuses. */
export const DEFAULT_STATUS_FORCELIST: readonly number[] = Object.freeze([
  408, 429, 500, 502, 503, 504,
]);
const DEFAULT_BACKOFF = wait.fullJitter({ multiplier: 500, max: 30_000 });

type Counter = 'total' | 'connect' | 'read' | 'status' | 'redirect' | 'other';
const COUNTERS: readonly Counter[] = ['total', 'connect', 'read', 'status', 'redirect', 'other'];

/** What happened, for {@link RetryPolicy.increment}. */
export interface IncrementInput {
  method: string;
  url: string;
  /** The response that is being retried (a status or a redirect). */
  response?: StatusResponse;
  /** The failure that is being retried: a dogged error or a raw Node/undici error. */
  error?: unknown;
  /** The request carries an Idempotency-Key: safe to replay whatever its method. */
  replaySafe?: boolean;
  /**
   * The delay slept before the attempt that failed (0 for the first): strategies that grow from
   * the previous delay (`wait.decorrelatedJitter`) need it.
   * @default 0
   */
  sleptMs?: number;
}

/** The delay before the next attempt and where it came from. */
export interface RetryDelay {
  delayMs: number;
  source: 'retry-after' | 'backoff';
}

function checkCount(name: string, value: unknown, allowUndefined: boolean): void {
  if (value === undefined && allowUndefined) return;
  if (
    // Stryker disable next-line ConditionalExpression,LogicalOperator: the typeof test is redundant: Number.isInteger is false for any non-number, and none is Infinity (the other mutants of this condition are killed)
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    value < 0 ||
    (!Number.isInteger(value) && value !== Number.POSITIVE_INFINITY)
  ) {
    throw new TypeError(
      `RetryPolicy: ${name} must be a non-negative integer (or Infinity), got ${showValue(value)}`,
    );
  }
}

function checkList<T>(
  name: string,
  value: unknown,
  item: (v: unknown) => boolean,
  what: string,
): readonly T[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every(item))
    throw new TypeError(
      `RetryPolicy: ${name} must be an array of ${what}, got ${showValue(value)}`,
    );
  return Object.freeze([...value]) as readonly T[];
}

function checkMs(name: string, value: unknown, allowInfinity = false): void {
  if (value === undefined) return;
  if (
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    value < 0 ||
    (!allowInfinity && !Number.isFinite(value))
  ) {
    throw new TypeError(
      `RetryPolicy: ${name} must be a non-negative number of milliseconds, got ${showValue(value)}`,
    );
  }
}

function checkBoolean(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean')
    throw new TypeError(`RetryPolicy: ${name} must be a boolean, got ${showValue(value)}`);
}

const isStatus = (v: unknown): boolean =>
  // Stryker disable next-line ConditionalExpression: the typeof test is redundant: Number.isInteger is false for any non-number (the other mutants of this line are killed)
  typeof v === 'number' && Number.isInteger(v) && v >= 100 && v <= 999;
const isMethod = (v: unknown): boolean => typeof v === 'string' && /^[A-Za-z]+$/.test(v);

interface PolicyState {
  readonly options: Readonly<RetryPolicyOptions>;
  readonly counts: Readonly<Record<Counter, number | undefined>>;
  readonly history: readonly RequestHistoryEntry[];
  /** The delay slept before the last failed attempt, and all sleeps so far. */
  readonly lastDelayMs: number;
  readonly idleMs: number;
}

/**
 * An immutable retry policy with urllib3 2.x semantics: separate counters for connect, read,
 * status, redirect and other failures under a `total`; `increment()` returns a new policy and
 * records `history`; it never sleeps (the Session does).
 *
 * @example
 * const policy = new RetryPolicy({ total: 5, backoffFactor: 1000, backoffJitter: 500, statusForcelist: [429, 500, 502, 503, 504] });
 * const session = new Session({ retry: policy });
 */
export class RetryPolicy {
  readonly #state: PolicyState;
  readonly #allowed: ReadonlySet<string>;
  readonly #forcelist: ReadonlySet<number>;
  readonly #retryAfterCodes: ReadonlySet<number>;
  readonly #backoff: WaitStrategy | undefined;

  constructor(options?: RetryPolicyOptions);
  constructor(options: RetryPolicyOptions = {}, carried?: PolicyState) {
    // `increment()` passes the next state along; options were validated when first given.
    this.#state = carried ?? RetryPolicy.#validate(options);
    const o = this.#state.options;
    this.#allowed = new Set(
      (o.allowedMethods ?? DEFAULT_ALLOWED_METHODS).map((m) => m.toUpperCase()),
    );
    this.#forcelist = new Set(o.statusForcelist ?? DEFAULT_STATUS_FORCELIST);
    this.#retryAfterCodes = new Set(o.retryAfterStatusCodes ?? [413, 429, 503]);
    this.#backoff =
      // Stryker disable next-line ConditionalExpression: `true` is equivalent: with backoffFactor, getBackoffTime() uses the formula and never reads #backoff (`false` is killed)
      o.backoffFactor === undefined
        ? o.backoff === undefined
          ? DEFAULT_BACKOFF
          : // Stryker disable next-line StringLiteral: #validate() already checked o.backoff under the same name, so this toWait never throws
            toWait(o.backoff, 'RetryPolicy: backoff')
        : undefined;
  }

  static #validate(options: RetryPolicyOptions): PolicyState {
    assertPlainObject('RetryPolicy options', options);
    assertKnownKeys('RetryPolicy', options as Record<string, unknown>, KEYS, HINTS);
    const o: RetryPolicyOptions = options;
    checkCount('total', o.total, true);
    for (const c of ['connect', 'read', 'status', 'redirect', 'other'] as const)
      checkCount(c, o[c], true);
    checkList<string>('allowedMethods', o.allowedMethods, isMethod, 'method names');
    checkList<number>('statusForcelist', o.statusForcelist, isStatus, 'HTTP status codes');
    checkList<number>(
      'retryAfterStatusCodes',
      o.retryAfterStatusCodes,
      isStatus,
      'HTTP status codes',
    );
    checkList<string>(
      'removeHeadersOnRedirect',
      o.removeHeadersOnRedirect,
      (v) => typeof v === 'string',
      'header names',
    );
    if (o.backoff !== undefined && o.backoffFactor !== undefined) {
      throw new TypeError(
        'RetryPolicy: give either backoff (a wait strategy) or backoffFactor (urllib3 formula), not both',
      );
    }
    if (
      o.backoffFactor === undefined &&
      (o.backoffMax !== undefined || o.backoffJitter !== undefined)
    ) {
      throw new TypeError(
        'RetryPolicy: backoffMax and backoffJitter apply to backoffFactor; give backoffFactor too (or cap your backoff strategy)',
      );
    }
    checkMs('backoffFactor', o.backoffFactor);
    checkMs('backoffMax', o.backoffMax, true);
    checkMs('backoffJitter', o.backoffJitter);
    checkMs('maxRetryAfter', o.maxRetryAfter, true);
    checkBoolean('respectRetryAfterHeader', o.respectRetryAfterHeader);
    checkBoolean('raiseOnStatus', o.raiseOnStatus);
    checkBoolean('raiseOnRedirect', o.raiseOnRedirect);
    if (o.backoff !== undefined) toWait(o.backoff, 'RetryPolicy: backoff');
    if (o.random !== undefined && typeof o.random !== 'function')
      throw new TypeError(`RetryPolicy: random must be a function, got ${showValue(o.random)}`);
    const frozen = Object.freeze({ ...o });
    return {
      options: frozen,
      counts: Object.freeze({
        total: o.total ?? 3,
        connect: o.connect,
        read: o.read,
        status: o.status,
        redirect: o.redirect,
        other: o.other,
      }),
      history: Object.freeze([]),
      lastDelayMs: 0,
      idleMs: 0,
    };
  }

  /** A policy from whatever a user may pass: a policy, options, a number of retries, or `false` (none). */
  static from(value: RetryPolicy | RetryPolicyOptions | number | false | undefined): RetryPolicy {
    if (value instanceof RetryPolicy) return value;
    // Stryker disable next-line ConditionalExpression: `false` is equivalent: new RetryPolicy(undefined) below is the default policy too
    if (value === undefined) return new RetryPolicy();
    if (value === false) return new RetryPolicy({ total: 0, raiseOnStatus: false });
    if (typeof value === 'number') return new RetryPolicy({ total: value });
    return new RetryPolicy(value);
  }

  /** The options this policy was built with (frozen). */
  get options(): Readonly<RetryPolicyOptions> {
    return this.#state.options;
  }

  /** One entry per retry so far. */
  get history(): readonly RequestHistoryEntry[] {
    return this.#state.history;
  }

  /** Retries left per counter (`undefined`: limited by `total` only). */
  get remaining(): Readonly<Record<Counter, number | undefined>> {
    return this.#state.counts;
  }

  get raiseOnStatus(): boolean {
    return this.#state.options.raiseOnStatus ?? true;
  }

  get raiseOnRedirect(): boolean {
    return this.#state.options.raiseOnRedirect ?? true;
  }

  get respectRetryAfterHeader(): boolean {
    return this.#state.options.respectRetryAfterHeader ?? true;
  }

  get maxRetryAfter(): number {
    return this.#state.options.maxRetryAfter ?? 120_000;
  }

  get removeHeadersOnRedirect(): readonly string[] {
    return (
      this.#state.options.removeHeadersOnRedirect ?? [
        'authorization',
        'cookie',
        'proxy-authorization',
      ]
    );
  }

  /** A new policy with some options replaced; counters and history start afresh. */
  with(overrides: RetryPolicyOptions): RetryPolicy {
    assertPlainObject('RetryPolicy.with(overrides)', overrides);
    const merged: RetryPolicyOptions = { ...this.#state.options, ...overrides };
    // Choosing one backoff style drops the other.
    if (overrides.backoff !== undefined) {
      delete merged.backoffFactor;
      delete merged.backoffMax;
      delete merged.backoffJitter;
    }
    if (overrides.backoffFactor !== undefined) delete merged.backoff;
    return new RetryPolicy(merged);
  }

  /** Whether `method` may be retried once the request may have reached the server. */
  isMethodRetryable(method: string, replaySafe = false): boolean {
    return replaySafe || this.#allowed.has(method.toUpperCase());
  }

  /** urllib3's `is_retry`: should a response with this status be retried? */
  isRetry(method: string, status: number, hasRetryAfter = false, replaySafe = false): boolean {
    // The status first: most answers (a 200) are no retry whatever the method.
    if (
      !this.#forcelist.has(status) &&
      !(
        hasRetryAfter &&
        this.respectRetryAfterHeader &&
        this.#retryAfterCodes.has(status) &&
        this.#state.counts.total
      )
    )
      return false;
    return this.isMethodRetryable(method, replaySafe);
  }

  /** Out of retries: a counter went below zero. */
  isExhausted(): boolean {
    for (const c of COUNTERS) {
      const v = this.#state.counts[c];
      // Stryker disable next-line ConditionalExpression: `true` for the undefined test is equivalent: undefined < 0 is false (the other mutants of this line are killed)
      if (v !== undefined && v < 0) return true;
    }
    return false;
  }

  /** Consecutive failures since the last redirect (urllib3 resets the backoff run on a redirect). */
  get consecutiveErrors(): number {
    let n = 0;
    for (let i = this.#state.history.length - 1; i >= 0; i--) {
      if ((this.#state.history[i] as RequestHistoryEntry).redirectLocation !== undefined) break;
      n++;
    }
    return n;
  }

  /** The backoff before the next attempt, ms (ignores Retry-After). */
  getBackoffTime(): number {
    const n = this.consecutiveErrors;
    if (n === 0) return 0;
    const o = this.#state.options;
    const random = o.random ?? defaultRandom;
    if (o.backoffFactor !== undefined)
      return urllib3Backoff(
        n,
        o.backoffFactor,
        o.backoffMax ?? 120_000,
        o.backoffJitter ?? 0,
        random,
      );
    const last = this.#state.history[this.#state.history.length - 1];
    return (this.#backoff as WaitStrategy)(
      Object.freeze({
        attempt: n,
        elapsedMs: this.#state.idleMs,
        idleMs: this.#state.idleMs,
        lastDelayMs: this.#state.lastDelayMs,
        upcomingDelayMs: undefined,
        // Stryker disable next-line OptionalChaining: getBackoffTime() returned 0 above when there is no history (n === 0), so last is defined
        outcome: last?.error ? { ok: false as const, error: last.error } : undefined,
        signal: undefined,
        name: undefined,
        random,
      }),
    );
  }

  /** The Retry-After of a response in ms, if present and well-formed. */
  getRetryAfter(
    response: { headers: Headers } | undefined,
    now: number = Date.now(),
  ): number | undefined {
    const value = response?.headers.get('retry-after');
    // Stryker disable next-line ConditionalExpression,LogicalOperator: parseRetryAfter() reads null and undefined as undefined too (the other mutants of this line are killed)
    return value === null || value === undefined ? undefined : parseRetryAfter(value, now);
  }

  /**
   * The delay before the next attempt: the response's Retry-After when the policy respects it
   * and it is well-formed, else the backoff. A Retry-After above `maxRetryAfter` throws
   * `RetryAfterTooLongError` (no sleep).
   */
  getRetryDelay(
    response?: StatusResponse,
    context: { method?: string; url?: string; now?: number } = {},
  ): RetryDelay {
    if (this.respectRetryAfterHeader && response) {
      const ms = this.getRetryAfter(response, context.now);
      if (ms !== undefined) {
        if (ms > this.maxRetryAfter) {
          throw new RetryAfterTooLongError({
            retryAfterMs: ms,
            maxRetryAfterMs: this.maxRetryAfter,
            response,
            // Stryker disable next-line ConditionalExpression: the error's constructor reads an absent and an undefined method alike (`false` is killed)
            ...(context.method !== undefined && { method: context.method }),
            // Stryker disable next-line ConditionalExpression: the error's constructor reads an absent and an undefined url alike (`false` is killed)
            ...(context.url !== undefined && { url: context.url }),
            attempts: this.#state.history.length + 1,
          });
        }
        return { delayMs: ms, source: 'retry-after' };
      }
    }
    return { delayMs: this.getBackoffTime(), source: 'backoff' };
  }

  /**
   * Records one more failure and returns the policy for the next attempt; throws when it must
   * not be retried (the classified error itself) or when retries are exhausted (`MaxRetryError`).
   */
  increment(input: IncrementInput): RetryPolicy {
    const { method, url, response, replaySafe = false } = input;
    const counts = { ...this.#state.counts };
    const isRedirect =
      input.error === undefined &&
      response !== undefined &&
      response.status >= 300 &&
      response.status < 400 &&
      Boolean(response.headers.get('location'));
    // A redirect is not a failure: it spends the `redirect` counter only (urllib3 also spends `total`).
    // Stryker disable next-line ConditionalExpression: counts.total is always defined here (o.total ?? 3 in #validate()) (the other mutants of this line are killed)
    if (counts.total !== undefined && !isRedirect) counts.total -= 1;
    let error: DoggedError | undefined;
    let status: number | undefined;
    let redirectLocation: string | undefined;
    let cause: string;

    if (input.error !== undefined) {
      const classified = classifyError(input.error, {
        method,
        url,
        attempts: this.#state.history.length + 1,
      });
      if (classified === undefined) throw input.error; // an abort: never retried
      if (!(classified instanceof DoggedError) || !classified.retriable) throw classified;
      error = classified;
      if (error.phase === 'connect') {
        if (counts.connect !== undefined) counts.connect -= 1;
      } else if (error.phase === 'headers' || error.phase === 'body' || error.phase === 'request') {
        if (!this.isMethodRetryable(method, replaySafe)) throw error;
        if (counts.read !== undefined) counts.read -= 1;
      } else if (counts.other !== undefined) {
        counts.other -= 1;
      }
      // Stryker disable next-line StringLiteral: cause is only read when there is neither an error nor a response
      cause = `${error.name}: ${error.message}`;
    } else if (isRedirect && response) {
      if (counts.redirect !== undefined) counts.redirect -= 1;
      status = response.status;
      redirectLocation = response.headers.get('location') ?? undefined;
      // Stryker disable next-line StringLiteral: cause is only read when there is neither an error nor a response
      cause = 'too many redirects';
    } else {
      if (response && counts.status !== undefined) counts.status -= 1;
      status = response?.status;
      cause = response ? `too many ${response.status} error responses` : 'unknown';
    }

    const entry: RequestHistoryEntry = Object.freeze({
      method,
      url: redactUrl(url) as string,
      error,
      status,
      redirectLocation,
    });
    const history = Object.freeze([...this.#state.history, entry]);
    // Stryker disable next-line ConditionalExpression,EqualityOperator: undefined > 0 is false, and a sleptMs of 0 gives 0 either way (the other mutants of this line are killed)
    const slept = input.sleptMs !== undefined && input.sleptMs > 0 ? input.sleptMs : 0;
    const next = new (
      RetryPolicy as unknown as new (
        o: RetryPolicyOptions,
        s: PolicyState,
      ) => RetryPolicy
    )(this.#state.options, {
      options: this.#state.options,
      counts: Object.freeze(counts),
      history,
      lastDelayMs: slept,
      idleMs: this.#state.idleMs + slept,
    });
    if (next.isExhausted()) {
      // With no retries allowed at all, wrapping adds nothing: the error itself is the answer.
      if (error && this.#state.options.total === 0) throw error;
      const attempts = history.length;
      const what = error
        ? `${error.name}: ${error.message}`
        : response
          ? describeStatus(response.status, response.statusText)
          : cause;
      const why =
        redirectLocation !== undefined
          ? 'too many redirects'
          : error
            ? 'retries exhausted'
            : `${cause}; retries exhausted`;
      throw new MaxRetryError(
        `${method} ${redactUrl(url)} failed after ${attempts} ${attempts === 1 ? 'attempt' : 'attempts'}: ${what} (${why})`,
        {
          method,
          url,
          attempts,
          history,
          ...(error && { cause: error, reason: error }),
          ...(response && !error && { reason: response, response }),
          phase: 'none',
        },
      );
    }
    return next;
  }
}
