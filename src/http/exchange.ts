import type { Dispatcher } from 'undici';
import type { Clock } from '../retry/clock.js';
import { describeError, formatDuration } from '../retry/describe.js';
import type { Logger } from '../retry/log.js';
import type { PreparedBody } from './body.js';
import { classifyError } from './classify.js';
import {
  DoggedError,
  HTTPStatusError,
  MaxRetryError,
  TotalTimeoutError,
  UnreplayableBodyError,
} from './errors.js';
import type { HeaderRecord } from './headers.js';
import type { HookLists } from './hooks.js';
import {
  formatGiveUp,
  formatRetry,
  type GiveUpEvent,
  giveUpChannel,
  type RetryEvent,
  retryChannel,
} from './observe.js';
import type { RetryPolicy } from './policy.js';
import { DoggedResponse } from './response.js';
import { describeStatus } from './status.js';
import type { ResolvedTimeouts } from './timeouts.js';

/** Everything one logical request needs; built by the Session. */
export interface ExchangeInit {
  dispatcher: Dispatcher;
  method: string;
  origin: string;
  path: string;
  /** The URL for messages, logs and history: credentials removed. */
  url: string;
  headers: HeaderRecord;
  body: PreparedBody;
  policy: RetryPolicy;
  replaySafe: boolean;
  timeouts: ResolvedTimeouts;
  hooks: HookLists;
  logger: Logger | undefined;
  clock: Clock;
  signal: AbortSignal | undefined;
  throwOnStatus: boolean;
}

/**
 * One logical request and its retries: the attempt loop of the Session. It asks the policy
 * what to do, sleeps on the Session's clock, drains what it will not return, and keeps its state
 * so that a body cut short later can be retried within the same policy.
 */
export class Exchange {
  readonly #init: ExchangeInit;
  #policy: RetryPolicy;
  #attempt = 0;
  #lastFailure: string | undefined;
  readonly #deadline: number | undefined;
  readonly #deadlineController: AbortController | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #maxAttempts: number;

