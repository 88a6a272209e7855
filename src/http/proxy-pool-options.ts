import { systemClock } from '../retry/clock.js';
import { assertRandomSource, defaultRandom, type RandomSource } from '../retry/random.js';
import {
  assertDuration,
  assertKnownKeys,
  assertPlainObject,
  assertPositiveInteger,
  showValue,
} from '../retry/validate.js';

/**
 * How a pool chooses among the proxies that are not benched:
 * - `round-robin`: each in turn;
 * - `random`: uniformly at random (from the pool's `random` source);
 * - `least-used`: the one that carried the fewest requests so far (ties in turn).
 */
export type ProxyStrategy = 'round-robin' | 'random' | 'least-used';

/** What a request does when every proxy is benched. */
export type WhenAllBenched = 'wait' | 'fail';

/** Options of {@link ProxyPool}. */
export interface ProxyPoolOptions {
  /**
   * How the next proxy is chosen among those not benched.
   * @default 'round-robin'
   * @example new ProxyPool(urls, { strategy: 'least-used' })
   */
  strategy?: ProxyStrategy;
  /**
   * Statuses from the target that mean "this IP is flagged": the proxy is benched and the
   * request moves on at once through another. `[]` turns ban detection off.
   * @default [403, 429]
   * @example new ProxyPool(urls, { banStatuses: [403, 429, 503] })
   */
  banStatuses?: readonly number[];
  /**
   * How long a proxy sits on the bench after its first ban (or after `maxFailures` failures),
   * in ms. A repeat offender (benched again with no success in between) sits longer: the n-th
   * time a random duration between `banMs` and `banMs · 2^(n−1)` (full jitter), capped at
   * `maxBanMs`. A success through the proxy forgives it. A ban answer carrying a valid
   * Retry-After benches the proxy for exactly that long (capped at `maxBanMs`) instead.
   * @default 60000
   * @example new ProxyPool(urls, { banMs: 5 * 60_000 })
   */
  banMs?: number;
  /**
   * The longest bench, in ms.
   * @default 1800000 (30 min), or `banMs` when that is longer
   * @example new ProxyPool(urls, { banMs: 60_000, maxBanMs: 10 * 60_000 })
   */
  maxBanMs?: number;
  /**
   * Consecutive failures of a proxy (connection refused, CONNECT refused, tunnel failed) that
   * bench it. Whatever the count, a request whose proxy failed moves on to another proxy at
   * once; a 407 (wrong credentials) benches the proxy at the first failure. `Infinity` never
   * benches for failures.
   * @default 3
   * @example new ProxyPool(urls, { maxFailures: 1 }) // the first refused connection benches it
   */
  maxFailures?: number;
  /**
   * Keeps one proxy per key (an account, a crawl session): requests that pass the same
   * `proxyKey` go through the same proxy until it is benched; then the key moves to another
   * proxy and stays there. Requests without a key are spread by `strategy`.
   * @default false
   * @example new ProxyPool(urls, { sticky: true }); session.get(url, { proxyKey: 'account-42' })
   */
  sticky?: boolean;
  /**
   * Sticky keys remembered at most; the least recently used is forgotten first.
   * @default 10000
   * @example new ProxyPool(urls, { sticky: true, maxStickyKeys: 100_000 })
   */
  maxStickyKeys?: number;
  /**
   * When every proxy is benched: `'wait'` for the earliest return (at most `maxWaitMs`, and
   * never past the request's total timeout; an abort ends the wait at once), or `'fail'` at
   * once with `NoProxyAvailableError`.
   * @default 'wait'
   * @example new ProxyPool(urls, { whenAllBenched: 'fail' }) // a batch job reschedules instead
   */
  whenAllBenched?: WhenAllBenched;
  /**
   * The longest a request waits for a benched proxy, in ms (all its waits together); a return
   * further away fails at once with `NoProxyAvailableError`.
   * @default 60000
   * @example new ProxyPool(urls, { maxWaitMs: 5000 })
   */
  maxWaitMs?: number;
  /**
   * The random source of the `random` strategy and of the bench jitter.
   * @default Math.random
   * @example new ProxyPool(urls, { random: seededRandom(7) })
   */
  random?: RandomSource;
  /**
   * The time source benches are measured on (tests pass a `FakeClock`; a Session waiting for a
   * benched proxy sleeps on its own clock, so give both the same one).
   * @default the system clock (performance.now)
   * @example new ProxyPool(urls, { clock })
   */
  clock?: { now(): number };
}

