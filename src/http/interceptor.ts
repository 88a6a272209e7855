import type { Dispatcher } from 'undici';
import { type Clock, systemClock } from '../retry/clock.js';
import { classifyError } from './classify.js';
import { DoggedError } from './errors.js';
import { RetryPolicy, type RetryPolicyOptions } from './policy.js';
import { DRAIN_LIMIT_BYTES } from './response.js';

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;
type Headers_ = Record<string, string | string[] | undefined>;

/** Options of {@link retryInterceptor}: a policy (or its options) and the clock to sleep on. */
export interface RetryInterceptorOptions {
  /**
   * The retry policy.
   * @default new RetryPolicy()
   * @example { policy: { total: 5, backoffFactor: 500 } }
   */
  policy?: RetryPolicy | RetryPolicyOptions;
  /**
   * The clock retries sleep on.
   * @default the system clock
   */
  clock?: Clock;
}

function rawHeaderValue(value: string | string[] | undefined): Buffer | Buffer[] {
  return Array.isArray(value)
    ? value.map((v) => Buffer.from(v, 'latin1'))
    : Buffer.from(value ?? '', 'latin1');
}

function toRaw(headers: Headers_): Buffer[] {
  const raw: Buffer[] = [];
  for (const [key, value] of Object.entries(headers)) {
    const v = rawHeaderValue(value);
    for (const one of Array.isArray(v) ? v : [v]) raw.push(Buffer.from(key, 'latin1'), one);
  }
  return raw;
}

/** The new controller-based handler API, whatever style the caller's handler uses. */
function modern(handler: Handler): Handler {
  if (handler.onRequestStart) return handler;
  return {
    onRequestStart: (controller, context) =>
      (
        handler.onConnect as
          | ((abort: (reason?: Error) => void, context: unknown) => void)
          | undefined
      )?.((reason) => controller.abort(reason ?? new Error('aborted')), context),
    onRequestUpgrade: (_controller, statusCode, headers, socket) =>
      handler.onUpgrade?.(statusCode, toRaw(headers as Headers_), socket),
    onResponseStart: (controller, statusCode, headers, statusMessage) => {
      if (
        handler.onHeaders?.(
          statusCode,
          toRaw(headers as Headers_),
          () => controller.resume(),
          statusMessage ?? '',
        ) === false
      )
        controller.pause();
    },
    onResponseData: (controller, chunk) => {
      if (handler.onData?.(chunk) === false) controller.pause();
    },
    onResponseEnd: (_controller, trailers) =>
      handler.onComplete?.(toRaw(trailers as Headers_).map((b) => b.toString('latin1'))),
    onResponseError: (_controller, error) => {
      if (!handler.onError) throw error;
      handler.onError(error);
    },
  };
}

function hasIdempotencyKey(headers: Dispatcher.DispatchOptions['headers']): boolean {
  if (!headers) return false;
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2)
      if (String(headers[i]).toLowerCase() === 'idempotency-key') return true;
    return false;
  }
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const pair of headers as Iterable<[string, string]>)
      if (String(pair[0]).toLowerCase() === 'idempotency-key') return true;
    return false;
  }
  return Object.keys(headers).some((k) => k.toLowerCase() === 'idempotency-key');
}

function isReplayable(body: unknown): boolean {
  return (
    body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array
  );
}

/** The caller's stable controller: forwards to whichever attempt is live. */
class ForwardingController implements Controller {
  target: Controller | undefined;
  #paused = false;
  #aborted: Error | null = null;
  onAbortWhileIdle: ((reason: Error) => void) | undefined;

  get aborted(): boolean {
    return this.#aborted !== null || (this.target?.aborted ?? false);
  }
  get paused(): boolean {
    return this.#paused;
  }
  get reason(): Error | null {
    return this.#aborted ?? this.target?.reason ?? null;
  }
  abort(reason: Error): void {
    this.#aborted = reason;
    if (this.target) this.target.abort(reason);
    else this.onAbortWhileIdle?.(reason);
  }
  pause(): void {
    this.#paused = true;
    this.target?.pause();
  }
  resume(): void {
    this.#paused = false;
    this.target?.resume();
  }
}

/** One request through the interceptor, across its attempts. */
class InterceptedRequest implements Handler {
  readonly #dispatch: Dispatcher.Dispatch;
  readonly #opts: Dispatcher.DispatchOptions;
  readonly #handler: Handler;
  readonly #clock: Clock;
  readonly #method: string;
  readonly #url: string;
  readonly #replaySafe: boolean;
  readonly #replayable: boolean;
  readonly #proxy = new ForwardingController();
  #policy: RetryPolicy;
  #started = false;
  #delivering = false;
  #swallowing: { size: number; delay: number } | undefined;
  #sleep: AbortController | undefined;
  #done = false;

  constructor(
    dispatch: Dispatcher.Dispatch,
    opts: Dispatcher.DispatchOptions,
    handler: Handler,
    policy: RetryPolicy,
    clock: Clock,
  ) {
    this.#dispatch = dispatch;
    this.#opts = opts;
    this.#handler = modern(handler);
    this.#policy = policy;
    this.#clock = clock;
    this.#method = (opts.method ?? 'GET').toUpperCase();
    this.#url = `${opts.origin ?? ''}${opts.path}`;
    this.#replaySafe = hasIdempotencyKey(opts.headers);
    this.#replayable = isReplayable(opts.body);
    this.#proxy.onAbortWhileIdle = (reason) => this.#fail(reason);
  }

