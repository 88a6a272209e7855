import { assertKnownKeys, showValue } from '../retry/validate.js';
import { redactUrl } from './errors.js';
import { NoProxyList } from './no-proxy.js';
import { ProxyPool } from './proxy-pool.js';

/** Where a Session reads `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY` from, and what it skips. */
export interface ProxyEnvironmentOptions {
  /**
   * The variables to read (tests pass their own object instead of changing `process.env`).
   * @default process.env
   * @example { proxyFromEnvironment: { env: { HTTPS_PROXY: 'http://127.0.0.1:3128' } } }
   */
  env?: Readonly<Record<string, string | undefined>>;
  /**
   * Send loopback targets (`localhost`, 127.0.0.0/8, `::1`) through the environment's proxy
   * too. Off, they always go direct, as curl users expect for local services.
   * @default false
   * @example { proxyFromEnvironment: { includeLoopback: true } }
   */
  includeLoopback?: boolean;
}

/** The proxies the environment asks for. */
export interface EnvironmentProxies {
  /** For http targets: `http_proxy`, else `HTTP_PROXY`. */
  readonly http: ProxyPool | undefined;
  /** For https targets: `https_proxy`, else `HTTPS_PROXY`. */
  readonly https: ProxyPool | undefined;
  /** `no_proxy`, else `NO_PROXY`, plus loopback unless `includeLoopback`. */
  readonly noProxy: NoProxyList;
}

function variable(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
): { name: string; value: string } | undefined {
  for (const key of [name.toLowerCase(), name.toUpperCase()]) {
    const value = env[key]?.trim();
    if (value) return { name: key, value };
  }
  return undefined;
}

function pool(
  found: { name: string; value: string } | undefined,
  clock: { now(): number },
): ProxyPool | undefined {
  if (!found) return undefined;
  // curl and requests accept `host:port` without a scheme and mean http.
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(found.value) ? found.value : `http://${found.value}`;
  try {
    // One proxy, no ban detection, never benched: the environment's proxy is not a rotation
    // pool, its failures are retried by the RetryPolicy like any connect failure.
    return new ProxyPool([text], {
      banStatuses: [],
      maxFailures: Number.POSITIVE_INFINITY,
      // One proxy keeps every key trivially: requests with a proxyKey work unchanged.
      sticky: true,
      clock,
    });
  } catch (error) {
    throw new TypeError(
      `${found.name}=${JSON.stringify(redactUrl(found.value))} is not a proxy URL such as http://127.0.0.1:3128 (${(error as Error).message})`,
    );
  }
}

/**
 * Reads the usual proxy variables (lower-case first, as curl and requests do). Undefined when
 * neither `http_proxy` nor `https_proxy` is set.
 */
export function proxiesFromEnvironment(
  option: boolean | ProxyEnvironmentOptions,
  clock: { now(): number },
): EnvironmentProxies | undefined {
  if (option === false) return undefined;
  if (option !== true) {
    if (option === null || typeof option !== 'object' || Array.isArray(option))
      throw new TypeError(
        `Session: proxyFromEnvironment must be true, false or { env, includeLoopback }, got ${showValue(option)}`,
      );
    assertKnownKeys('Session: proxyFromEnvironment', option as Record<string, unknown>, [
      'env',
      'includeLoopback',
    ]);
    if (option.includeLoopback !== undefined && typeof option.includeLoopback !== 'boolean')
      throw new TypeError(
        `Session: proxyFromEnvironment.includeLoopback must be a boolean, got ${showValue(option.includeLoopback)}`,
      );
    if (option.env !== undefined && (option.env === null || typeof option.env !== 'object'))
      throw new TypeError(
        `Session: proxyFromEnvironment.env must be an object of variables, got ${showValue(option.env)}`,
      );
  }
  const settings = option === true ? {} : option;
  const env = settings.env ?? process.env;
  const http = pool(variable(env, 'http_proxy'), clock);
  const https = pool(variable(env, 'https_proxy'), clock);
  if (!http && !https) return undefined;
  const noProxyVar = variable(env, 'no_proxy');
  let noProxy = NoProxyList.parse(noProxyVar?.value, noProxyVar?.name ?? 'NO_PROXY');
  if (settings.includeLoopback !== true) noProxy = noProxy.concat(NoProxyList.LOOPBACK);
  return Object.freeze({ http, https, noProxy });
}
