import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, type Dispatcher } from 'undici';
import { type Clock, isClock, systemClock } from '../retry/clock.js';
import type { Logger } from '../retry/log.js';
import {
  assertAbortSignal,
  assertKnownKeys,
  assertPlainObject,
  showValue,
} from '../retry/validate.js';
import { prepareBody, type RequestBody } from './body.js';
import { InvalidURLError, redactUrl } from './errors.js';
import { Exchange } from './exchange.js';
import { fromFetchArguments, toFetchError, toFetchResponse } from './fetch.js';
import { type HeaderRecord, type HeadersLike, mergeHeaders } from './headers.js';
import { type HookLists, mergeHooks, NO_HOOKS, type SessionHooks } from './hooks.js';
import { environmentLogger } from './observe.js';
import { RetryPolicy, type RetryPolicyOptions } from './policy.js';
import type { DoggedResponse } from './response.js';
import {
  DEFAULT_TIMEOUTS,
  type ResolvedTimeouts,
  resolveTimeouts,
  type TimeoutOption,
} from './timeouts.js';

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** What a retry option may be: a policy, its options, a number of retries, or `false` for none. */
export type RetryOption = RetryPolicy | RetryPolicyOptions | number | false;

/** Settings that a `mount()` can override for a URL prefix. */
export interface MountOptions {
  /**
   * The retry policy.
   * @default new RetryPolicy() (3 retries, full-jitter backoff, Retry-After obeyed)
   * @example { retry: { total: 5, backoffFactor: 1000 } }
   */
  retry?: RetryOption;
  /**
   * Timeouts in ms: `{ connect, read, total }`, `[connect, read]`, or one number for both.
   * @default { connect: 10000, read: 30000 }
   * @example { timeout: [5000, 10_000] }
   */
  timeout?: TimeoutOption;
  /**
   * Headers sent with every request (a request's own headers win; `undefined` removes one).
   * @default { 'user-agent': 'dogged/<version>' }
   * @example { headers: { authorization: `Bearer ${token}` } }
   */
  headers?: HeadersLike;
  /**
   * Lifecycle hooks, appended to the session's.
   * @default undefined
   * @example { hooks: { response: (res) => console.log(res.status, res.url) } }
   */
  hooks?: SessionHooks;
  /**
   * Redirects followed at most (301/302/303 turn a POST into a GET, 307/308 keep method and
   * body; another origin loses `removeHeadersOnRedirect`). 0 returns the 3xx response; more
   * throws `TooManyRedirectsError` (or returns the 3xx with `raiseOnRedirect: false`).
   * @default 20
   * @example { maxRedirects: 0 }
   */
  maxRedirects?: number;
}

/** Options of {@link Session}. */
export interface SessionOptions extends MountOptions {
  /**
   * Prefix for relative URLs: `baseURL + '/' + url`, slashes joined once (no `new URL()` surprises).
   * @default undefined
   * @example { baseURL: 'http://127.0.0.1:8080/api/v1' }
   */
  baseURL?: string | URL;
  /**
   * Where retry lines (`warn`) and request lines (`debug`) go: `console`, pino, winston...
   * `false` silences even `DOGGED_LOG`.
   * @default the stderr logger of `DOGGED_LOG=debug|info|warn`, if set; else none
   * @example { logger: console }
   */
  logger?: Logger | false;
  /**
   * The undici dispatcher to send through; dogged's own keep-alive `Agent` when not given.
   * (With your own dispatcher, the connect timeout is the dispatcher's.)
   * @default a new undici Agent per session
   * @example { dispatcher: new Agent({ connections: 16 }) }
   */
  dispatcher?: Dispatcher;
  /**
   * The clock that retries sleep on (tests pass `FakeClock`).
   * @default the system clock
   * @example { clock: new FakeClock({ autoAdvance: true }) }
   */
  clock?: Clock;
}

