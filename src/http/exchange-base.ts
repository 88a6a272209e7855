import type { Dispatcher } from 'undici';
import type { Clock } from '../retry/clock.js';
import { describeError, formatDuration } from '../retry/describe.js';
import type { Logger } from '../retry/log.js';
import { type LongTimer, setLongTimeout } from '../retry/timer.js';
import type { FailureContext } from './classify.js';
import type { CookieStore } from './cookies.js';
import { BudgetExhaustedError, type DoggedError, ProxyError, TotalTimeoutError } from './errors.js';
import type { HookLists } from './hooks.js';
import {
  budgetRejectedChannel,
  formatGiveUp,
  formatRetry,
  type GiveUpEvent,
  giveUpChannel,
  type RetryEvent,
  requestRetryChannel,
  retryChannel,
} from './observe.js';
import type { RetryPolicy } from './policy.js';
import { ProxyRotation, type ProxyRouting } from './proxy-rotation.js';
import type { Target } from './redirect.js';
import type { DoggedResponse } from './response.js';
import { describeStatus } from './status.js';
import type { OriginGuard, StormControl } from './storm.js';
import type { ResolvedTimeouts } from './timeouts.js';

/** Everything one logical request needs; built by the Session. */
export interface ExchangeInit {
  /** The dispatcher when the request is not routed through proxies. */
  dispatcher: Dispatcher;
  /** Proxy routing (pools, noProxy, environment), when the session has any. */
  routing: ProxyRouting | undefined;
  /** Retry budget, circuit breaker, rate limit and cooldown, per origin. */
  storm: StormControl;
  /** Method, URL, headers and body of the first attempt; redirects change it. */
  target: Target;
  policy: RetryPolicy;
  replaySafe: boolean;
  timeouts: ResolvedTimeouts;
  hooks: HookLists;
  logger: Logger | undefined;
  clock: Clock;
  signal: AbortSignal | undefined;
  throwOnStatus: boolean;
  /** Redirects to follow at most; 0 returns the 3xx. */
  maxRedirects: number;
  /** `follow`, `manual` (return the 3xx) or `error` (throw on a redirect), as in fetch. */
  redirect: 'follow' | 'manual' | 'error';
  /**
   * fetch semantics: when status retries run out (or a Retry-After is too long) the last
   * response is returned as it is instead of an error.
   */
  returnLastResponse: boolean;
  /** The body limit the caller set (`maxBodySize`), in bytes; undefined: the defaults. */
  maxBodySize: number | undefined;
  /** Decode the body by its Content-Encoding (`decompress`). */
  decompress: boolean;
  /** The Session's cookie jar; undefined with `cookies: false`. */
  cookies: CookieStore | undefined;
}

/** Extra headers for one attempt: a resumed download's Range and validator. */
export interface ResumeFrom {
  /** The first byte wanted. */
  start: number;
  /** A strong ETag: sent as If-Match. */
  etag?: string;
  /** Last-Modified: sent as If-Range when there is no strong ETag. */
  lastModified?: string;
}

/**
 * The state and the edges of one logical request: the total deadline, sleeps on the clock,
 * hooks, logs and diagnostics events, and the proxy of each attempt (rotation after a ban or a
 * proxy failure). {@link Exchange} adds the attempt loop.
 */
export abstract class ExchangeBase {
  protected readonly init: ExchangeInit;
  protected target: Target;
  protected policy: RetryPolicy;
  /** Attempts made so far. */
  protected attempt = 0;
  /** The last failure, described, for the total-timeout message. */
  protected lastFailure: string | undefined;
  readonly #deadline: number | undefined;
  protected readonly deadlineController: AbortController | undefined;
  /** The caller's signal combined with the total deadline. */
  protected readonly signal: AbortSignal | undefined;
  /** The most attempts the policy allows (rotations come on top). */
  protected readonly maxAttempts: number;
  protected readonly rotation: ProxyRotation | undefined;

