import { nonNegativeInteger, showValue } from '../retry/validate.js';
import { NoProxyList } from './no-proxy.js';
import type { EnvironmentProxies } from './proxy-env.js';
import { ProxyPool } from './proxy-pool.js';
import type { MountOptions } from './session-options.js';

/** The proxy settings of a Session or of one of its mounts. */
export interface ProxyConfig {
  /** A pool; `false` for direct; undefined to leave it to the environment. */
  readonly pool: ProxyPool | false | undefined;
  readonly noProxy: NoProxyList;
  readonly rotations: number;
}

export const ROOT_PROXY_CONFIG: ProxyConfig = Object.freeze({
  pool: undefined,
  noProxy: NoProxyList.EMPTY,
  rotations: 10,
});

function toPool(
  value: MountOptions['proxies'],
  where: string,
  clock: { now(): number },
): ProxyPool | false {
  if (value === false) return false;
  if (value instanceof ProxyPool) return value;
  if (Array.isArray(value)) {
    if (value.length === 0) return false;
    try {
      return new ProxyPool(value, { clock });
    } catch (error) {
      throw new TypeError(`${where}: ${(error as Error).message.replace(/^ProxyPool: /, '')}`);
    }
  }
  throw new TypeError(
    `${where} must be a ProxyPool, an array of proxy URLs or false, got ${showValue(value)}`,
  );
}

/** `options` over `base`, every value checked. */
export function layerProxyConfig(
  base: ProxyConfig,
  options: MountOptions,
  where: string,
  clock: { now(): number },
): ProxyConfig {
  return Object.freeze({
    pool:
      options.proxies === undefined
        ? base.pool
        : toPool(options.proxies, `${where}: proxies`, clock),
    noProxy:
      options.noProxy === undefined
        ? base.noProxy
        : NoProxyList.parse(options.noProxy, `${where}: noProxy`),
    rotations:
      options.proxyRotations === undefined
        ? base.rotations
        : nonNegativeInteger(`${where}: proxyRotations`, options.proxyRotations),
  });
}

/** Whether requests under `config` may go through a proxy at all. */
export function mayProxy(config: ProxyConfig, env: EnvironmentProxies | undefined): boolean {
  return config.pool instanceof ProxyPool || (config.pool === undefined && env !== undefined);
}

/**
 * The pool for `url`: the config's (unless `noProxy` matches), else the environment's for the
 * URL's scheme (unless its `NO_PROXY`, loopback or the config's `noProxy` match).
 */
export function poolFor(
  config: ProxyConfig,
  env: EnvironmentProxies | undefined,
  url: URL,
): ProxyPool | undefined {
  if (config.pool === false) return undefined;
  if (config.pool) return config.noProxy.matches(url) ? undefined : config.pool;
  if (!env || env.noProxy.matches(url) || config.noProxy.matches(url)) return undefined;
  return url.protocol === 'https:' ? env.https : env.http;
}
