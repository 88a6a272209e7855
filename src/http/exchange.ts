import type { Dispatcher } from 'undici';
import type { CircuitPermit } from '../retry/breaker.js';
import { describeError } from '../retry/describe.js';
import { AttemptDeadline } from './attempt-deadline.js';
import { classifyError } from './classify.js';
import { type AttemptOutcome, dispatchWithin, requestWithin } from './connect-abort.js';
import { type CookieStore, cookieHeader, jarIsEmpty, storeCookies } from './cookies.js';
import { undiciTimeout } from './dispatchers.js';
import {
  ConnectionResetError,
  DoggedError,
  HTTPStatusError,
  MaxRetryError,
  RetryAfterTooLongError,
  TooManyRedirectsError,
  UnreplayableBodyError,
} from './errors.js';
import { ExchangeBase, type ResumeFrom } from './exchange-base.js';
import type { HeaderRecord } from './headers.js';
import {
  attemptEndChannel,
  attemptStartChannel,
  publishAttemptEnd,
  publishAttemptStart,
  publishRequestEnd,
  publishRequestStart,
  requestEndChannel,
  requestStartChannel,
} from './observe.js';
import type { RetryPolicy } from './policy.js';
import { REDIRECT_STATUSES, redirectTarget, type Target } from './redirect.js';
import { type BodyRetry, DoggedResponse } from './response.js';
import { parseRetryAfter } from './retry-after.js';
import { describeStatus } from './status.js';
import type { OriginGuard } from './storm.js';

/** The first attempt {@link Exchange} made without its loop, while in flight. */
interface FirstAttempt {
  readonly guard: OriginGuard;
  readonly deadline: AttemptDeadline;
}

/** How the first attempt made without the loop ended, for the loop to take over from. */
type FirstOutcome =
  | { raw: Dispatcher.ResponseData; response: DoggedResponse; guard: OriginGuard }
  | { error: unknown; deadline: AttemptDeadline };

/**
 * One logical request and its retries: the attempt loop of the Session. It asks the policy
 * what to do, sleeps on the Session's clock, drains what it will not return, and keeps its state
 * so that a body cut short later can be retried within the same policy.
 */
export class Exchange extends ExchangeBase implements AttemptOutcome<DoggedResponse>, BodyRetry {
  #redirects = 0;
  /** The stale keep-alive retry is free, but only once per logical request. */
  #staleRetried = false;
  /** Range and validator for the next attempt, set by a download resume. */
  #resume: ResumeFrom | undefined;
  /** The request was counted in its origin's retry budget (once per logical request). */
  #counted = false;
  /** The backoff slept before the current attempt (decorrelated jitter grows from it). */
  #slept = 0;
  /** When the current attempt was sent (clock time). */
  #sentAt = 0;
  /** Retries this request drew from its origin's budget (a throttle's retry draws none). */
  #charged = 0;
  /** The first attempt's guard and deadline while {@link #sendAtOnce} has it in flight. */
  #first: FirstAttempt | undefined;

  /** Makes attempts until a response is returned or a final error is thrown. */
  send(): Promise<DoggedResponse> {
    if (this.attempt === 0) {
      const sent = this.#sendAtOnce();
      if (sent !== undefined) return sent;
    }
    return this.#attempts(undefined);
  }