  start(): boolean {
    return this.#dispatch(this.#opts, this);
  }

  onRequestStart(controller: Controller, context: unknown): void {
    this.#proxy.target = controller;
    if (this.#proxy.paused) controller.pause();
    if (!this.#started) {
      this.#started = true;
      this.#handler.onRequestStart?.(this.#proxy, context);
    }
    if (this.#proxy.reason) controller.abort(this.#proxy.reason);
  }

  onRequestUpgrade(
    _controller: Controller,
    statusCode: number,
    headers: Dispatcher.DispatchController['rawHeaders'] & object,
    socket: import('node:stream').Duplex,
  ): void {
    this.#handler.onRequestUpgrade?.(this.#proxy, statusCode, headers as never, socket);
  }

  onResponseStart(
    controller: Controller,
    statusCode: number,
    headers: Headers_,
    statusMessage?: string,
  ): void {
    if (
      !this.#delivering &&
      this.#policy.isRetry(
        this.#method,
        statusCode,
        headers['retry-after'] !== undefined,
        this.#replaySafe,
      )
    ) {
      try {
        const response = {
          status: statusCode,
          url: this.#url,
          headers: new Headers(headers as Record<string, string>),
        };
        const next = this.#policy.increment({
          method: this.#method,
          url: this.#url,
          response,
          replaySafe: this.#replaySafe,
        });
        const { delayMs } = next.getRetryDelay(response, {
          method: this.#method,
          url: this.#url,
          now: Date.now(),
        });
        if (!this.#replayable) throw new Error('body not replayable');
        this.#policy = next;
        this.#swallowing = { size: 0, delay: delayMs };
        return;
      } catch {
        // Exhausted, too long a Retry-After, or a body we cannot send again: the caller gets this response.
      }
    }
    this.#delivering = true;
    this.#handler.onResponseStart?.(this.#proxy, statusCode, headers as never, statusMessage);
    void controller;
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.#swallowing) {
      this.#swallowing.size += chunk.length;
      // Draining a large body costs more than a new connection.
      if (this.#swallowing.size > DRAIN_LIMIT_BYTES)
        controller.abort(new Error('retried response body too large to drain'));
      return;
    }
    this.#handler.onResponseData?.(this.#proxy, chunk);
  }

  onResponseEnd(_controller: Controller, trailers: Headers_): void {
    if (this.#swallowing) {
      this.#retryLater(this.#swallowing.delay);
      return;
    }
    this.#done = true;
    this.#handler.onResponseEnd?.(this.#proxy, trailers as never);
  }

  onResponseError(_controller: Controller, error: Error): void {
    if (this.#done) return;
    if (this.#swallowing) {
      this.#retryLater(this.#swallowing.delay);
      return;
    }
    if (this.#delivering || this.#proxy.reason) {
      this.#fail(error);
      return;
    }
    const classified = classifyError(error, { method: this.#method, url: this.#url });
    if (classified === undefined || !(classified instanceof DoggedError) || !this.#replayable) {
      this.#fail(error);
      return;
    }
    try {
      const next = this.#policy.increment({
        method: this.#method,
        url: this.#url,
        error: classified,
        replaySafe: this.#replaySafe,
      });
      const { delayMs } = next.getRetryDelay();
      this.#policy = next;
      this.#retryLater(delayMs);
    } catch (final) {
      this.#fail(final instanceof Error ? final : error);
    }
  }

  #retryLater(delayMs: number): void {
    this.#swallowing = undefined;
    this.#proxy.target = undefined;
    const sleep = new AbortController();
    this.#sleep = sleep;
    this.#clock.sleep(delayMs, sleep.signal).then(
      () => {
        this.#sleep = undefined;
        if (this.#proxy.reason) return this.#fail(this.#proxy.reason);
        try {
          this.#dispatch(this.#opts, this);
        } catch (error) {
          this.#fail(error as Error);
        }
      },
      () => {
        // Cancelled by an abort: #fail has already reported it.
      },
    );
  }

  #fail(error: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#sleep?.abort(error);
    this.#handler.onResponseError?.(this.#proxy, error);
  }
}

/**
 * dogged's retries as an undici interceptor: compose it into any dispatcher and the global
 * `fetch`, `undici.request` and friends get the same policy without changing a call site.
 * Retried responses are drained (their connection reused); a response that will not be retried
 * (success, exhausted retries, a Retry-After above `maxRetryAfter`) is delivered as it is.
 *
 * @example
 * import { Agent, setGlobalDispatcher } from 'undici';
 * setGlobalDispatcher(new Agent().compose(retryInterceptor({ policy: { total: 5 } })));
 * const res = await fetch('http://127.0.0.1:8080/flaky/a?fail=2'); // retried transparently
 */
export function retryInterceptor(
  options: RetryInterceptorOptions | RetryPolicy = {},
): Dispatcher.DispatcherComposeInterceptor {
  const resolved: RetryInterceptorOptions =
    options instanceof RetryPolicy ? { policy: options } : options;
  const policy = RetryPolicy.from(resolved.policy);
  const clock = resolved.clock ?? systemClock;
  return (dispatch) =>
    function doggedRetry(opts, handler) {
      return new InterceptedRequest(dispatch, opts, handler, policy, clock).start();
    };
}
