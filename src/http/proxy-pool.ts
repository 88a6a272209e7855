import { inspect } from 'node:util';
import { uniform } from '../retry/random.js';
import { showValue } from '../retry/validate.js';
import {
  type ProxyPoolOptions,
  type ProxyStrategy,
  type ResolvedPoolOptions,
  resolvePoolOptions,
  type WhenAllBenched,
} from './proxy-pool-options.js';
import { type ProxyState, type ProxyStatistics, snapshot } from './proxy-statistics.js';
import { redactText, redactUrl } from './redact.js';

/**
 * One proxy of a pool, as the rest of the world sees it: its URL without credentials. (The
 * credentials stay inside the pool; they never appear in logs, errors or statistics.)
 */
export interface ProxyEntry {
  /**
   * `protocol://host:port`, credentials removed; the key of the pool's statistics. Proxies
   * that differ only by credentials (one gateway, several accounts) get `#2`, `#3`... appended.
   */
  readonly url: string;
  /** Whether the proxy URL carries credentials (sent as `Proxy-Authorization: Basic`). */
  readonly hasCredentials: boolean;
}

/** What {@link ProxyPool.pick} found: a proxy, or how long until one returns. */
export type ProxyPick =
  | { readonly proxy: ProxyEntry; readonly availableInMs: 0 }
  | {
      readonly proxy: undefined;
      /** Until the first benched proxy returns; undefined when every proxy is excluded. */
      readonly availableInMs: number | undefined;
    };

/** (proxy, origin) holds a pool remembers at most; the oldest are forgotten first. */
const MAX_HOLDS = 10_000;

/** The credentialed URL of each entry, for the Session's ProxyAgents only. */
const URIS = new WeakMap<ProxyEntry, string>();

/** The full proxy URL, credentials included: for building the dispatcher, never for display. */
export function proxyUri(entry: ProxyEntry): string {
  const uri = URIS.get(entry);
  if (uri === undefined) throw new TypeError('not a proxy of a ProxyPool');
  return uri;
}

