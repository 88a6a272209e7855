import type { AttemptState } from './attempt-state.js';
import { isThenable } from './thenable.js';
import { isTransientError } from './transient.js';
import { assertFunction, showValue } from './validate.js';

/**
 * Decides whether the attempt that just settled calls for another one. May be async (a result
 * check that reads a response body, say).
 */
export interface RetryCondition<T = unknown> {
  (state: AttemptState<T>): boolean | Promise<boolean>;
  /** Retries when either condition does. */
  or<U = T>(other: RetryConditionLike<U>): RetryCondition<T & U>;
  /** Retries only when both conditions do. */
  and<U = T>(other: RetryConditionLike<U>): RetryCondition<T & U>;
  /** Human-readable form, for logs. */
  readonly description: string;
}

/** A retry condition or any plain function of the attempt state. */
export type RetryConditionLike<T = unknown> =
  | RetryCondition<T>
  | ((state: AttemptState<T>) => boolean | Promise<boolean>);

/** An `Error` subclass, matched with `instanceof`. */
// biome-ignore lint/suspicious/noExplicitAny: any constructor signature may be an error class.
export type ErrorClass = abstract new (...args: any[]) => Error;

/** An error class, or a predicate over whatever was thrown. */
export type ErrorMatcher = ErrorClass | ((error: unknown) => boolean | Promise<boolean>);

/**
 * Marks conditions that can only ever retry failures: the engine then skips evaluating them
 * (and building their state) after a successful attempt, which keeps success cheap.
 */
const IGNORES_RESULTS = Symbol('dogged.ignoresResults');

/** True when `condition` never retries a successful attempt. */
export function ignoresResults(condition: unknown): boolean {
  return (condition as { [IGNORES_RESULTS]?: boolean } | undefined)?.[IGNORES_RESULTS] === true;
}

function makeCondition<T>(
  test: (state: AttemptState<T>) => boolean | Promise<boolean>,
  description: string,
  resultsIgnored = false,
): RetryCondition<T> {
  const condition = ((state: AttemptState<T>) => test(state)) as RetryCondition<T> & {
    description: string;
  };
  condition.or = <U>(other: RetryConditionLike<U>) => {
    const b = toRetryCondition<T & U>(other, 'retryIf.or(other)');
    return makeCondition<T & U>(
      (s) => {
        const a = test(s);
        return isThenable<boolean>(a) ? Promise.resolve(a).then((v) => v || b(s)) : a || b(s);
      },
      `${description} | ${b.description}`,
      resultsIgnored && ignoresResults(b),
    );
  };
  condition.and = <U>(other: RetryConditionLike<U>) => {
    const b = toRetryCondition<T & U>(other, 'retryIf.and(other)');
    return makeCondition<T & U>(
      (s) => {
        const a = test(s);
        return isThenable<boolean>(a) ? Promise.resolve(a).then((v) => v && b(s)) : a && b(s);
      },
      `(${description} & ${b.description})`,
      resultsIgnored || ignoresResults(b),
    );
  };
  Object.defineProperty(condition, 'description', { value: description });
  if (resultsIgnored) Object.defineProperty(condition, IGNORES_RESULTS, { value: true });
  return Object.freeze(condition);
}

/** Accepts a condition or a plain function; anything else is a `TypeError` naming `where`. */
export function toRetryCondition<T = unknown>(like: unknown, where = 'retry'): RetryCondition<T> {
  assertFunction(where, like);
  if (typeof (like as Partial<RetryCondition<T>>).or === 'function' && 'description' in like)
    return like as RetryCondition<T>;
  const fn = like as (state: AttemptState<T>) => boolean | Promise<boolean>;
  return makeCondition<T>((s) => {
    const r = fn(s);
    return isThenable<boolean>(r) ? Promise.resolve(r).then((v) => v === true) : r === true;
  }, fn.name || 'custom');
}

function isErrorClass(value: unknown): value is ErrorClass {
  return typeof value === 'function' && (value === Error || value.prototype instanceof Error);
}

function toErrorTest(
  matchers: readonly ErrorMatcher[],
  where: string,
): (error: unknown) => boolean | Promise<boolean> {
  if (matchers.length === 0)
    throw new TypeError(`${where} needs at least one error class or predicate, got none`);
  const tests = matchers.map((m, i) => {
    if (isErrorClass(m)) return (error: unknown) => error instanceof m;
    if (typeof m === 'function') return m as (error: unknown) => boolean | Promise<boolean>;
    throw new TypeError(
      `${where} argument ${i + 1} must be an Error class or a predicate function, got ${showValue(m)}`,
    );
  });
  // Stryker disable next-line ConditionalExpression: `false` is equivalent: from() gives the same answer for one test, and every caller compares it with === true
  if (tests.length === 1) return tests[0] as (error: unknown) => boolean | Promise<boolean>;
  // Synchronous as long as every matcher answers synchronously.
  const from = (error: unknown, start: number): boolean | Promise<boolean> => {
    for (let i = start; i < tests.length; i++) {
      const r = (tests[i] as (error: unknown) => boolean | Promise<boolean>)(error);
      if (isThenable<boolean>(r))
        return Promise.resolve(r).then((v) => v === true || from(error, i + 1));
      if (r === true) return true;
    }
    return false;
  };
  return (error) => from(error, 0);
}