/** Options of one request. */
export interface RequestOptions {
  /**
   * The method.
   * @default 'GET'
   */
  method?: string;
  /**
   * Headers for this request, over the session's (`undefined` removes one).
   * @default undefined
   */
  headers?: HeadersLike;
  /**
   * The body: string, Uint8Array, ArrayBuffer, URLSearchParams, FormData, Blob, a stream, or a
   * function returning a fresh body per attempt (makes a stream replayable).
   * @default undefined
   * @example { method: 'POST', body: () => createReadStream('upload.bin') }
   */
  body?: RequestBody;
  /**
   * A value sent as JSON (sets `content-type: application/json`).
   * @default undefined
   * @example { method: 'POST', json: { name: 'Ada' } }
   */
  json?: unknown;
  /**
   * Query parameters appended to the URL.
   * @default undefined
   * @example { query: { page: 2, tags: ['a', 'b'] } }
   */
  query?:
    | Record<
        string,
        string | number | boolean | readonly (string | number | boolean)[] | null | undefined
      >
    | URLSearchParams;
  /**
   * Timeouts for this request, over the session's.
   * @default the session's
   */
  timeout?: TimeoutOption;
  /**
   * The retry policy for this request.
   * @default the session's (or the mount's)
   */
  retry?: RetryOption;
  /**
   * Aborts the request (and any retry sleep) at once; rejects with the signal's reason.
   * @default undefined
   */
  signal?: AbortSignal;
  /**
   * Sends an `Idempotency-Key` so the server can deduplicate, which makes any method safe to
   * retry: `true` generates one key per logical request (the same on every attempt), a string
   * is used as given.
   * @default false
   * @example { method: 'POST', json: order, idempotencyKey: true }
   */
  idempotencyKey?: boolean | string;
  /**
   * Redirects followed at most for this request.
   * @default the session's (20)
   * @example { maxRedirects: 0 }
   */
  maxRedirects?: number;
  /**
   * Throw `HTTPStatusError` for a final status of 400 or more (its `response` keeps the body).
   * @default false (like requests: check `ok` or call `raiseForStatus()`)
   */
  throwOnStatus?: boolean;
}

const SESSION_KEYS = [
  'retry',
  'timeout',
  'headers',
  'hooks',
  'maxRedirects',
  'baseURL',
  'logger',
  'dispatcher',
  'clock',
] as const;
const MOUNT_KEYS = ['retry', 'timeout', 'headers', 'hooks', 'maxRedirects'] as const;
const REQUEST_KEYS = [
  'method',
  'headers',
  'body',
  'json',
  'query',
  'timeout',
  'retry',
  'signal',
  'idempotencyKey',
  'maxRedirects',
  'throwOnStatus',
] as const;
const REQUEST_HINTS: Record<string, string> = {
  params: 'use query',
  data: 'use body (or json)',
  timeoutMs: 'use timeout',
  retries: 'use retry: { total: n }',
  idempotent: 'use idempotencyKey: true',
};

interface Config {
  readonly policy: RetryPolicy;
  readonly timeouts: ResolvedTimeouts;
  readonly headers: HeaderRecord;
  readonly hooks: HookLists;
  readonly maxRedirects: number;
}

function checkRedirects(where: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new TypeError(`${where} must be a non-negative integer, got ${showValue(value)}`);
  }
  return value;
}

function toPolicy(
  value: RetryOption | undefined,
  fallback: RetryPolicy,
  where: string,
): RetryPolicy {
  if (value === undefined) return fallback;
  if (
    value !== false &&
    typeof value !== 'number' &&
    !(value instanceof RetryPolicy) &&
    (value === null || typeof value !== 'object')
  ) {
    throw new TypeError(
      `${where} must be a RetryPolicy, its options, a number of retries or false, got ${showValue(value)}`,
    );
  }
  return RetryPolicy.from(value);
}

function layer(base: Config, options: MountOptions, where: string): Config {
  return Object.freeze({
    policy: toPolicy(options.retry, base.policy, `${where}: retry`),
    timeouts: resolveTimeouts(options.timeout, base.timeouts, `${where}: timeout`),
    headers: Object.freeze(mergeHeaders({ ...base.headers }, options.headers, `${where}: headers`)),
    hooks: mergeHooks(base.hooks, options.hooks, `${where}: hooks`),
    maxRedirects:
      options.maxRedirects === undefined
        ? base.maxRedirects
        : checkRedirects(`${where}: maxRedirects`, options.maxRedirects),
  });
}

function appendQuery(url: URL, query: RequestOptions['query'], where: string): void {
  if (query === undefined) return;
  if (query instanceof URLSearchParams) {
    for (const [k, v] of query) url.searchParams.append(k, v);
    return;
  }
  assertPlainObject(`${where}: query`, query);
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    for (const v of Array.isArray(value) ? value : [value]) url.searchParams.append(key, String(v));
  }
}

/**
 * A configured, pooled HTTP client: keep-alive connections (an undici `Agent`), a retry policy
 * with urllib3 semantics, timeouts that are always on, hooks and logs.
 *
 * @example
 * await using session = new Session({ retry: { total: 5, backoffFactor: 1000 }, timeout: [5000, 10_000] });
 * const res = await session.get('http://127.0.0.1:8080/status/503');
 * console.log(res.status, res.attempts);
 */
export class Session {
  readonly #base: Config;
  readonly #mounts: Array<{ prefix: string; config: Config }> = [];
  readonly #baseURL: string | undefined;
  readonly #logger: Logger | undefined;
  readonly #clock: Clock;
  readonly #ownDispatcher: boolean;
  readonly #dispatcher: Dispatcher | undefined;
  readonly #agents = new Map<number, Agent>();
  #closed = false;