/** {@link ProxyPoolOptions} with every default filled in and every value checked. */
export interface ResolvedPoolOptions {
  readonly strategy: ProxyStrategy;
  readonly banStatuses: ReadonlySet<number>;
  readonly banMs: number;
  readonly maxBanMs: number;
  readonly maxFailures: number;
  readonly sticky: boolean;
  readonly maxStickyKeys: number;
  readonly whenAllBenched: WhenAllBenched;
  readonly maxWaitMs: number;
  readonly random: RandomSource;
  readonly clock: { now(): number };
}

const KEYS = [
  'strategy',
  'banStatuses',
  'banMs',
  'maxBanMs',
  'maxFailures',
  'sticky',
  'maxStickyKeys',
  'whenAllBenched',
  'maxWaitMs',
  'random',
  'clock',
] as const;
const HINTS: Record<string, string> = {
  banDuration: 'use banMs',
  banTime: 'use banMs',
  statuses: 'use banStatuses',
  banCodes: 'use banStatuses',
  rotation: 'use strategy',
  stickySessions: 'use sticky: true',
  maxRotations: 'proxyRotations is a Session, mount() or request option',
  proxyRotations: 'proxyRotations is a Session, mount() or request option',
};
const STRATEGIES: readonly ProxyStrategy[] = ['round-robin', 'random', 'least-used'];

function oneOf<T extends string>(where: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value))
    throw new TypeError(
      `${where} must be ${allowed.map((a) => `'${a}'`).join(', ')}, got ${showValue(value)}`,
    );
  return value as T;
}

/** Validates loudly: a `TypeError` names the option and shows the value. */
export function resolvePoolOptions(options: ProxyPoolOptions): ResolvedPoolOptions {
  assertPlainObject('ProxyPool options', options);
  assertKnownKeys('ProxyPool', options as Record<string, unknown>, KEYS, HINTS);
  const o = options;
  const banStatuses = o.banStatuses ?? [403, 429];
  if (
    !Array.isArray(banStatuses) ||
    !banStatuses.every((s) => typeof s === 'number' && Number.isInteger(s) && s >= 100 && s <= 999)
  )
    throw new TypeError(
      `ProxyPool: banStatuses must be an array of HTTP statuses (100-999), got ${showValue(banStatuses)}`,
    );
  const banMs = o.banMs ?? 60_000;
  assertDuration('ProxyPool: banMs', banMs);
  const maxBanMs = o.maxBanMs ?? Math.max(1_800_000, banMs);
  assertDuration('ProxyPool: maxBanMs', maxBanMs);
  if (maxBanMs < banMs)
    throw new TypeError(
      `ProxyPool: maxBanMs must be at least banMs (${banMs}), got ${showValue(maxBanMs)}`,
    );
  const maxFailures = o.maxFailures ?? 3;
  if (maxFailures !== Number.POSITIVE_INFINITY)
    assertPositiveInteger('ProxyPool: maxFailures (or Infinity)', maxFailures);
  const sticky = o.sticky ?? false;
  if (typeof sticky !== 'boolean')
    throw new TypeError(`ProxyPool: sticky must be a boolean, got ${showValue(sticky)}`);
  const maxStickyKeys = o.maxStickyKeys ?? 10_000;
  assertPositiveInteger('ProxyPool: maxStickyKeys', maxStickyKeys);
  const maxWaitMs = o.maxWaitMs ?? 60_000;
  assertDuration('ProxyPool: maxWaitMs', maxWaitMs);
  const random = o.random ?? defaultRandom;
  assertRandomSource('ProxyPool: random', random);
  const clock = o.clock ?? systemClock;
  if (clock === null || typeof clock !== 'object' || typeof clock.now !== 'function')
    throw new TypeError(`ProxyPool: clock must have a now() method, got ${showValue(clock)}`);
  return Object.freeze({
    strategy: oneOf('ProxyPool: strategy', o.strategy ?? 'round-robin', STRATEGIES),
    banStatuses: new Set(banStatuses),
    banMs,
    maxBanMs,
    maxFailures,
    sticky,
    maxStickyKeys,
    whenAllBenched: oneOf('ProxyPool: whenAllBenched', o.whenAllBenched ?? 'wait', [
      'wait',
      'fail',
    ] as const),
    maxWaitMs,
    random,
    clock,
  });
}
