import type { Dispatcher } from 'undici';
import { describeError, formatDuration } from '../retry/describe.js';
import type { Logger } from '../retry/log.js';
import { ProxyError } from './errors.js';
import { NoProxyAvailableError, ProxyAuthError } from './proxy-errors.js';
import type { ProxyEntry, ProxyPool } from './proxy-pool.js';
import { describeStatus } from './status.js';

/** How a Session routes one logical request: built per request, used per attempt. */
export interface ProxyRouting {
  /** The pool for a target, or undefined to go direct (no proxies, or `noProxy` matched). */
  poolFor(url: URL): ProxyPool | undefined;
  /** The dispatcher through `proxy`, or the direct one. */
  dispatcher(proxy: ProxyEntry | undefined): Dispatcher;
  /** Immediate retries through another proxy allowed for the request. */
  readonly maxRotations: number;
  /** The sticky key of the request. */
  readonly key: string | undefined;
  readonly logger: Logger | undefined;
}

/** What went wrong, for messages. */
export interface RequestLabel {
  readonly method: string;
  readonly url: string;
  readonly attempts: number;
}

/**
 * The proxy side of one logical request: picks the proxy of each attempt, reports what
 * happened to the pool, and decides whether a ban or a proxy failure is retried at once
 * through another proxy (a rotation, counted apart from the RetryPolicy's retries).
 */
export class ProxyRotation {
  readonly #routing: ProxyRouting;
  #rotations = 0;
  /** Proxies that failed this request; cleared when the RetryPolicy takes over. */
  readonly #excluded = new Set<ProxyEntry>();
  /** Proxies that refused the credentials: never tried again by this request. */
  readonly #refused = new Set<ProxyEntry>();
  #waitedMs = 0;
  #pool: ProxyPool | undefined;
  #proxy: ProxyEntry | undefined;
  /** The target origin of the current attempt. */
  #origin = '';
  #startedAt = 0;
  #lastError: ProxyError | undefined;

  constructor(routing: ProxyRouting) {
    this.#routing = routing;
  }

  /** The proxy of the current attempt, without credentials. */
  get proxy(): string | undefined {
    return this.#proxy?.url;
  }

  /** Rotations made so far. */
  get rotations(): number {
    return this.#rotations;
  }

  /**
   * The dispatcher of the next attempt to `origin`. When every proxy is benched it waits for
   * the earliest return through `sleep` (which obeys the total timeout and the abort signal),
   * or throws `NoProxyAvailableError` when the pool says `fail` or the wait is too long.
   */
  async next(
    origin: string,
    sleep: (ms: number) => Promise<void>,
    label: () => RequestLabel,
  ): Promise<Dispatcher> {
    const pool = this.#routing.poolFor(new URL(origin));
    this.#pool = pool;
    this.#proxy = undefined;
    this.#origin = origin;
    if (!pool) return this.#routing.dispatcher(undefined);
    for (;;) {
      const pick = pool.pick({
        key: this.#routing.key,
        exclude: [...this.#excluded, ...this.#refused],
        origin,
      });
      if (pick.proxy) {
        this.#proxy = pick.proxy;
        this.#startedAt = performance.now();
        return this.#routing.dispatcher(pick.proxy);
      }
      const waitMs = pick.availableInMs;
      const { method, url, attempts } = label();
      if (waitMs === undefined) {
        if (this.#lastError) throw this.#lastError;
        throw new NoProxyAvailableError(`${method} ${url}: no proxy of the pool can be used`, {
          method,
          url,
          attempts,
        });
      }
      const waitable = pool.whenAllBenched === 'wait';
      if (!waitable || this.#waitedMs + waitMs > pool.maxWaitMs) {
        const why = waitable
          ? `waiting would exceed the pool's maxWaitMs of ${formatDuration(pool.maxWaitMs)}`
          : "the pool's whenAllBenched is 'fail'";
        throw new NoProxyAvailableError(
          `${method} ${url}: every proxy is benched; the first returns in ${formatDuration(waitMs)} and ${why}${this.#lastError ? `; the last proxy failure was ${describeError(this.#lastError)}` : ''}`,
          { method, url, attempts, availableInMs: waitMs, cause: this.#lastError },
        );
      }
      this.#routing.logger?.warn(
        `${method} ${url}: every proxy is benched; waiting ${formatDuration(waitMs)} for the first to return`,
      );
      // At least 1 ms per wait, so mismatched clocks cannot spin forever.
      this.#waitedMs += Math.max(1, waitMs);
      await sleep(waitMs);
    }
  }

  /**
   * A response head arrived. True when its status is a ban: the proxy is benched. Otherwise the
   * proxy is credited with a success and its latency.
   */
  banned(status: number, retryAfterMs: number | undefined): boolean {
    const pool = this.#pool;
    const proxy = this.#proxy;
    if (!pool || !proxy) return false;
    if (!pool.isBanStatus(status)) {
      pool.markSuccess(proxy, performance.now() - this.#startedAt);
      return false;
    }
    pool.markBanned(proxy, { status, retryAfterMs, reason: describeStatus(status) });
    return true;
  }

  /**
   * An attempt failed. True when the proxy itself failed (`error` is a ProxyError): the pool
   * is told, and this request will not use that proxy again (until the policy takes over).
   */
  failed(error: unknown): boolean {
    const pool = this.#pool;
    const proxy = this.#proxy;
    if (!pool || !proxy || !(error instanceof ProxyError)) return false;
    const fatal = error instanceof ProxyAuthError;
    pool.markFailed(proxy, { fatal, reason: describeError(error) });
    (fatal ? this.#refused : this.#excluded).add(proxy);
    this.#lastError = error;
    return true;
  }

  /**
   * The target answered a Retry-After through the current proxy: that (proxy, origin) pair
   * is held for `ms` (see `ProxyPool.hold`). False when the attempt went direct.
   */
  hold(ms: number): boolean {
    if (!this.#pool || !this.#proxy) return false;
    this.#pool.hold(this.#proxy, this.#origin, ms);
    return true;
  }

  /**
   * Whether the request may move on at once through another proxy: rotations are left and,
   * after a failure or a hold, another proxy is available right now for the target (else the
   * RetryPolicy decides, with its backoff or the Retry-After). After a ban, the next attempt
   * waits if every proxy is benched.
   */
  canRotate(after: 'ban' | 'failure' | 'hold'): boolean {
    if (!this.#pool || this.#rotations >= this.#routing.maxRotations) return false;
    if (after === 'ban') return true;
    const exclude = [...this.#excluded, ...this.#refused];
    return this.#pool.available(exclude, after === 'hold' ? this.#origin : undefined).length > 0;
  }

  /** Counts one rotation. */
  rotate(): void {
    this.#rotations++;
  }

  /** The RetryPolicy takes over: proxies that failed may be tried again after its backoff. */
  handOver(): void {
    this.#excluded.clear();
  }
}
