import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Dispatcher } from 'undici';
import { type Clock, isClock, systemClock } from '../retry/clock.js';
import type { Logger } from '../retry/log.js';
import {
  assertAbortSignal,
  assertKnownKeys,
  assertPlainObject,
  nonNegativeInteger,
  showValue,
} from '../retry/validate.js';
import { NO_BODY, type PreparedBody, prepareBody } from './body.js';
import { checkMaxBodySize } from './body-limit.js';
import { type CookieStore, cookieStoreFor } from './cookies.js';
import { checkDecompress, DEFAULT_ACCEPT_ENCODING, withoutAcceptEncoding } from './decompress.js';
import { checkTls, Dispatchers } from './dispatchers.js';
import { InvalidURLError, redactUrl } from './errors.js';
import { Exchange } from './exchange.js';
import { fromFetchArguments, toFetchError, toFetchResponse } from './fetch.js';
import { type HeaderRecord, mergeHeaders } from './headers.js';
import { NO_HOOKS } from './hooks.js';
import { checkHttp2 } from './http2.js';
import { environmentLogger } from './observe.js';
import { plainUrl } from './plain-url.js';
import { RetryPolicy } from './policy.js';
import { mayProxy, poolFor, ROOT_PROXY_CONFIG } from './proxy-config.js';
import { type EnvironmentProxies, proxiesFromEnvironment } from './proxy-env.js';
import type { ProxyRouting } from './proxy-rotation.js';
import type { DoggedResponse } from './response.js';
import { appendQuery, type Config, layer, toPolicy } from './session-config.js';
import {
  MOUNT_KEYS,
  type MountOptions,
  REQUEST_HINTS,
  REQUEST_KEYS,
  type RequestOptions,
  SESSION_KEYS,
  type SessionOptions,
} from './session-options.js';
import { StormControl } from './storm.js';
import { TargetCache } from './target-cache.js';
import { DEFAULT_TIMEOUTS, type ResolvedTimeouts, resolveTimeouts } from './timeouts.js';
import { basicAuthOf, hostNameProblem } from './url-checks.js';

export type {
  MountOptions,
  RequestOptions,
  RetryOption,
  SessionOptions,
} from './session-options.js';

/** A request's URL, parsed and checked (see `Session.#target`). */
interface ParsedTarget {
  readonly href: string;
  readonly origin: string;
  /** Path and query, as undici takes them. */
  readonly path: string;
  /** The URL with credentials shown as `***@`. */
  readonly redacted: string;
  /** `Authorization: Basic` from the URL's credentials; false when they do not decode. */
  readonly authorization: string | undefined | false;
}

