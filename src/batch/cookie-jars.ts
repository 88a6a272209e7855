import type { CookieJar } from 'tough-cookie';
import {
  type CookieStore,
  evictOldest,
  MAX_COOKIE_BYTES,
  MAX_COOKIES_PER_DOMAIN,
  toughCookie,
} from '../http/cookies.js';

export { MAX_COOKIE_BYTES };

/**
 * The most cookies one host's jar holds, whatever their domains: as many as a Session's jar
 * keeps for one domain (the oldest evicted past it).
 */
export const MAX_COOKIES_PER_HOST = MAX_COOKIES_PER_DOMAIN;

/**
 * How many hosts' jars a run keeps in memory. A jar that falls out is serialised (and written
 * with the next journal commit); its host's next request reads it back.
 */
export const JARS_IN_MEMORY = 1024;

/** Reads a host's saved jar (its JSON, as {@link HostCookieJars.takeChanged} gave it). */
export type SavedJarReader = (host: string) => string | undefined;

/**
 * One cookie jar per `host:port` for a batch run (`--cookies`): a line's cookies are those its
 * host set for earlier lines (a login, an anti-bot cookie), and never another host's, even one
 * under the same registrable domain. Each jar follows RFC 6265 (tough-cookie); the runner
 * writes the jars that changed with its journal commits, so a resumed run keeps them.
 *
 * Bounded against hostile servers: {@link MAX_COOKIE_BYTES} per cookie,
 * {@link MAX_COOKIES_PER_HOST} per host, {@link JARS_IN_MEMORY} jars held in memory.
 */
export class HostCookieJars implements CookieStore {
  /** Jars in memory, least recently used first. */
  readonly #jars = new Map<string, CookieJar>();
  /** Hosts whose jar in memory changed since the last {@link takeChanged}. */
  readonly #changed = new Set<string>();
  /** Jars evicted from memory with changes not yet taken: their JSON. */
  readonly #evicted = new Map<string, string>();
  readonly #read: SavedJarReader;
  /** Cookies refused for their size or evicted for the count, for the run's summary. */
  dropped = 0;

  /** @param read - the saved jar of a host not in memory (from the journal) */
  constructor(read: SavedJarReader = () => undefined) {
    this.#read = read;
  }

  getCookieString(url: string): string {
    const jar = this.#jar(hostOf(url), false);
    return jar ? jar.getCookieStringSync(url) : '';
  }

  setCookie(cookie: string, url: string): void {
    if (Buffer.byteLength(cookie) > MAX_COOKIE_BYTES) {
      this.dropped++;
      return;
    }
    const host = hostOf(url);
    const jar = this.#jar(host, true) as CookieJar;
    // Throws for a cookie RFC 6265 refuses (another domain's, a public suffix's): the Session
    // drops it, as a browser does.
    const stored = jar.setCookieSync(cookie, url);
    if (!stored) return;
    this.#changed.add(host);
    this.dropped += evictOldest(jar, MAX_COOKIES_PER_HOST, MAX_COOKIES_PER_HOST);
  }

  /** The jars changed since the last call, as `[host, JSON]`: what the runner writes. */
  takeChanged(): [host: string, json: string][] {
    const out: [string, string][] = [...this.#evicted];
    this.#evicted.clear();
    for (const host of this.#changed) {
      const jar = this.#jars.get(host);
      if (jar) out.push([host, serialize(jar)]);
    }
    this.#changed.clear();
    return out;
  }

  /** The jar of `host` (now the most recently used), read back when saved; made when `create`. */
  #jar(host: string, create: boolean): CookieJar | undefined {
    let jar = this.#jars.get(host);
    if (jar) {
      this.#jars.delete(host);
      this.#jars.set(host, jar);
      return jar;
    }
    const saved = this.#evicted.get(host) ?? this.#read(host);
    const { CookieJar: Jar, MemoryCookieStore } = toughCookie();
    if (saved !== undefined) jar = Jar.deserializeSync(saved, new MemoryCookieStore());
    else if (create) jar = new Jar();
    else return undefined;
    // Moved back into memory: its JSON will be taken from the jar itself.
    if (this.#evicted.delete(host)) this.#changed.add(host);
    this.#jars.set(host, jar);
    this.#trim();
    return jar;
  }

  /** Serialises the least recently used jars out of memory, past {@link JARS_IN_MEMORY}. */
  #trim(): void {
    for (const [host, jar] of this.#jars) {
      if (this.#jars.size <= JARS_IN_MEMORY) return;
      this.#jars.delete(host);
      if (this.#changed.delete(host)) this.#evicted.set(host, serialize(jar));
    }
  }
}

function hostOf(url: string): string {
  return new URL(url).host;
}

function serialize(jar: CookieJar): string {
  return JSON.stringify(jar.serializeSync());
}