function matcherNames(matchers: readonly ErrorMatcher[]): string {
  // Stryker disable next-line ConditionalExpression: `true` for the typeof test is equivalent: toErrorTest() already refused every matcher that is not a function
  return matchers.map((m) => (typeof m === 'function' && m.name ? m.name : 'predicate')).join(', ');
}

function messageOf(error: unknown): string {
  if (typeof error === 'string') return error;
  if (error !== null && typeof error === 'object' && typeof (error as Error).message === 'string')
    return (error as Error).message;
  return '';
}

const truthy = (v: boolean): boolean => v === true;

/**
 * Retry conditions.
 *
 * @example
 * // Retry network faults, and results that say "try later".
 * retryIf.transient.or(retryIf.result((body: { error?: string }) => body.error === 'temporary_failure'))
 */
export const retryIf = {
  /**
   * Retries when the attempt threw something matching any of the error classes (by
   * `instanceof`) or predicates.
   * @example retryIf.error(ReadTimeoutError, (e) => (e as { code?: string }).code === 'EBUSY')
   */
  error(...matchers: ErrorMatcher[]): RetryCondition<unknown> {
    const test = toErrorTest(matchers, 'retryIf.error');
    return makeCondition(
      (s) => {
        const o = s.outcome;
        if (!o || o.ok) return false;
        const r = test(o.error);
        return isThenable<boolean>(r) ? Promise.resolve(r).then(truthy) : r === true;
      },
      `retryIf.error(${matcherNames(matchers)})`,
      true,
    );
  },

  /**
   * Retries when the attempt threw something matching none of the classes or predicates.
   * @example retryIf.notError(ValidationError)
   */
  notError(...matchers: ErrorMatcher[]): RetryCondition<unknown> {
    const test = toErrorTest(matchers, 'retryIf.notError');
    return makeCondition(
      (s) => {
        const o = s.outcome;
        if (!o || o.ok) return false;
        const r = test(o.error);
        return isThenable<boolean>(r) ? Promise.resolve(r).then((v) => v !== true) : r !== true;
      },
      `retryIf.notError(${matcherNames(matchers)})`,
      true,
    );
  },

  /**
   * Retries when the attempt returned a value for which `predicate` is true (it may be async).
   * @example retryIf.result((body: { error?: string }) => body.error === 'temporary_failure')
   */
  result<T>(predicate: (value: T) => boolean | Promise<boolean>): RetryCondition<T> {
    assertFunction('retryIf.result(predicate)', predicate);
    return makeCondition<T>(
      (s) => {
        const o = s.outcome;
        if (!o?.ok) return false;
        const r = predicate(o.value);
        return isThenable<boolean>(r) ? Promise.resolve(r).then(truthy) : r === true;
      },
      `retryIf.result(${predicate.name || 'predicate'})`,
    );
  },

  /**
   * Retries when the attempt returned a value for which `predicate` is false.
   * @example retryIf.notResult((job: Job) => job.done)
   */
  notResult<T>(predicate: (value: T) => boolean | Promise<boolean>): RetryCondition<T> {
    assertFunction('retryIf.notResult(predicate)', predicate);
    return makeCondition<T>(
      (s) => {
        const o = s.outcome;
        if (!o?.ok) return false;
        const r = predicate(o.value);
        return isThenable<boolean>(r) ? Promise.resolve(r).then((v) => v !== true) : r !== true;
      },
      `retryIf.notResult(${predicate.name || 'predicate'})`,
    );
  },

  /**
   * Retries when the thrown error's message (or the thrown string) matches.
   * @example retryIf.errorMessage(/deadlock detected/i)
   */
  errorMessage(pattern: RegExp | string): RetryCondition<unknown> {
    let test: (message: string) => boolean;
    if (pattern instanceof RegExp) {
      // A global or sticky regexp keeps state between calls; a copy without those flags does not.
      const stateless = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ''));
      test = (m) => stateless.test(m);
    } else if (typeof pattern === 'string') {
      test = (m) => m.includes(pattern);
    } else {
      throw new TypeError(
        `retryIf.errorMessage(pattern) must be a RegExp or a string, got ${showValue(pattern)}`,
      );
    }
    return makeCondition(
      (s) => {
        const o = s.outcome;
        return o !== undefined && !o.ok && test(messageOf(o.error));
      },
      `retryIf.errorMessage(${String(pattern)})`,
      true,
    );
  },

  /**
   * Retries errors that are transient: dogged's retriable errors and Node/undici network
   * error codes; never programming errors or aborts. The default condition.
   */
  transient: makeCondition(
    (s) => {
      const o = s.outcome;
      return o !== undefined && !o.ok && isTransientError(o.error);
    },
    'retryIf.transient',
    true,
  ),

  /**
   * Retries whatever was thrown, errors of every kind and non-Error values alike (Tenacity's
   * default). Use it when every failure of your function is worth another try.
   * @example retry(flakyScrape, { retry: retryIf.anyError })
   */
  anyError: makeCondition(
    (s) => s.outcome !== undefined && !s.outcome.ok,
    'retryIf.anyError',
    true,
  ),

  /**
   * Retries every attempt, failed or not, until the stop strategy ends the run (which then
   * throws `RetryError`). For polling; usually combined with `.and(...)`.
   */
  always: makeCondition(() => true, 'retryIf.always'),

  /** Never retries. */
  never: makeCondition(() => false, 'retryIf.never', true),
} as const;