  constructor(init: ExchangeInit) {
    this.init = init;
    this.rotation = init.routing && new ProxyRotation(init.routing);
    this.target = init.target;
    this.policy = init.policy;
    const total = init.timeouts.total;
    // Infinity: no total deadline at all.
    if (total !== undefined && Number.isFinite(total)) {
      this.#deadline = init.clock.now() + total;
      this.deadlineController = new AbortController();
      this.signal = init.signal
        ? AbortSignal.any([init.signal, this.deadlineController.signal])
        : this.deadlineController.signal;
    } else {
      this.signal = init.signal;
    }
    const retries = init.policy.remaining.total;
    this.maxAttempts = retries === undefined ? Number.POSITIVE_INFINITY : retries + 1;
  }

  /**
   * The total deadline as a timer that aborts the attempt in flight (chained past Node's timer
   * limit: `--max-time 600h` is 600 hours, not 1 ms).
   */
  protected armDeadline(): LongTimer | undefined {
    if (this.#deadline === undefined || !this.deadlineController) return undefined;
    const left = this.#deadline - this.init.clock.now();
    if (left <= 0) throw this.#deadlineError('the total timeout had already passed');
    const controller = this.deadlineController;
    return setLongTimeout(
      () => controller.abort(this.#deadlineError('the attempt in flight was cut off')),
      left,
    ).unref();
  }

  #deadlineError(what: string): TotalTimeoutError {
    const init = this.init;
    const last = this.lastFailure ? `; the last failure was ${this.lastFailure}` : '';
    return new TotalTimeoutError(
      `${this.target.method} ${this.target.url} hit its total timeout of ${formatDuration(init.timeouts.total ?? 0)} after ${this.attempt} ${this.attempt === 1 ? 'attempt' : 'attempts'}: ${what}${last}`,
      { method: this.target.method, url: this.target.url, attempts: this.attempt },
    );
  }

  /** The storm-control guard of the origin the next attempt goes to. */
  protected guard(): OriginGuard {
    return this.init.storm.forOrigin(this.target.origin);
  }

  /**
   * Takes one retry from the origin's budget: false when it is spent, and the caller fails
   * fast with the real last outcome instead of adding load to a struggling server.
   */
  protected spendBudget(guard: OriginGuard): boolean {
    if (guard.budget === undefined || guard.budget.tryRetry()) return true;
    if (budgetRejectedChannel.hasSubscribers)
      budgetRejectedChannel.publish({ request: this, origin: guard.origin });
    return false;
  }

  protected budgetExhausted(guard: OriginGuard, cause: unknown): BudgetExhaustedError {
    const snapshot = guard.budget?.snapshot();
    const retries = snapshot?.window.retries ?? 0;
    const error = new BudgetExhaustedError(
      `${this.target.method} ${this.target.url}: the retry budget for ${guard.origin} is spent (${retries} ${retries === 1 ? 'retry' : 'retries'} in the last ${formatDuration(snapshot?.ttlMs ?? 0)}), so it fails fast after ${this.attempt} ${this.attempt === 1 ? 'attempt' : 'attempts'} instead of adding load; the last failure was ${this.lastFailure ?? describeError(cause)}`,
      {
        method: this.target.method,
        url: this.target.url,
        attempts: this.attempt,
        cause,
        phase: 'none',
      },
    );
    this.gaveUp(error);
    return error;
  }

  /** The dispatcher of the next attempt: direct, or through the proxy the pool picks. */
  protected async route(): Promise<Dispatcher> {
    const rotation = this.rotation;
    if (!rotation) return this.init.dispatcher;
    try {
      return await rotation.next(
        this.target.origin,
        (ms) => this.sleep(ms),
        () => ({ method: this.target.method, url: this.target.url, attempts: this.attempt }),
      );
    } catch (error) {
      if (error instanceof ProxyError) {
        error.attempts = this.attempt;
        this.gaveUp(error);
      }
      throw error;
    }
  }

  protected failureContext(phase: 'request' | 'body'): FailureContext {
    return {
      method: this.target.method,
      url: this.target.url,
      attempts: this.attempt,
      ...(phase === 'body' && { phase: 'body' as const }),
      ...(this.rotation?.proxy !== undefined && { proxy: this.rotation.proxy }),
    };
  }

  protected async errorHooks(error: unknown): Promise<void> {
    const proxy = this.rotation?.proxy;
    for (const hook of this.init.hooks.error)
      await hook(error, {
        method: this.target.method,
        url: this.target.url,
        attempt: this.attempt,
        ...(proxy !== undefined && { proxy }),
      });
  }

  /**
   * The proxy itself failed (refused, CONNECT refused, tunnel failed): true when the request
   * moves on at once through another proxy of the pool. The request never reached its target,
   * so this is safe for any method. False leaves the error to the RetryPolicy. `classified` is
   * the failure as `classifyError` made it; aborts are the caller's to have handled.
   */
  protected async rotateAfterFailure(classified: unknown): Promise<boolean> {
    const rotation = this.rotation;
    if (!rotation?.proxy || !rotation.failed(classified)) return false;
    const target = this.target;
    if (!rotation.canRotate('failure') || (!target.body.replayable && target.body.consumed())) {
      rotation.handOver();
      return false;
    }
    const failure = classified as ProxyError;
    failure.attempts = this.attempt;
    await this.errorHooks(failure);
    this.lastFailure = describeError(failure);
    if (!(await this.beforeSleep(0, 'rotation', failure, undefined))) {
      this.gaveUp(failure);
      throw failure;
    }
    rotation.rotate();
    return true;
  }

  /**
   * The target answered a ban status through a proxy (already benched by the pool), or a
   * Retry-After (`hold`: that proxy and origin pair is already held): true when the request
   * moves on at once through another proxy. Like any retry of a response, only for methods the
   * policy may retry (or requests with an Idempotency-Key); false leaves the response to the
   * usual status handling.
   */
  protected async rotateAfterBan(
    response: DoggedResponse,
    after: 'ban' | 'hold' = 'ban',
  ): Promise<boolean> {
    const rotation = this.rotation as ProxyRotation;
    const target = this.target;
    if (
      !rotation.canRotate(after) ||
      !this.policy.isMethodRetryable(target.method, this.init.replaySafe) ||
      (!target.body.replayable && target.body.consumed())
    )
      return false;
    if (!(await this.beforeSleep(0, 'rotation', undefined, response.status))) return false;
    rotation.rotate();
    this.lastFailure = `${describeStatus(response.status)} through proxy ${rotation.proxy}`;
    await response.drain();
    return true;
  }

  /** Hooks, logs and events before a sleep; false when a hook vetoed the retry. */
  protected async beforeSleep(
    delayMs: number,
    source: RetryEvent['delaySource'],
    error: DoggedError | undefined,
    status: number | undefined,
  ): Promise<boolean> {
    const init = this.init;
    const rotations = (this.rotation?.rotations ?? 0) + (source === 'rotation' ? 1 : 0);
    const event: RetryEvent = Object.freeze({
      method: this.target.method,
      url: this.target.url,
      attempt: this.attempt,
      maxAttempts: this.maxAttempts + rotations,
      delayMs,
      delaySource: source,
      error,
      status,
      proxy: this.rotation?.proxy,
    });
    for (const hook of init.hooks.beforeRetry) if ((await hook(event)) === false) return false;
    init.logger?.warn(formatRetry(event));
    if (retryChannel.hasSubscribers) retryChannel.publish(event);
    if (requestRetryChannel.hasSubscribers) requestRetryChannel.publish({ request: this, event });
    return true;
  }

  protected async sleep(delayMs: number): Promise<void> {
    const init = this.init;
    if (this.#deadline !== undefined && init.clock.now() + delayMs >= this.#deadline) {
      const error = this.#deadlineError(
        `the next retry, ${formatDuration(delayMs)} away, would cross it`,
      );
      this.gaveUp(error);
      throw error;
    }
    await init.clock.sleep(delayMs, this.signal);
  }

  protected gaveUp(error: unknown): void {
    const init = this.init;
    if (!init.logger && !giveUpChannel.hasSubscribers) return;
    const event: GiveUpEvent = Object.freeze({
      method: this.target.method,
      url: this.target.url,
      attempts: this.attempt,
      error,
    });
    init.logger?.warn(formatGiveUp(event));
    if (giveUpChannel.hasSubscribers) giveUpChannel.publish(event);
  }
}
