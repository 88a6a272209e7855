import type { DoggedError } from './errors.js';
import type { HeaderRecord } from './headers.js';
import type { RetryEvent } from './observe.js';
import type { DoggedResponse } from './response.js';

/** What `beforeRequest` hooks see; they may change `headers` in place. */
export interface BeforeRequestContext {
  readonly method: string;
  /** The URL, credentials shown as `***@`. */
  readonly url: string;
  /** The attempt about to be made, from 1. */
  readonly attempt: number;
  /** The request headers (lower-case names), mutable. */
  readonly headers: HeaderRecord;
  /** The proxy this attempt goes through (credentials removed); absent when direct. */
  readonly proxy?: string;
}

/** What `error` hooks see next to the error. */
export interface ErrorContext {
  readonly method: string;
  readonly url: string;
  readonly attempt: number;
  /** The proxy the attempt went through (credentials removed); absent when direct. */
  readonly proxy?: string;
}

type OneOrMany<F> = F | readonly F[];

/**
 * Lifecycle hooks. Each may be one function or an array; async hooks are awaited in order.
 *
 * @example
 * new Session({
 *   hooks: {
 *     beforeRequest: (req) => { req.headers['x-request-id'] = crypto.randomUUID(); },
 *     beforeRetry: (event) => event.attempt < 3, // returning false vetoes the retry
 *     response: (res) => { if (res.status >= 400) console.warn(`got ${res.status} for ${res.url}`); },
 *     error: (err, req) => console.warn(`${req.method} ${req.url} attempt ${req.attempt}: ${err}`),
 *   },
 * });
 */
export interface SessionHooks {
  /**
   * Before every attempt.
   * @default undefined
   */
  beforeRequest?: OneOrMany<(request: BeforeRequestContext) => void | Promise<void>>;
  /**
   * Before every retry's sleep, with the attempt, the delay and the cause; `false` vetoes the
   * retry (the error is thrown, or the response returned, as if retries had run out).
   * @default undefined
   */
  beforeRetry?: OneOrMany<
    (event: RetryEvent) => boolean | undefined | Promise<boolean | undefined>
  >;
  /**
   * After every response head, retried ones included (requests' `response` hook).
   * @default undefined
   */
  response?: OneOrMany<(response: DoggedResponse) => void | Promise<void>>;
  /**
   * After every failed attempt, with the classified error.
   * @default undefined
   */
  error?: OneOrMany<(error: DoggedError | unknown, request: ErrorContext) => void | Promise<void>>;
}

export interface HookLists {
  readonly beforeRequest: readonly ((request: BeforeRequestContext) => void | Promise<void>)[];
  readonly beforeRetry: readonly ((
    event: RetryEvent,
  ) => boolean | undefined | Promise<boolean | undefined>)[];
  readonly response: readonly ((response: DoggedResponse) => void | Promise<void>)[];
  readonly error: readonly ((
    error: DoggedError | unknown,
    request: ErrorContext,
  ) => void | Promise<void>)[];
}

export const NO_HOOKS: HookLists = Object.freeze({
  beforeRequest: [],
  beforeRetry: [],
  response: [],
  error: [],
});

const HOOK_NAMES = ['beforeRequest', 'beforeRetry', 'response', 'error'] as const;

function list<F>(where: string, value: OneOrMany<F> | undefined): readonly F[] {
  if (value === undefined) return [];
  const items = (Array.isArray(value) ? value : [value]) as F[];
  for (const f of items)
    if (typeof f !== 'function')
      throw new TypeError(`${where} must be a function or an array of functions`);
  return items;
}

/** Appends `hooks` to `base`. */
export function mergeHooks(
  base: HookLists,
  hooks: SessionHooks | undefined,
  where: string,
): HookLists {
  if (hooks === undefined) return base;
  if (hooks === null || typeof hooks !== 'object')
    throw new TypeError(`${where} must be an object of hook functions`);
  for (const key of Object.keys(hooks)) {
    if (!(HOOK_NAMES as readonly string[]).includes(key)) {
      throw new TypeError(
        `${where}: unknown hook ${JSON.stringify(key)}; known hooks: ${HOOK_NAMES.join(', ')}`,
      );
    }
  }
  return Object.freeze({
    beforeRequest: [...base.beforeRequest, ...list(`${where}.beforeRequest`, hooks.beforeRequest)],
    beforeRetry: [...base.beforeRetry, ...list(`${where}.beforeRetry`, hooks.beforeRetry)],
    response: [...base.response, ...list(`${where}.response`, hooks.response)],
    error: [...base.error, ...list(`${where}.error`, hooks.error)],
  });
}