  constructor(init: ExchangeInit) {
    this.#init = init;
    this.#policy = init.policy;
    const total = init.timeouts.total;
    if (total !== undefined) {
      this.#deadline = init.clock.now() + total;
      this.#deadlineController = new AbortController();
      this.#signal = init.signal
        ? AbortSignal.any([init.signal, this.#deadlineController.signal])
        : this.#deadlineController.signal;
    } else {
      this.#signal = init.signal;
    }
    const retries = init.policy.remaining.total;
    this.#maxAttempts = retries === undefined ? Number.POSITIVE_INFINITY : retries + 1;
  }

  /** Makes attempts until a response is returned or a final error is thrown. */
  async send(): Promise<DoggedResponse> {
    const init = this.#init;
    init.signal?.throwIfAborted();
    const timer = this.#armDeadline();
    try {
      for (;;) {
        this.#attempt++;
        if (init.hooks.beforeRequest.length) {
          const context = Object.freeze({
            method: init.method,
            url: init.url,
            attempt: this.#attempt,
            headers: init.headers,
          });
          for (const hook of init.hooks.beforeRequest) await hook(context);
        }
        let raw: Dispatcher.ResponseData;
        try {
          const options: Dispatcher.RequestOptions = {
            origin: init.origin,
            path: init.path,
            method: init.method as Dispatcher.HttpMethod,
            headers: init.headers,
            body: init.body.next() as NonNullable<Dispatcher.RequestOptions['body']>,
            headersTimeout: init.timeouts.read,
            bodyTimeout: init.timeouts.read,
          };
          if (this.#signal) options.signal = this.#signal;
          raw = await init.dispatcher.request(options);
        } catch (error) {
          await this.#retryAfterError(error, 'request');
          continue;
        }
        const response = new DoggedResponse(raw, {
          url: init.url,
          method: init.method,
          attempts: this.#attempt,
          history: this.#policy.history,
          retryBody: (error) => this.#retryBody(error),
        });
        for (const hook of init.hooks.response) await hook(response);
        const status = raw.statusCode;
        if (
          this.#policy.isRetry(
            init.method,
            status,
            raw.headers['retry-after'] !== undefined,
            init.replaySafe,
          )
        ) {
          if (await this.#retryStatus(response)) continue;
        }
        init.logger?.debug(
          `${init.method} ${init.url} answered ${describeStatus(status)} (attempt ${this.#attempt})`,
        );
        if (init.throwOnStatus && status >= 400) {
          await response.drain();
          const error = new HTTPStatusError(
            `${init.method} ${init.url} answered ${describeStatus(status)}`,
            {
              status,
              response,
              method: init.method,
              url: init.url,
              attempts: this.#attempt,
            },
          );
          this.#gaveUp(error);
          throw error;
        }
        return response;
      }
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /** The total deadline as a timer that aborts the attempt in flight. */
  #armDeadline(): ReturnType<typeof setTimeout> | undefined {
    if (this.#deadline === undefined || !this.#deadlineController) return undefined;
    const left = this.#deadline - this.#init.clock.now();
    if (left <= 0) throw this.#deadlineError('the total timeout had already passed');
    const controller = this.#deadlineController;
    const timer = setTimeout(
      () => controller.abort(this.#deadlineError('the attempt in flight was cut off')),
      left,
    );
    timer.unref();
    return timer;
  }

  #deadlineError(what: string): TotalTimeoutError {
    const init = this.#init;
    const last = this.#lastFailure ? `; the last failure was ${this.#lastFailure}` : '';
    return new TotalTimeoutError(
      `${init.method} ${init.url} hit its total timeout of ${formatDuration(init.timeouts.total ?? 0)} after ${this.#attempt} ${this.#attempt === 1 ? 'attempt' : 'attempts'}: ${what}${last}`,
      { method: init.method, url: init.url, attempts: this.#attempt },
    );
  }

  /** A failed attempt: throw the final error, or sleep and return to try again. */
  async #retryAfterError(error: unknown, phase: 'request' | 'body'): Promise<void> {
    const init = this.#init;
    if (init.signal?.aborted) throw init.signal.reason;
    if (this.#deadlineController?.signal.aborted) {
      const reason = this.#deadlineController.signal.reason;
      this.#gaveUp(reason);
      throw reason;
    }
    const classified = classifyError(error, {
      method: init.method,
      url: init.url,
      attempts: this.#attempt,
      ...(phase === 'body' && { phase: 'body' as const }),
    });
    if (classified === undefined) throw error;
    if (classified instanceof DoggedError) classified.attempts = this.#attempt;
    for (const hook of init.hooks.error)
      await hook(classified, { method: init.method, url: init.url, attempt: this.#attempt });
    let next: RetryPolicy;
    try {
      next = this.#policy.increment({
        method: init.method,
        url: init.url,
        error: classified,
        replaySafe: init.replaySafe,
      });
    } catch (final) {
      if (final instanceof DoggedError) final.attempts = this.#attempt;
      this.#gaveUp(final);
      throw final;
    }
    if (!init.body.replayable && init.body.consumed()) {
      const unreplayable = new UnreplayableBodyError({
        cause: classified,
        method: init.method,
        url: init.url,
        attempts: this.#attempt,
      });
      this.#gaveUp(unreplayable);
      throw unreplayable;
    }
    const { delayMs, source } = next.getRetryDelay();
    this.#lastFailure = describeError(classified);
    if (!(await this.#beforeSleep(delayMs, source, classified as DoggedError, undefined))) {
      this.#gaveUp(classified);
      throw classified;
    }
    this.#policy = next;
    await this.#sleep(delayMs);
  }

  /** A retriable status: true to try again; false to return the response as it is. */
  async #retryStatus(response: DoggedResponse): Promise<boolean> {
    const init = this.#init;
    let next: RetryPolicy;
    let delay: { delayMs: number; source: 'retry-after' | 'backoff' };
    try {
      next = this.#policy.increment({
        method: init.method,
        url: init.url,
        response,
        replaySafe: init.replaySafe,
      });
      delay = next.getRetryDelay(response, { method: init.method, url: init.url, now: Date.now() });
    } catch (final) {
      if (final instanceof MaxRetryError && !this.#policy.raiseOnStatus) return false;
      await response.drain();
      if (final instanceof DoggedError) final.attempts = this.#attempt;
      this.#gaveUp(final);
      throw final;
    }
    await response.drain();
    if (!init.body.replayable && init.body.consumed()) {
      const status = new HTTPStatusError(
        `${init.method} ${init.url} answered ${describeStatus(response.status)}`,
        {
          status: response.status,
          response,
          method: init.method,
          url: init.url,
          attempts: this.#attempt,
        },
      );
      const unreplayable = new UnreplayableBodyError({
        cause: status,
        method: init.method,
        url: init.url,
        attempts: this.#attempt,
      });
      this.#gaveUp(unreplayable);
      throw unreplayable;
    }
    this.#lastFailure = describeStatus(response.status);
    if (!(await this.#beforeSleep(delay.delayMs, delay.source, undefined, response.status)))
      return false;
    this.#policy = next;
    await this.#sleep(delay.delayMs);
    return true;
  }

  /** Reading the body failed: retry within the same policy, or throw the final error. */
  async #retryBody(error: unknown): Promise<DoggedResponse> {
    await this.#retryAfterError(error, 'body');
    return this.send();
  }

  /** Hooks, logs and events before a sleep; false when a hook vetoed the retry. */
  async #beforeSleep(
    delayMs: number,
    source: RetryEvent['delaySource'],
    error: DoggedError | undefined,
    status: number | undefined,
  ): Promise<boolean> {
    const init = this.#init;
    const event: RetryEvent = Object.freeze({
      method: init.method,
      url: init.url,
      attempt: this.#attempt,
      maxAttempts: this.#maxAttempts,
      delayMs,
      delaySource: source,
      error,
      status,
    });
    for (const hook of init.hooks.beforeRetry) if ((await hook(event)) === false) return false;
    init.logger?.warn(formatRetry(event));
    if (retryChannel.hasSubscribers) retryChannel.publish(event);
    return true;
  }

  async #sleep(delayMs: number): Promise<void> {
    const init = this.#init;
    if (this.#deadline !== undefined && init.clock.now() + delayMs >= this.#deadline) {
      const error = this.#deadlineError(
        `the next retry, ${formatDuration(delayMs)} away, would cross it`,
      );
      this.#gaveUp(error);
      throw error;
    }
    await init.clock.sleep(delayMs, this.#signal);
  }

  #gaveUp(error: unknown): void {
    const init = this.#init;
    if (!init.logger && !giveUpChannel.hasSubscribers) return;
    const event: GiveUpEvent = Object.freeze({
      method: init.method,
      url: init.url,
      attempts: this.#attempt,
      error,
    });
    init.logger?.warn(formatGiveUp(event));
    if (giveUpChannel.hasSubscribers) giveUpChannel.publish(event);
  }
}