/** The options of a request that gives none: one object for all (nothing writes to it). */
const NO_OPTIONS: RequestOptions = Object.freeze({});

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

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
  /** Decode response bodies (`decompress`). */
  #decompress = true;
  /** The cookie jar (`cookies`); undefined with `cookies: false`. */
  readonly #cookies: CookieStore | undefined;
  readonly #clock: Clock;
  readonly #ownDispatcher: boolean;
  readonly #dispatcher: Dispatcher | undefined;
  readonly #dispatchers: Dispatchers;
  readonly #environment: EnvironmentProxies | undefined;
  /** URLs as requests gave them (no query option), parsed and checked, while they repeat. */
  readonly #targets = new TargetCache<ParsedTarget>();
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
    if (options.dispatcher !== undefined) {
      const clash = (['proxies', 'tls', 'proxyFromEnvironment', 'http2'] as const).find(
        (name) => options[name] !== undefined && options[name] !== false,
      );
      if (clash)
        throw new TypeError(
          `Session: ${clash} needs dogged's own dispatchers; pass either dispatcher or ${clash}, not both`,
        );
    }
    this.#dispatchers = new Dispatchers(
      options.tls === undefined ? undefined : checkTls(options.tls, 'Session: tls'),
      options.http2 === undefined ? false : checkHttp2('Session: http2', options.http2),
    );
    this.#environment =
      options.proxyFromEnvironment === undefined
        ? undefined
        : proxiesFromEnvironment(options.proxyFromEnvironment, this.#clock);
    const root: Config = {
      policy: new RetryPolicy(),
      timeouts: DEFAULT_TIMEOUTS,
      maxBodySize: undefined,
      headers:
        options.decompress === false
          ? { 'user-agent': `dogged/${VERSION}` }
          : { 'user-agent': `dogged/${VERSION}`, 'accept-encoding': DEFAULT_ACCEPT_ENCODING },
      hooks: NO_HOOKS,
      maxRedirects: 20,
      proxy: ROOT_PROXY_CONFIG,
      storm: new StormControl({}, this.#clock, 'Session'),
      stormOptions: {},
    };
    this.#base = layer(root, options, 'Session', this.#clock);
    if (options.decompress !== undefined)
      this.#decompress = checkDecompress('Session: decompress', options.decompress);
    this.#cookies = cookieStoreFor('Session: cookies', options.cookies);
  }

  /**
   * The Session's cookie store: its own tough-cookie `CookieJar` (the default), the one you
   * passed as `cookies`, or undefined with `cookies: false`.
   * @example const cookie = await session.cookies?.getCookieString('https://example.com/');
   */
  get cookies(): CookieStore | undefined {
    return this.#cookies;
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
    const where = `Session.mount(${JSON.stringify(prefix)})`;
    if (this.#dispatcher && options.proxies !== undefined && options.proxies !== false)
      throw new TypeError(
        `${where}: proxies need dogged's own dispatchers, and this session has a dispatcher`,
      );
    const config = layer(this.#base, options, where, this.#clock);
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
    return this.#dispatcher ?? this.#dispatchers.direct(connectTimeout);
  }

  /** How the request's attempts find their proxy; undefined when they always go direct. */
  #routing(
    config: Config,
    connectTimeout: number,
    options: RequestOptions,
  ): ProxyRouting | undefined {
    if (
      options.proxyKey !== undefined &&
      (typeof options.proxyKey !== 'string' || options.proxyKey === '')
    )
      throw new TypeError(
        `request: proxyKey must be a non-empty string, got ${showValue(options.proxyKey)}`,
      );
    const maxRotations =
      options.proxyRotations === undefined
        ? config.proxy.rotations
        : nonNegativeInteger('request: proxyRotations', options.proxyRotations);
    const environment = this.#environment;
    if (!mayProxy(config.proxy, environment)) return undefined;
    return {
      poolFor: (url) => poolFor(config.proxy, environment, url),
      dispatcher: (proxy) =>
        proxy === undefined
          ? this.#dispatcherFor(connectTimeout)
          : this.#dispatchers.proxy(proxy, connectTimeout),
      maxRotations,
      key: options.proxyKey,
      logger: this.#logger,
    };
  }

  /**
   * The request's URL, parsed and checked once: a URL string given again (without a `query`
   * option) is looked up instead of parsed again, while the Session's URLs repeat (see
   * TargetCache).
   */
  #target(input: string | URL, query: RequestOptions['query']): ParsedTarget {
    const cacheable = typeof input === 'string' && query === undefined;
    if (cacheable) {
      const known = this.#targets.get(input);
      if (known) return known;
      // Most URLs need no parse: written as the parser would write them (see plainUrl).
      const plain = plainUrl(input);
      if (plain !== undefined) {
        const target: ParsedTarget = Object.freeze({
          href: plain.href,
          origin: plain.origin,
          path: plain.path,
          redacted: redactUrl(plain.href) as string,
          authorization: undefined,
        });
        this.#targets.set(input, target);
        return target;
      }
    }
    const url = this.#resolveUrl(input, query);
    const href = url.href;
    const target: ParsedTarget = Object.freeze({
      href,
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      redacted: redactUrl(href) as string,
      authorization: basicAuthOf(url),
    });
    if (cacheable) this.#targets.set(input, target);
    return target;
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
    const hostProblem = hostNameProblem(url);
    if (hostProblem)
      throw new InvalidURLError(
        `${JSON.stringify(redactUrl(text))} cannot be fetched: ${hostProblem}`,
        {
          url: text,
        },
      );
    appendQuery(url, query, 'request');
    return url;
  }

  /**
   * Sends a request with the session's retries and timeouts; resolves once the response head
   * arrives (read the body with `text()`, `json()`...). Redirects are followed (up to
   * `maxRedirects`).
   */
  request(input: string | URL, options: RequestOptions = NO_OPTIONS): Promise<DoggedResponse> {
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

  /**
   * Checks the options and builds the request's Exchange, then sends it. Not an async function:
   * when nothing needs awaiting before the first attempt (no Blob body to read), the attempt
   * starts at once, without promise hops; a bad option still comes back as a rejection.
   */
  #send(
    input: string | URL,
    options: RequestOptions,
    redirect: 'follow' | 'manual' | 'error',
    fetchMode: boolean,
    method?: string,
  ): Promise<DoggedResponse> {
    try {
      const exchange = this.#prepare(input, options, redirect, fetchMode, method);
      return exchange instanceof Exchange
        ? exchange.send()
        : exchange.then((ready) => ready.send());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #prepare(
    input: string | URL,
    options: RequestOptions,
    redirect: 'follow' | 'manual' | 'error',
    fetchMode: boolean,
    givenMethod: string | undefined,
  ): Exchange | Promise<Exchange> {
    if (this.#closed) throw new Error('this Session is closed');
    if (options !== NO_OPTIONS) {
      assertPlainObject('request options', options);
      assertKnownKeys('request', options as Record<string, unknown>, REQUEST_KEYS, REQUEST_HINTS);
      if (options.signal !== undefined) assertAbortSignal('request: signal', options.signal);
    }
    const method = givenMethod ?? (options.method ?? 'GET').toUpperCase();
    if (givenMethod === undefined && !/^[A-Z]+$/.test(method))
      throw new TypeError(
        `request: method must be a token such as GET or POST, got ${showValue(options.method)}`,
      );
    const url = this.#target(input, options.query);
    const config = this.#configFor(url.href);
    const timeouts = resolveTimeouts(options.timeout, config.timeouts, 'request: timeout');
    const policy = toPolicy(options.retry, config.policy, 'request: retry');
    const maxBodySize =
      options.maxBodySize === undefined
        ? config.maxBodySize
        : checkMaxBodySize('request: maxBodySize', options.maxBodySize);
    const decompress =
      options.decompress === undefined
        ? this.#decompress
        : checkDecompress('request: decompress', options.decompress);
    const maxRedirects =
      options.maxRedirects === undefined
        ? config.maxRedirects
        : nonNegativeInteger('request: maxRedirects', options.maxRedirects);
    // The configured headers are shared (frozen) until something changes them for this request:
    // its own headers, a content-type, an idempotency key, credentials, or beforeRequest hooks
    // (they may change them in place).
    let headers =
      options.headers !== undefined || config.hooks.beforeRequest.length > 0
        ? mergeHeaders({ ...config.headers }, options.headers, 'request: headers')
        : config.headers;
    if (!decompress && headers['accept-encoding'] === DEFAULT_ACCEPT_ENCODING)
      headers = withoutAcceptEncoding(headers);
    const ready = {
      options,
      redirect,
      fetchMode,
      method,
      url,
      config,
      timeouts,
      policy,
      maxBodySize,
      decompress,
      maxRedirects,
      headers,
    };
    if (options.body === undefined && !('json' in options && options.json !== undefined))
      return this.#exchange(ready, NO_BODY);
    return prepareBody(
      options.body,
      options.json,
      'json' in options && options.json !== undefined,
      'request',
    ).then((body) => this.#exchange(ready, body));
  }

  #exchange(
    ready: {
      options: RequestOptions;
      redirect: 'follow' | 'manual' | 'error';
      fetchMode: boolean;
      method: string;
      url: ParsedTarget;
      config: Config;
      timeouts: ResolvedTimeouts;
      policy: RetryPolicy;
      maxBodySize: number | undefined;
      decompress: boolean;
      maxRedirects: number;
      headers: HeaderRecord;
    },
    body: PreparedBody,
  ): Exchange {
    const { options, url, config, timeouts } = ready;
    const routing = this.#routing(config, timeouts.connect, options);
    let headers = ready.headers;
    // A copy of the configured headers, made when this request changes one, or when it may go
    // through a dispatcher that adds its own (a ProxyAgent sets Host) or one that is not ours.
    const shared = headers === config.headers;
    const key = options.idempotencyKey;
    const authorization = url.authorization;
    if (
      shared &&
      (routing !== undefined ||
        this.#dispatcher !== undefined ||
        (body.contentType && headers['content-type'] === undefined) ||
        (key !== undefined && key !== false) ||
        (authorization && headers.authorization === undefined))
    )
      headers = { ...config.headers };
    if (body.contentType && headers['content-type'] === undefined)
      headers['content-type'] = body.contentType;
    if (key !== undefined && key !== false) {
      if (key !== true && (typeof key !== 'string' || key === '')) {
        throw new TypeError(
          `request: idempotencyKey must be true or a non-empty string, got ${showValue(key)}`,
        );
      }
      headers['idempotency-key'] = key === true ? randomUUID() : key;
    }
    if (authorization === false)
      throw new InvalidURLError(
        `${JSON.stringify(url.redacted)}: its user name or password is not valid percent-encoding`,
        { url: url.href },
      );
    if (authorization !== undefined) headers.authorization ??= authorization;
    return new Exchange({
      dispatcher: this.#dispatcherFor(timeouts.connect),
      routing,
      storm: config.storm,
      target: {
        method: ready.method,
        origin: url.origin,
        path: url.path,
        url: url.redacted,
        headers,
        body,
      },
      policy: ready.policy,
      replaySafe: headers['idempotency-key'] !== undefined,
      timeouts,
      hooks: config.hooks,
      logger: this.#logger,
      clock: this.#clock,
      signal: options.signal,
      throwOnStatus: options.throwOnStatus === true,
      maxRedirects: ready.maxRedirects,
      redirect: ready.redirect,
      returnLastResponse: ready.fetchMode,
      maxBodySize: ready.maxBodySize,
      decompress: ready.decompress,
      cookies: this.#cookies,
    });
  }

  /**
   * `request` with `method`: the options as they are when they are a plain object without a
   * method of their own (no copy), else a copy with `method` over theirs.
   */
  #withMethod(
    method: string,
    url: string | URL,
    options: Omit<RequestOptions, 'method'>,
  ): Promise<DoggedResponse> {
    if (
      options !== null &&
      typeof options === 'object' &&
      Object.getPrototypeOf(options) === Object.prototype &&
      !('method' in options)
    )
      return this.#send(url, options, 'follow', false, method);
    return this.request(url, Object.assign({}, options, { method }));
  }

  /** GET */
  get(
    url: string | URL,
    options: Omit<RequestOptions, 'method'> = NO_OPTIONS,
  ): Promise<DoggedResponse> {
    return this.#withMethod('GET', url, options);
  }
  /** HEAD */
  head(
    url: string | URL,
    options: Omit<RequestOptions, 'method'> = NO_OPTIONS,
  ): Promise<DoggedResponse> {
    return this.#withMethod('HEAD', url, options);
  }
  /** POST: not retried once it may have reached the server, unless it carries an idempotency key. */
  post(
    url: string | URL,
    options: Omit<RequestOptions, 'method'> = NO_OPTIONS,
  ): Promise<DoggedResponse> {
    return this.#withMethod('POST', url, options);
  }
  /** PUT */
  put(
    url: string | URL,
    options: Omit<RequestOptions, 'method'> = NO_OPTIONS,
  ): Promise<DoggedResponse> {
    return this.#withMethod('PUT', url, options);
  }
  /** PATCH: not retried once it may have reached the server, unless it carries an idempotency key. */
  patch(
    url: string | URL,
    options: Omit<RequestOptions, 'method'> = NO_OPTIONS,
  ): Promise<DoggedResponse> {
    return this.#withMethod('PATCH', url, options);
  }
  /** DELETE */
  delete(
    url: string | URL,
    options: Omit<RequestOptions, 'method'> = NO_OPTIONS,
  ): Promise<DoggedResponse> {
    return this.#withMethod('DELETE', url, options);
  }
  /** OPTIONS */
  options(
    url: string | URL,
    options: Omit<RequestOptions, 'method'> = NO_OPTIONS,
  ): Promise<DoggedResponse> {
    return this.#withMethod('OPTIONS', url, options);
  }

  /** Closes the session's connections (a dispatcher you passed in is left open). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#dispatchers.close();
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
