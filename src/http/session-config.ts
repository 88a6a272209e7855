import type { Clock } from '../retry/clock.js';
import { assertPlainObject, nonNegativeInteger, showValue } from '../retry/validate.js';
import { checkMaxBodySize } from './body-limit.js';
import { type HeaderRecord, mergeHeaders } from './headers.js';
import { type HookLists, mergeHooks } from './hooks.js';
import { RetryPolicy } from './policy.js';
import { layerProxyConfig, type ProxyConfig } from './proxy-config.js';
import type { MountOptions, RequestOptions, RetryOption } from './session-options.js';
import { StormControl, type StormOptions } from './storm.js';
import { type ResolvedTimeouts, resolveTimeouts } from './timeouts.js';

const STORM_KEYS = ['budget', 'breaker', 'rateLimit', 'cooldown'] as const;

/** The settings of a Session, or of one of its mounts, resolved and checked. */
export interface Config {
  readonly policy: RetryPolicy;
  readonly timeouts: ResolvedTimeouts;
  /** The body limit set by the user (undefined: the defaults). */
  readonly maxBodySize: number | undefined;
  readonly headers: HeaderRecord;
  readonly hooks: HookLists;
  readonly maxRedirects: number;
  readonly proxy: ProxyConfig;
  /** Budget, breaker, rate limit and cooldown, per origin. */
  readonly storm: StormControl;
  /** The storm options this level was built from (a mount layers its own over them). */
  readonly stormOptions: StormOptions;
}

export function toPolicy(
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

/** `options` over `base`, every value checked. */
export function layer(base: Config, options: MountOptions, where: string, clock: Clock): Config {
  const stormKeys = STORM_KEYS.filter((k) => options[k] !== undefined);
  const stormOptions: StormOptions = stormKeys.length
    ? { ...base.stormOptions, ...Object.fromEntries(stormKeys.map((k) => [k, options[k]])) }
    : base.stormOptions;
  return Object.freeze({
    // A level with storm settings of its own gets its own per-origin guards.
    storm: stormKeys.length ? new StormControl(stormOptions, clock, where) : base.storm,
    stormOptions,
    proxy: layerProxyConfig(base.proxy, options, where, clock),
    policy: toPolicy(options.retry, base.policy, `${where}: retry`),
    timeouts: resolveTimeouts(options.timeout, base.timeouts, `${where}: timeout`),
    maxBodySize:
      options.maxBodySize === undefined
        ? base.maxBodySize
        : checkMaxBodySize(`${where}: maxBodySize`, options.maxBodySize),
    headers: Object.freeze(mergeHeaders({ ...base.headers }, options.headers, `${where}: headers`)),
    hooks: mergeHooks(base.hooks, options.hooks, `${where}: hooks`),
    maxRedirects:
      options.maxRedirects === undefined
        ? base.maxRedirects
        : nonNegativeInteger(`${where}: maxRedirects`, options.maxRedirects),
  });
}

/** Appends `query` to the URL's search parameters. */
export function appendQuery(url: URL, query: RequestOptions['query'], where: string): void {
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