  constructor(options: SessionOptions = {}) {
    assertPlainObject('Session options', options);
    assertKnownKeys('Session', options as Record<string, unknown>, SESSION_KEYS, {
      timeouts: 'use timeout',
      retries: 'use retry: { total: n }',
    });
    if (options.clock !== undefined && !isClock(options.clock))
      throw new TypeError(
        `Session: clock must have now() and sleep(), got ${showValue(options.clock)}`,
      );
    if (
      options.dispatcher !== undefined &&
      typeof (options.dispatcher as Dispatcher)?.request !== 'function'
    ) {
      throw new TypeError(
        `Session: dispatcher must be an undici Dispatcher, got ${showValue(options.dispatcher)}`,
      );
    }
    if (
      options.logger !== undefined &&
      options.logger !== false &&
      typeof (options.logger as Logger)?.warn !== 'function'
    ) {
      throw new TypeError(
        `Session: logger must have warn() and debug() methods (console, pino...), got ${showValue(options.logger)}`,
      );
    }
    this.#baseURL = options.baseURL === undefined ? undefined : Session.#checkBase(options.baseURL);
    this.#logger = options.logger === false ? undefined : (options.logger ?? environmentLogger());
    this.#clock = options.clock ?? systemClock;
    this.#dispatcher = options.dispatcher;
    this.#ownDispatcher = options.dispatcher === undefined;
    const root: Config = {
      policy: new RetryPolicy(),
      timeouts: DEFAULT_TIMEOUTS,
      headers: { 'user-agent': `dogged/${VERSION}` },
      hooks: NO_HOOKS,
      maxRedirects: 20,
    };
    this.#base = layer(root, options, 'Session');
  }