function parseProxy(value: unknown, index: number): URL {
  const where = `ProxyPool: urls[${index}]`;
  if (typeof value !== 'string' && !(value instanceof URL))
    throw new TypeError(`${where} must be a proxy URL string, got ${showValue(value)}`);
  const text = String(value).trim();
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TypeError(
      `${where} must be a proxy URL such as http://127.0.0.1:3128, got ${JSON.stringify(redactUrl(text))}`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new TypeError(`${where} must be an http or https proxy URL, got ${url.protocol}`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash)
    throw new TypeError(
      `${where} must be protocol://[user:password@]host:port with no path, got ${JSON.stringify(redactUrl(url.href))}`,
    );
  return url;
}

/**
 * A pool of proxies that notices bans: a target answering 403 or 429 (or the proxy failing)
 * benches that proxy for a while, and requests go through the others. Pass it to a Session's
 * (or a mount's) `proxies` option; it holds no sockets, so several sessions may share it.
 *
 * @example
 * const pool = new ProxyPool(['http://127.0.0.1:3128', 'http://user:pass@127.0.0.1:3129'], {
 *   banMs: 60_000,
 *   sticky: true,
 * });
 * await using session = new Session({ proxies: pool });
 * const res = await session.get('http://127.0.0.1:8080/ban?after=5', { proxyKey: 'account-1' });
 * console.log(pool.statistics);
 */
export class ProxyPool {
  readonly #options: ResolvedPoolOptions;
  readonly #states: ProxyState[];
  readonly #byUrl = new Map<string, ProxyState>();
  readonly #byEntry = new Map<ProxyEntry, ProxyState>();
  readonly #stickyKeys = new Map<string, ProxyState>();
  /** Retry-After holds of (proxy, target origin) pairs: `url\norigin` -> until (pool clock). */
  readonly #holds = new Map<string, number>();
  #cursor = 0;

  constructor(urls: readonly (string | URL)[], options: ProxyPoolOptions = {}) {
    if (!Array.isArray(urls) || urls.length === 0)
      throw new TypeError(
        `ProxyPool: urls must be a non-empty array of proxy URLs, got ${showValue(urls)}`,
      );
    this.#options = resolvePoolOptions(options);
    const seenUris = new Set<string>();
    const perOrigin = new Map<string, number>();
    this.#states = urls.map((value, index) => {
      const url = parseProxy(value, index);
      if (seenUris.has(url.href))
        throw new TypeError(
          `ProxyPool: urls[${index}] (${url.origin}) is listed twice with the same credentials`,
        );
      seenUris.add(url.href);
      const count = (perOrigin.get(url.origin) ?? 0) + 1;
      perOrigin.set(url.origin, count);
      const entry: ProxyEntry = Object.freeze({
        url: count === 1 ? url.origin : `${url.origin}#${count}`,
        hasCredentials: url.username !== '' || url.password !== '',
      });
      URIS.set(entry, url.href);
      const state: ProxyState = {
        entry,
        requests: 0,
        successes: 0,
        bans: 0,
        failures: 0,
        consecutiveFailures: 0,
        benchings: 0,
        strikes: 0,
        benchedUntil: Number.NEGATIVE_INFINITY,
        latencySum: 0,
        latencyCount: 0,
        lastLatencyMs: undefined,
        minLatencyMs: undefined,
        maxLatencyMs: undefined,
        lastProblem: undefined,
      };
      this.#byUrl.set(entry.url, state);
      this.#byEntry.set(entry, state);
      return state;
    });
  }

  /** The proxies, in the order given. */
  get proxies(): readonly ProxyEntry[] {
    return this.#states.map((s) => s.entry);
  }

  /** How many proxies the pool holds. */
  get size(): number {
    return this.#states.length;
  }

  get strategy(): ProxyStrategy {
    return this.#options.strategy;
  }

  /** Whether requests may pass a `proxyKey` to keep their proxy. */
  get sticky(): boolean {
    return this.#options.sticky;
  }

  get whenAllBenched(): WhenAllBenched {
    return this.#options.whenAllBenched;
  }

  get maxWaitMs(): number {
    return this.#options.maxWaitMs;
  }

  /** Whether a target status means the proxy's IP is banned. */
  isBanStatus(status: number): boolean {
    return this.#options.banStatuses.has(status);
  }

  /**
   * The proxies not benched right now, minus `exclude`; with `origin`, minus the proxies held
   * for that target origin (see {@link hold}).
   */
  available(exclude: Iterable<ProxyEntry> = [], origin?: string): ProxyEntry[] {
    const excluded = new Set(exclude);
    const now = this.#options.clock.now();
    return this.#states
      .filter((s) => this.#freeAt(s, origin, now) <= now && !excluded.has(s.entry))
      .map((s) => s.entry);
  }

  /**
   * The target `origin` answered a Retry-After (a 429 or 503) through `proxy`: requests to that
   * origin avoid that proxy for `ms` while another proxy can carry them; the proxy still serves
   * other origins, and the other proxies still serve this one. (What a proxy answers cools that
   * proxy, never the target for the whole pool.) A longer hold of the same pair is kept.
   * @example pool.hold(pool.proxies[0], 'http://127.0.0.1:8080', 30_000)
   */
  hold(proxy: ProxyEntry | string, origin: string, ms: number): void {
    const s = this.#state(proxy);
    if (typeof origin !== 'string' || origin === '')
      throw new TypeError(
        `ProxyPool.hold: origin must be a non-empty string, got ${showValue(origin)}`,
      );
    if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 0)
      throw new TypeError(`ProxyPool.hold: ms must be a non-negative number, got ${showValue(ms)}`);
    const id = `${s.entry.url}\n${origin}`;
    const until = this.#options.clock.now() + Math.min(ms, this.#options.maxBanMs);
    if ((this.#holds.get(id) ?? Number.NEGATIVE_INFINITY) >= until) return;
    this.#holds.delete(id);
    this.#holds.set(id, until);
    if (this.#holds.size > MAX_HOLDS) {
      const oldest = this.#holds.keys().next().value;
      if (oldest !== undefined) this.#holds.delete(oldest);
    }
  }

  /** When `s` may carry a request to `origin` again: after its bench and the pair's hold. */
  #freeAt(s: ProxyState, origin: string | undefined, now: number): number {
    if (origin === undefined || this.#holds.size === 0) return s.benchedUntil;
    const id = `${s.entry.url}\n${origin}`;
    const held = this.#holds.get(id);
    if (held === undefined) return s.benchedUntil;
    if (held <= now) {
      this.#holds.delete(id);
      return s.benchedUntil;
    }
    return Math.max(s.benchedUntil, held);
  }

  /**
   * Chooses the proxy for the next request and counts the request. With a `key` (sticky pools
   * only) the key's proxy is kept while it is not benched. `exclude` leaves out proxies that
   * already failed this request; `origin` (the target's) leaves out the proxies held for it
   * (see {@link hold}). When none is available, says how long until one returns.
   */
  pick(
    options: {
      key?: string | undefined;
      exclude?: Iterable<ProxyEntry>;
      origin?: string | undefined;
    } = {},
  ): ProxyPick {
    const { key } = options;
    if (key !== undefined) {
      if (typeof key !== 'string' || key === '')
        throw new TypeError(`proxyKey must be a non-empty string, got ${showValue(key)}`);
      if (!this.#options.sticky)
        throw new TypeError('proxyKey needs a sticky pool: new ProxyPool(urls, { sticky: true })');
    }
    const excluded = new Set(options.exclude ?? []);
    const now = this.#options.clock.now();
    const { origin } = options;
    const isFree = (s: ProxyState): boolean =>
      this.#freeAt(s, origin, now) <= now && !excluded.has(s.entry);
    const bound = key === undefined ? undefined : this.#stickyKeys.get(key);
    let chosen: ProxyState | undefined;
    if (bound && isFree(bound)) chosen = bound;
    else chosen = this.#choose(isFree);
    if (!chosen) {
      let earliest = Number.POSITIVE_INFINITY;
      for (const s of this.#states) {
        const freeAt = this.#freeAt(s, origin, now);
        if (!excluded.has(s.entry) && freeAt > now) earliest = Math.min(earliest, freeAt);
      }
      return Object.freeze({
        proxy: undefined,
        availableInMs: Number.isFinite(earliest) ? earliest - now : undefined,
      });
    }
    if (key !== undefined && (bound === undefined || bound === chosen || bound.benchedUntil > now))
      this.#bind(key, chosen);
    chosen.requests++;
    return Object.freeze({ proxy: chosen.entry, availableInMs: 0 as const });
  }

  #choose(isFree: (s: ProxyState) => boolean): ProxyState | undefined {
    const n = this.#states.length;
    const { strategy, random } = this.#options;
    if (strategy === 'random') {
      const free = this.#states.filter(isFree);
      return free[Math.min(free.length - 1, Math.floor(random() * free.length))];
    }
    let best: ProxyState | undefined;
    let bestIndex = 0;
    for (let step = 0; step < n; step++) {
      const index = (this.#cursor + step) % n;
      const s = this.#states[index] as ProxyState;
      if (!isFree(s)) continue;
      if (strategy === 'round-robin') {
        best = s;
        bestIndex = index;
        break;
      }
      if (!best || s.requests < best.requests) {
        best = s;
        bestIndex = index;
      }
    }
    if (best) this.#cursor = (bestIndex + 1) % n;
    return best;
  }

  #bind(key: string, state: ProxyState): void {
    this.#stickyKeys.delete(key);
    this.#stickyKeys.set(key, state);
    if (this.#stickyKeys.size > this.#options.maxStickyKeys) {
      const oldest = this.#stickyKeys.keys().next().value;
      if (oldest !== undefined) this.#stickyKeys.delete(oldest);
    }
  }

  #state(proxy: ProxyEntry | string): ProxyState {
    const state = typeof proxy === 'string' ? this.#byUrl.get(proxy) : this.#byEntry.get(proxy);
    if (!state)
      throw new TypeError(
        `ProxyPool: ${showValue(typeof proxy === 'string' ? redactUrl(proxy) : proxy)} is not a proxy of this pool`,
      );
    return state;
  }

  /** The proxy delivered a response that is not a ban: it is forgiven its strikes. */
  markSuccess(proxy: ProxyEntry | string, latencyMs?: number): void {
    const s = this.#state(proxy);
    s.successes++;
    s.consecutiveFailures = 0;
    s.strikes = 0;
    if (latencyMs !== undefined && Number.isFinite(latencyMs) && latencyMs >= 0) {
      const ms = Math.round(latencyMs * 10) / 10;
      s.latencySum += ms;
      s.latencyCount++;
      s.lastLatencyMs = ms;
      s.minLatencyMs = Math.min(s.minLatencyMs ?? ms, ms);
      s.maxLatencyMs = Math.max(s.maxLatencyMs ?? ms, ms);
    }
  }

  /**
   * The target answered a ban status through the proxy: it is benched (unless it already is).
   * Returns how long it sits out, ms.
   */
  markBanned(
    proxy: ProxyEntry | string,
    details: { status?: number; retryAfterMs?: number | undefined; reason?: string } = {},
  ): number {
    const s = this.#state(proxy);
    s.bans++;
    s.lastProblem =
      details.reason ?? (details.status === undefined ? 'banned' : `${details.status}`);
    return this.#bench(s, details.retryAfterMs);
  }

  /**
   * The proxy itself failed. It is benched after `maxFailures` consecutive failures, or at
   * once when `fatal` (wrong credentials). Returns whether it is benched now.
   */
  markFailed(
    proxy: ProxyEntry | string,
    details: { fatal?: boolean; reason?: string } = {},
  ): boolean {
    const s = this.#state(proxy);
    s.failures++;
    s.consecutiveFailures++;
    s.lastProblem = details.reason === undefined ? 'failed' : redactText(details.reason);
    if (s.benchedUntil > this.#options.clock.now()) return true;
    if (details.fatal !== true && s.consecutiveFailures < this.#options.maxFailures) return false;
    s.consecutiveFailures = 0;
    this.#bench(s, undefined);
    return true;
  }

  #bench(s: ProxyState, retryAfterMs: number | undefined): number {
    const { banMs, maxBanMs, random, clock } = this.#options;
    const now = clock.now();
    if (s.benchedUntil > now) return s.benchedUntil - now;
    s.strikes++;
    s.benchings++;
    let ms: number;
    if (retryAfterMs !== undefined && retryAfterMs >= 0) ms = Math.min(retryAfterMs, maxBanMs);
    else if (s.strikes <= 1) ms = banMs;
    else ms = uniform(random, banMs, Math.min(maxBanMs, banMs * 2 ** Math.min(s.strikes - 1, 60)));
    s.benchedUntil = now + ms;
    return ms;
  }

  /** Per-proxy statistics keyed by URL without credentials: a snapshot, readable at any time. */
  get statistics(): Readonly<Record<string, ProxyStatistics>> {
    const now = this.#options.clock.now();
    const out: Record<string, ProxyStatistics> = {};
    for (const s of this.#states) out[s.entry.url] = snapshot(s, now);
    return Object.freeze(out);
  }

  /** The proxy URLs (without credentials), for logs and `JSON.stringify`. */
  toJSON(): { proxies: string[]; strategy: ProxyStrategy } {
    return { proxies: this.#states.map((s) => s.entry.url), strategy: this.strategy };
  }

  [inspect.custom](): string {
    return `ProxyPool ${inspect(this.toJSON())}`;
  }
}
