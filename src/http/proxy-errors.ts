import { brand } from '../retry/brand.js';
import { ProxyError, type ProxyErrorOptions } from './errors.js';

/**
 * The proxy refused the credentials: it answered CONNECT with 407 Proxy Authentication Required
 * (or 401, as tinyproxy does for a wrong password). Never retried through the same proxy: the
 * credentials will not get better. A pool benches that proxy and the request moves on to
 * another; with no other proxy, this error is thrown at once.
 *
 * @example
 * try { await session.get(url) } catch (err) {
 *   if (err instanceof ProxyAuthError) console.error(`check the credentials of ${err.proxy}`);
 * }
 */
export class ProxyAuthError extends ProxyError {
  override name = 'ProxyAuthError';
  override readonly code: string = 'ERR_DOGGED_PROXY_AUTH';
  override readonly retriable: boolean = false;
}
brand(ProxyAuthError, 'ProxyAuthError');

/**
 * Every proxy of the pool is benched (banned or failing) and the request could not wait for
 * one to return: the pool's `whenAllBenched` is `'fail'`, or the earliest return is further
 * away than its `maxWaitMs`. `availableInMs` says when the first proxy comes back, so a
 * scheduler can try again then.
 */
export class NoProxyAvailableError extends ProxyError {
  override name = 'NoProxyAvailableError';
  override readonly code: string = 'ERR_DOGGED_NO_PROXY_AVAILABLE';
  /** Milliseconds until the first benched proxy returns; undefined when none will for this request. */
  readonly availableInMs: number | undefined;
  constructor(message: string, options: ProxyErrorOptions & { availableInMs?: number } = {}) {
    super(message, { phase: 'none', ...options });
    this.availableInMs = options.availableInMs;
  }
}
brand(NoProxyAvailableError, 'NoProxyAvailableError');