  static #checkBase(value: string | URL): string {
    const text = String(value);
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new InvalidURLError(
        `Session: baseURL ${JSON.stringify(redactUrl(text))} is not an absolute URL`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new InvalidURLError(`Session: baseURL must be http or https, got ${url.protocol}`);
    }
    return text.replace(/\/+$/, '');
  }

  /**
   * Uses other settings for URLs that start with `prefix`; the longest matching prefix wins
   * (requests' `mount`). Returns the session.
   * @example session.mount('http://127.0.0.1:8080/slow/', { timeout: { read: 60_000 }, retry: { total: 1 } });
   */
  mount(prefix: string, options: MountOptions): this {
    if (typeof prefix !== 'string' || prefix === '')
      throw new TypeError(
        `Session.mount: prefix must be a non-empty string, got ${showValue(prefix)}`,
      );
    assertPlainObject('Session.mount options', options);
    assertKnownKeys('Session.mount', options as Record<string, unknown>, MOUNT_KEYS);
    const config = layer(this.#base, options, `Session.mount(${JSON.stringify(prefix)})`);
    const existing = this.#mounts.findIndex((m) => m.prefix === prefix);
    if (existing >= 0) this.#mounts.splice(existing, 1);
    this.#mounts.push({ prefix, config });
    this.#mounts.sort((a, b) => b.prefix.length - a.prefix.length);
    return this;
  }

  #configFor(href: string): Config {
    for (const m of this.#mounts) if (href.startsWith(m.prefix)) return m.config;
    return this.#base;
  }

  #dispatcherFor(connectTimeout: number): Dispatcher {
    if (this.#dispatcher) return this.#dispatcher;
    let agent = this.#agents.get(connectTimeout);
    if (!agent) {
      agent = new Agent({ connect: { timeout: connectTimeout } });
      this.#agents.set(connectTimeout, agent);
    }
    return agent;
  }

  #resolveUrl(input: string | URL, query: RequestOptions['query']): URL {
    let text = String(input);
    if (this.#baseURL !== undefined && !/^[a-z][a-z0-9+.-]*:/i.test(text))
      text = `${this.#baseURL}/${text.replace(/^\/+/, '')}`;
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new InvalidURLError(
        `${JSON.stringify(redactUrl(text))} is not an absolute URL${this.#baseURL ? '' : ' (and the session has no baseURL)'}`,
        { url: text },
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new InvalidURLError(`only http and https URLs are supported, got ${url.protocol}`, {
        url: text,
      });
    appendQuery(url, query, 'request');
    return url;
  }

  /**
   * Sends a request with the session's retries and timeouts; resolves once the response head
   * arrives (read the body with `text()`, `json()`...). Redirects are followed (up to
   * `maxRedirects`).
   */
  request(input: string | URL, options: RequestOptions = {}): Promise<DoggedResponse> {
    return this.#send(input, options, 'follow', false);
  }

  /**
   * A drop-in WHATWG `fetch` with the session's retries, timeouts, hooks and logs: `Request` or
   * URL + init in, `Response` out. A status is never an error (when retries run out the last
   * response is returned); a network failure rejects with `TypeError: fetch failed` whose
   * `cause` is dogged's error. A `Request`'s body is buffered once so every retry can send it.
   * @example const res = await session.fetch('http://127.0.0.1:8080/flaky/a?fail=2'); console.log(res.status);
   */
  async fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    const call = await fromFetchArguments(input, init);
    try {
      return toFetchResponse(await this.#send(call.url, call.options, call.redirect, true));
    } catch (error) {
      throw toFetchError(error);
    }
  }

  async #send(
    input: string | URL,
    options: RequestOptions,
    redirect: 'follow' | 'manual' | 'error',
    fetchMode: boolean,
  ): Promise<DoggedResponse> {
    if (this.#closed) throw new Error('this Session is closed');
    assertPlainObject('request options', options);
    assertKnownKeys('request', options as Record<string, unknown>, REQUEST_KEYS, REQUEST_HINTS);
    if (options.signal !== undefined) assertAbortSignal('request: signal', options.signal);
    const method = (options.method ?? 'GET').toUpperCase();
    if (!/^[A-Z]+$/.test(method))
      throw new TypeError(
        `request: method must be a token such as GET or POST, got ${showValue(options.method)}`,
      );
    const url = this.#resolveUrl(input, options.query);
    const href = url.href;
    const config = this.#configFor(href);
    const timeouts = resolveTimeouts(options.timeout, config.timeouts, 'request: timeout');
    const policy = toPolicy(options.retry, config.policy, 'request: retry');
    const maxRedirects =
      options.maxRedirects === undefined
        ? config.maxRedirects
        : checkRedirects('request: maxRedirects', options.maxRedirects);
    const headers = mergeHeaders({ ...config.headers }, options.headers, 'request: headers');
    const body = await prepareBody(
      options.body,
      options.json,
      'json' in options && options.json !== undefined,
      'request',
    );
    if (body.contentType && headers['content-type'] === undefined)
      headers['content-type'] = body.contentType;
    const key = options.idempotencyKey;
    if (key !== undefined && key !== false) {
      if (key !== true && (typeof key !== 'string' || key === '')) {
        throw new TypeError(
          `request: idempotencyKey must be true or a non-empty string, got ${showValue(key)}`,
        );
      }
      headers['idempotency-key'] = key === true ? randomUUID() : key;
    }
    if (url.username || url.password) {
      headers.authorization ??= `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;
    }
    const exchange = new Exchange({
      dispatcher: this.#dispatcherFor(timeouts.connect),
      target: {
        method,
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        url: redactUrl(href) as string,
        headers,
        body,
      },
      policy,
      replaySafe: headers['idempotency-key'] !== undefined,
      timeouts,
      hooks: config.hooks,
      logger: this.#logger,
      clock: this.#clock,
      signal: options.signal,
      throwOnStatus: options.throwOnStatus === true,
      maxRedirects,
      redirect,
      returnLastResponse: fetchMode,
    });
    return exchange.send();
  }

  /** GET */
  get(url: string | URL, options: Omit<RequestOptions, 'method'> = {}): Promise<DoggedResponse> {
    return this.request(url, { ...options, method: 'GET' });
  }
  /** HEAD */
  head(url: string | URL, options: Omit<RequestOptions, 'method'> = {}): Promise<DoggedResponse> {
    return this.request(url, { ...options, method: 'HEAD' });
  }
  /** POST: not retried once it may have reached the server, unless it carries an idempotency key. */
  post(url: string | URL, options: Omit<RequestOptions, 'method'> = {}): Promise<DoggedResponse> {
    return this.request(url, { ...options, method: 'POST' });
  }
  /** PUT */
  put(url: string | URL, options: Omit<RequestOptions, 'method'> = {}): Promise<DoggedResponse> {
    return this.request(url, { ...options, method: 'PUT' });
  }
  /** PATCH: not retried once it may have reached the server, unless it carries an idempotency key. */
  patch(url: string | URL, options: Omit<RequestOptions, 'method'> = {}): Promise<DoggedResponse> {
    return this.request(url, { ...options, method: 'PATCH' });
  }
  /** DELETE */
  delete(url: string | URL, options: Omit<RequestOptions, 'method'> = {}): Promise<DoggedResponse> {
    return this.request(url, { ...options, method: 'DELETE' });
  }
  /** OPTIONS */
  options(
    url: string | URL,
    options: Omit<RequestOptions, 'method'> = {},
  ): Promise<DoggedResponse> {
    return this.request(url, { ...options, method: 'OPTIONS' });
  }

  /** Closes the session's connections (a dispatcher you passed in is left open). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const agents = [...this.#agents.values()];
    this.#agents.clear();
    await Promise.all(agents.map((a) => a.close()));
  }

  /** `await using session = new Session()` closes it at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether the session owns its dispatcher (and closes it). */
  get ownsDispatcher(): boolean {
    return this.#ownDispatcher;
  }
}