  /**
   * The first attempt of a request that nothing stands before (no proxy rotation, total
   * timeout, beforeRequest hook, cookie in the jar, diagnostics subscriber, or wait for
   * admission), made without the attempt loop's async frame: its one promise settles with the
   * response when the answer needs nothing more (see {@link head}), else with the loop, which
   * takes over from the head or the failure. Undefined when the request does not qualify;
   * nothing was done then.
   */
  #sendAtOnce(): Promise<DoggedResponse> | undefined {
    const init = this.init;
    if (
      this.rotation !== undefined ||
      this.deadlineController !== undefined ||
      init.hooks.beforeRequest.length > 0 ||
      (init.cookies !== undefined && !jarIsEmpty(init.cookies)) ||
      requestStartChannel.hasSubscribers ||
      attemptStartChannel.hasSubscribers ||
      init.signal?.aborted
    )
      return undefined;
    const guard = this.guard();
    if (guard.admitNow() !== 'admitted') return undefined;
    this.#counted = true;
    guard.budget?.recordRequest();
    this.attempt = 1;
    const target = this.target;
    this.#sentAt = init.clock.now();
    const deadline = this.#attemptDeadline(target);
    this.#first = { guard, deadline };
    // The headers as they are: a jar with no cookie adds none.
    return dispatchWithin(
      init.dispatcher,
      this.#requestOptions(target, target.headers, deadline),
      deadline,
      this,
    );
  }

  /**
   * The first attempt's head, on {@link #sendAtOnce}'s path: the response itself when the loop
   * would return it as it is (no cookie to store, no response hook, redirect, retry, status
   * error or diagnostics subscriber), else the loop, taking over from this head.
   */
  head(raw: Dispatcher.ResponseData): DoggedResponse | Promise<DoggedResponse> {
    const { guard, deadline } = this.#first as FirstAttempt;
    this.#first = undefined;
    const response = this.#responseFor(raw, deadline);
    const init = this.init;
    const status = raw.statusCode;
    if (
      (init.cookies !== undefined && raw.headers['set-cookie'] !== undefined) ||
      init.hooks.response.length > 0 ||
      (REDIRECT_STATUSES.has(status) && raw.headers.location !== undefined) ||
      this.policy.isRetry(
        this.target.method,
        status,
        raw.headers['retry-after'] !== undefined,
        init.replaySafe,
      ) ||
      (init.throwOnStatus && status >= 400) ||
      attemptEndChannel.hasSubscribers ||
      requestEndChannel.hasSubscribers
    )
      return this.#attempts({ raw, response, guard });
    this.#answered(guard, status, undefined);
    this.#logAnswer(status, undefined);
    return response;
  }

  /** The first attempt failed, on {@link #sendAtOnce}'s path: the loop takes over. */
  failed(error: unknown): Promise<DoggedResponse> {
    const { deadline } = this.#first as FirstAttempt;
    this.#first = undefined;
    return this.#attempts({ error, deadline });
  }

  /**
   * The attempt loop. `first`: the outcome of a first attempt {@link #sendAtOnce} made, to
   * take over from.
   */
  async #attempts(first: FirstOutcome | undefined): Promise<DoggedResponse> {
    const init = this.init;
    if (first === undefined) init.signal?.throwIfAborted();
    const timer = this.armDeadline();
    // [otel] dogged:request:start, once per logical request (a body retry comes back here).
    if (this.attempt === 0 && requestStartChannel.hasSubscribers)
      publishRequestStart(this, this.target);
    try {
      for (;;) {
        let raw: Dispatcher.ResponseData;
        let response: DoggedResponse;
        let guard: OriginGuard;
        let permit: CircuitPermit | undefined;
        let proxy: string | undefined;
        if (first !== undefined) {
          const given = first;
          first = undefined;
          if ('error' in given) {
            await this.#attemptFailed(given.error, given.deadline, undefined);
            continue;
          }
          ({ raw, response, guard } = given);
        } else {
          guard = this.guard();
          if (!this.#counted) {
            this.#counted = true;
            guard.budget?.recordRequest();
          }
          // Cooldown after a Retry-After, client-side rate limit, circuit breaker; at once,
          // without a promise, when none of them stands in the way (the common case).
          const admission = guard.admitNow();
          permit =
            admission === 'admitted'
              ? undefined
              : await guard.admit(
                  {
                    method: this.target.method,
                    url: this.target.url,
                    attempt: this.attempt + 1,
                    request: this, // [otel] dogged:wait
                    signal: this.signal,
                    maxRetryAfterMs: this.policy.maxRetryAfter,
                    sleep: (ms) => this.sleep(ms),
                  },
                  admission === 'limited',
                );
          const dispatcher = this.rotation ? await this.route() : init.dispatcher;
          this.attempt++;
          const target = this.target;
          proxy = this.rotation?.proxy;
          let headers = this.#resume
            ? Object.assign({}, target.headers, resumeHeaders(this.#resume))
            : target.headers;
          // The jar's cookies for this hop's URL, never a Cookie header copied from another hop.
          if (init.cookies) {
            const withJar = withCookies(init.cookies, target.url, headers);
            headers = withJar instanceof Promise ? await withJar : withJar;
          }
          // [otel] dogged:attempt:start (a subscriber may add a traceparent to a copy).
          if (attemptStartChannel.hasSubscribers)
            headers = publishAttemptStart(this, target, this.attempt, headers);
          if (init.hooks.beforeRequest.length) {
            const context = Object.freeze({
              method: target.method,
              url: target.url,
              attempt: this.attempt,
              headers,
              ...(proxy !== undefined && { proxy }),
            });
            for (const hook of init.hooks.beforeRequest) await hook(context);
          }
          this.#sentAt = init.clock.now();
          // The caller's signal, the total deadline and this attempt's own deadline, which runs
          // until the body is read; any of them ends the attempt at once, even mid-connect.
          const deadline = this.#attemptDeadline(target);
          try {
            raw = await requestWithin(
              dispatcher,
              this.#requestOptions(target, headers, deadline),
              deadline,
            );
          } catch (error) {
            await this.#attemptFailed(error, deadline, permit);
            continue;
          }
          response = this.#responseFor(raw, deadline);
        }
        const target = this.target;
        // Every response's Set-Cookie, a redirect's and a retried one's too.
        const setCookie = raw.headers['set-cookie'];
        if (init.cookies && setCookie !== undefined)
          await storeCookies(init.cookies, target.url, setCookie);
        const status = raw.statusCode;
        // [otel] dogged:attempt:end
        if (attemptEndChannel.hasSubscribers)
          publishAttemptEnd(this, this.attempt, status, undefined);
        this.#answered(guard, status, permit);
        if (init.hooks.response.length)
          for (const hook of init.hooks.response) await hook(response);
        if (
          this.rotation?.banned(status, retryAfterOf(raw)) &&
          (await this.rotateAfterBan(response))
        )
          continue;
        if (
          REDIRECT_STATUSES.has(status) &&
          raw.headers.location !== undefined &&
          (await this.#redirect(response))
        )
          continue;
        if (
          this.policy.isRetry(
            target.method,
            status,
            raw.headers['retry-after'] !== undefined,
            init.replaySafe,
          )
        ) {
          if (await this.#retryStatus(response)) continue;
        }
        this.#logAnswer(status, proxy);
        if (init.throwOnStatus && status >= 400) {
          await response.drain();
          const error = this.#statusError(response);
          this.gaveUp(error);
          throw error;
        }
        // A retry that ended well gives its budget token back (if it drew one).
        if (status < 500 && this.#charged > 0) guard.budget?.recordSuccess(this.attempt);
        // [otel] dogged:request:end
        if (requestEndChannel.hasSubscribers)
          publishRequestEnd(this, this.attempt, status, undefined);
        return response;
      }
    } catch (error) {
      // [otel] dogged:request:end
      if (requestEndChannel.hasSubscribers) publishRequestEnd(this, this.attempt, undefined, error);
      throw error;
    } finally {
      timer?.clear();
    }
  }

  /** This attempt's signal and deadline (see AttemptDeadline), under the request's signal. */
  #attemptDeadline(target: Target): AttemptDeadline {
    return new AttemptDeadline(this.signal, this.init.timeouts.attempt, {
      method: target.method,
      url: target.url,
      attempt: this.attempt,
    });
  }

  /** undici's options for an attempt at `target` with `headers`, under `deadline`. */
  #requestOptions(
    target: Target,
    headers: HeaderRecord,
    deadline: AttemptDeadline,
  ): Dispatcher.RequestOptions {
    const read = undiciTimeout(this.init.timeouts.read);
    return {
      origin: target.origin,
      path: target.path,
      method: target.method as Dispatcher.HttpMethod,
      headers,
      body: target.body.next() as NonNullable<Dispatcher.RequestOptions['body']>,
      headersTimeout: read,
      bodyTimeout: read,
      // Set here, not added later by requestWithin: one shape for every attempt's options.
      signal: deadline as unknown as AbortSignal,
    };
  }

  /** The response of an attempt whose head arrived; its deadline now runs until its body closes. */
  #responseFor(raw: Dispatcher.ResponseData, deadline: AttemptDeadline): DoggedResponse {
    deadline.headArrived(raw.body);
    const resumedFrom = this.#resume?.start;
    this.#resume = undefined;
    const init = this.init;
    const responseInit: ConstructorParameters<typeof DoggedResponse>[1] = {
      url: this.target.url,
      method: this.target.method,
      attempts: this.attempt,
      history: this.policy.history,
      retryBody: this,
      deadline,
      maxBodySize: init.maxBodySize,
      decompress: init.decompress,
    };
    // Set only when there is one (no object spread on the common path).
    if (resumedFrom !== undefined) responseInit.resumedFrom = resumedFrom;
    return new DoggedResponse(raw, responseInit);
  }

  /** An attempt failed before its head arrived: throw the final error, or sleep and return. */
  #attemptFailed(
    error: unknown,
    deadline: AttemptDeadline,
    permit: CircuitPermit | undefined,
  ): Promise<void> {
    deadline.end();
    // [otel] dogged:attempt:end
    if (attemptEndChannel.hasSubscribers) publishAttemptEnd(this, this.attempt, undefined, error);
    if (this.signal?.aborted) permit?.release();
    else permit?.failure(error);
    return this.#retryAfterError(error, 'request');
  }

  /** The origin's guard (and the breaker's permit, if any) learn how the attempt was answered. */
  #answered(guard: OriginGuard, status: number, permit: CircuitPermit | undefined): void {
    if (status === 429) guard.throttled(this.#sentAt);
    else guard.answered(this.#sentAt);
    if (status >= 500 || status === 429) permit?.failure(new Error(describeStatus(status)));
    else permit?.success();
  }

  /** The debug line of an answer that is returned. */
  #logAnswer(status: number, proxy: string | undefined): void {
    this.init.logger?.debug(
      `${this.target.method} ${this.target.url} answered ${describeStatus(status)} (attempt ${this.attempt}${proxy === undefined ? '' : ` via proxy ${proxy}`})`,
    );
  }

  /** A 3xx with a Location: true to follow it; false to return the response. */
  async #redirect(response: DoggedResponse): Promise<boolean> {
    const init = this.init;
    if (init.redirect === 'manual' || init.maxRedirects === 0) return false;
    const target = this.target;
    if (init.redirect === 'error') {
      await response.drain();
      throw new TooManyRedirectsError(
        `${target.method} ${target.url} was redirected (${describeStatus(response.status)}) and redirect is 'error'`,
        {
          method: target.method,
          url: target.url,
          attempts: this.attempt,
          history: this.policy.history,
          response,
        },
      );
    }
    const location = response.headers.get('location') ?? '';
    let next: ReturnType<typeof redirectTarget>;
    try {
      next = redirectTarget(target, response.status, location, this.policy.removeHeadersOnRedirect);
    } catch (unusable) {
      // A Location that cannot be fetched (InvalidResponseError): not retried, the server
      // would send the same.
      await response.drain();
      if (unusable instanceof DoggedError) unusable.attempts = this.attempt;
      this.gaveUp(unusable);
      throw unusable;
    }
    if (!next) return false;
    let policy: RetryPolicy | undefined;
    try {
      policy =
        this.#redirects < init.maxRedirects
          ? this.policy.increment({ method: target.method, url: target.url, response })
          : undefined;
    } catch {
      policy = undefined; // the policy's `redirect` counter ran out
    }
    await response.drain();
    if (!policy) {
      if (!this.policy.raiseOnRedirect) return false;
      const error = new TooManyRedirectsError(
        `${target.method} ${target.url} was redirected more than ${Math.min(init.maxRedirects, this.#redirects)} times; the last Location was ${JSON.stringify(location)}`,
        {
          method: target.method,
          url: target.url,
          attempts: this.attempt,
          history: this.policy.history,
          response,
        },
      );
      this.gaveUp(error);
      throw error;
    }
    if (!next.body.replayable && next.body.consumed()) {
      const error = new UnreplayableBodyError({
        cause: new Error(`redirected with ${response.status}`),
        method: target.method,
        url: target.url,
        attempts: this.attempt,
      });
      this.gaveUp(error);
      throw error;
    }
    init.logger?.debug(
      `${target.method} ${target.url} redirected (${describeStatus(response.status)}) to ${next.method} ${next.url}`,
    );
    this.#redirects++;
    this.policy = policy;
    this.target = next;
    return true;
  }

  /** A failed attempt: throw the final error, or sleep and return to try again. */
  async #retryAfterError(error: unknown, phase: 'request' | 'body'): Promise<void> {
    const init = this.init;
    if (init.signal?.aborted) throw init.signal.reason;
    if (this.deadlineController?.signal.aborted) {
      const reason = this.deadlineController.signal.reason;
      this.gaveUp(reason);
      throw reason;
    }
    const classified = classifyError(error, this.failureContext(phase));
    if (classified === undefined) throw error;
    // The proxy itself failed: move on at once through another one, if the pool has one.
    if (phase === 'request' && (await this.rotateAfterFailure(classified))) return;
    if (classified instanceof DoggedError) classified.attempts = this.attempt;
    await this.errorHooks(classified);
    if (this.#isStaleConnection(error, classified)) {
      // The stale keep-alive race: the server closed an idle pooled connection just as we
      // reused it. The request never reached it; try once more at once, on a fresh connection.
      this.#staleRetried = true;
      await this.beforeSleep(0, 'immediate', classified as DoggedError, undefined);
      return;
    }
    let next: RetryPolicy;
    try {
      next = this.policy.increment({
        method: this.target.method,
        url: this.target.url,
        error: classified,
        replaySafe: init.replaySafe,
        sleptMs: this.#slept,
      });
    } catch (final) {
      if (final instanceof DoggedError) final.attempts = this.attempt;
      this.gaveUp(final);
      throw final;
    }
    if (!this.target.body.replayable && this.target.body.consumed()) {
      const unreplayable = new UnreplayableBodyError({
        cause: classified,
        method: this.target.method,
        url: this.target.url,
        attempts: this.attempt,
      });
      this.gaveUp(unreplayable);
      throw unreplayable;
    }
    const { delayMs, source } = next.getRetryDelay();
    this.lastFailure = describeError(classified);
    const guard = this.guard();
    if (!this.spendBudget(guard)) throw this.budgetExhausted(guard, classified);
    this.#charged++;
    if (!(await this.beforeSleep(delayMs, source, classified as DoggedError, undefined))) {
      this.gaveUp(classified);
      throw classified;
    }
    this.policy = next;
    this.#slept = delayMs;
    await this.sleep(delayMs);
  }

  /** A retriable status: true to try again; false to return the response as it is. */
  async #retryStatus(response: DoggedResponse): Promise<boolean> {
    const init = this.init;
    let next: RetryPolicy;
    let delay: { delayMs: number; source: 'retry-after' | 'backoff' };
    try {
      next = this.policy.increment({
        method: this.target.method,
        url: this.target.url,
        response,
        replaySafe: init.replaySafe,
        sleptMs: this.#slept,
      });
      delay = next.getRetryDelay(response, {
        method: this.target.method,
        url: this.target.url,
        now: Date.now(),
      });
    } catch (final) {
      if (
        final instanceof RetryAfterTooLongError &&
        (await this.#cool(response, final.retryAfterMs))
      )
        return true;
      if (final instanceof MaxRetryError && !this.policy.raiseOnStatus) return false;
      if (
        init.returnLastResponse &&
        (final instanceof MaxRetryError || final instanceof RetryAfterTooLongError)
      )
        return false;
      await response.drain();
      if (final instanceof DoggedError) final.attempts = this.attempt;
      this.gaveUp(final);
      throw final;
    }
    if (delay.source === 'retry-after' && (await this.#cool(response, delay.delayMs))) return true;
    await response.drain();
    if (!this.target.body.replayable && this.target.body.consumed()) {
      const unreplayable = new UnreplayableBodyError({
        cause: this.#statusError(response),
        method: this.target.method,
        url: this.target.url,
        attempts: this.attempt,
      });
      this.gaveUp(unreplayable);
      throw unreplayable;
    }
    this.lastFailure = describeStatus(response.status);
    const guard = this.guard();
    // A throttle (429, or 503 with Retry-After) is the origin asking to slow down, not a failure
    // that feeds a storm: the cooldown and the adaptive pace answer it, not the budget.
    const throttle = response.status === 429 || delay.source === 'retry-after';
    if (!throttle) {
      if (!this.spendBudget(guard)) {
        if (!this.policy.raiseOnStatus || init.returnLastResponse) return false;
        throw this.budgetExhausted(guard, this.#statusError(response));
      }
      this.#charged++;
    }
    if (!(await this.beforeSleep(delay.delayMs, delay.source, undefined, response.status)))
      return false;
    this.policy = next;
    this.#slept = delay.delayMs;
    await this.sleep(delay.delayMs);
    return true;
  }

  /**
   * Reading the body failed: retry within the same policy (from `resume.start` with a Range
   * request when the download can be resumed), or throw the final error.
   */
  async retryBody(error: unknown, resume: ResumeFrom | undefined): Promise<DoggedResponse> {
    await this.#retryAfterError(error, 'body');
    this.#resume = resume;
    return this.send();
  }

  /** The error that stands for a response's status (its `response` keeps the drained body). */
  #statusError(response: DoggedResponse): HTTPStatusError {
    const { method, url } = this.target;
    return new HTTPStatusError(`${method} ${url} answered ${describeStatus(response.status)}`, {
      status: response.status,
      response,
      method,
      url,
      attempts: this.attempt,
    });
  }

  /**
   * A 429 or 503 with a Retry-After of `retryAfterMs`. Direct, it holds every new request to
   * the origin until then, unless it is beyond `maxRetryAfter`: that one fails this request
   * only and holds nothing (a hostile `Retry-After: 1000000000000` must not shut the origin).
   * Through a proxy, it holds that (proxy, origin) pair only, for at most `maxRetryAfter`, and
   * the request moves on at once through another proxy when one is free: true then.
   */
  async #cool(response: DoggedResponse, retryAfterMs: number): Promise<boolean> {
    const { status } = response;
    if (status !== 429 && status !== 503) return false;
    const maxMs = this.policy.maxRetryAfter;
    if (this.rotation?.hold(Math.min(retryAfterMs, maxMs)))
      return this.rotateAfterBan(response, 'hold');
    if (retryAfterMs <= maxMs) this.guard().holdFor(retryAfterMs, this.#sentAt);
    return false;
  }

  /** A reset before any response byte on a connection that had carried earlier responses. */
  #isStaleConnection(raw: unknown, classified: unknown): boolean {
    if (this.#staleRetried || !(classified instanceof ConnectionResetError)) return false;
    const target = this.target;
    if (
      !this.policy.isMethodRetryable(target.method, this.init.replaySafe) ||
      !target.body.replayable
    )
      return false;
    const socket = (raw as { socket?: { bytesRead?: unknown } } | null)?.socket;
    return typeof socket?.bytesRead === 'number' && socket.bytesRead > 0;
  }
}

/** The Retry-After of a ban answer in ms, when it has a valid one (it sets the bench). */
function retryAfterOf(raw: Dispatcher.ResponseData): number | undefined {
  const value = raw.headers['retry-after'];
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined ? undefined : parseRetryAfter(text, Date.now());
}

function resumeHeaders(resume: ResumeFrom): Record<string, string> {
  const headers: Record<string, string> = { range: `bytes=${resume.start}-` };
  if (resume.etag) headers['if-match'] = resume.etag;
  else if (resume.lastModified) headers['if-range'] = resume.lastModified;
  return headers;
}

/** `headers` with the Cookie header of `store` for `url` (the request's own Cookie wins). */
function withCookies(
  store: CookieStore,
  url: string,
  headers: HeaderRecord,
): HeaderRecord | Promise<HeaderRecord> {
  const value = headers.cookie;
  const own = Array.isArray(value) ? value.join('; ') : value;
  const cookie = cookieHeader(store, url, own);
  // No promise hop when the jar answers at once (it holds no cookie).
  return cookie instanceof Promise
    ? cookie.then((header) => withCookie(headers, own, header))
    : withCookie(headers, own, cookie);
}

/** `headers` with `header` as their Cookie (the same object when it is their own). */
function withCookie(
  headers: HeaderRecord,
  own: string | undefined,
  header: string | undefined,
): HeaderRecord {
  // Not `{ ...headers, cookie }`: V8 (Node 20) builds a literal that adds a field after a
  // spread on a slow path, about 1 µs a request.
  return header === own ? headers : Object.assign({}, headers, { cookie: header as string });
}
