import { createRequire } from 'node:module';
import type { Cookie, CookieJar, MemoryCookieStore } from 'tough-cookie';

/**
 * tough-cookie, loaded at the first jar (its CommonJS build, synchronously): a process that
 * keeps no cookie (a batch without --cookies) does not pay its memory (some 14 MB with its
 * public-suffix list). Its own jars are what `instanceof` below recognises; another jar (one
 * built from tough-cookie's ES module, say) takes the general path, through its two methods.
 */
let tough: typeof import('tough-cookie') | undefined;
export function toughCookie(): typeof import('tough-cookie') {
  tough ??= createRequire(import.meta.url)('tough-cookie') as typeof import('tough-cookie');
  return tough;
}

import { showValue } from '../retry/validate.js';

/**
 * What a Session keeps cookies in: a tough-cookie `CookieJar`, or any object with its two
 * methods (each may answer at once or with a promise).
 */
export interface CookieStore {
  /** The `Cookie` header for a request to `url` ('' when none). */
  getCookieString(url: string): string | Promise<string>;
  /** Stores one `Set-Cookie` value received from `url` (RFC 6265 decides whether it may). */
  setCookie(cookie: string, url: string): unknown;
}

/** The `cookies` option: `true` (a jar of the Session's own), `false` (none), or your store. */
export type CookiesOption = boolean | CookieStore;

/**
 * The longest `Set-Cookie` value a jar of dogged's keeps, in bytes (name, value and attributes):
 * RFC 6265 §6.1 asks a user agent to hold at least 4,096; browsers hold no more. A longer one is
 * dropped.
 */
export const MAX_COOKIE_BYTES = 4096;

/**
 * The most cookies a jar of dogged's keeps for one domain (browsers keep 150 to 180; RFC 6265
 * asks for at least 50). Past it, the cookie created first is evicted, as a browser does: a
 * server setting a new cookie on every response costs a bounded jar, and its newest session
 * cookie is kept.
 */
export const MAX_COOKIES_PER_DOMAIN = 180;

/** The most cookies a Session's own jar keeps in all (RFC 6265 asks for at least 3,000). */
export const MAX_COOKIES = 3000;

/** The jars a Session made itself (`cookies: true`): bounded; a jar of the caller's is not. */
const ownJars = new WeakSet<CookieJar>();

/** A tough-cookie jar over the in-memory store, bounded as {@link storeCookies} says. */
export function boundedCookieJar(): CookieJar {
  const jar = new (toughCookie().CookieJar)();
  ownJars.add(jar);
  return jar;
}

/** The store for a `cookies` option; undefined for `false`. */
export function cookieStoreFor(
  where: string,
  value: CookiesOption | undefined,
): CookieStore | undefined {
  if (value === undefined || value === true) return boundedCookieJar();
  if (value === false) return undefined;
  if (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as CookieStore).getCookieString === 'function' &&
    typeof (value as CookieStore).setCookie === 'function'
  )
    return value;
  throw new TypeError(
    `${where} must be true, false, a tough-cookie CookieJar or an object with getCookieString(url) and setCookie(cookie, url), got ${showValue(value)}`,
  );
}

/** The names of `name=value` pairs of a Cookie header. */
function names(header: string): Set<string> {
  const set = new Set<string>();
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    const name = (eq < 0 ? pair : pair.slice(0, eq)).trim();
    if (name) set.add(name);
  }
  return set;
}

/**
 * The Cookie header of one attempt: the jar's cookies for `url`, merged with a `Cookie` header
 * the request set itself. The request's own wins: a jar cookie with a name it sets is left out.
 * Undefined when there is nothing to send.
 */
export function cookieHeader(
  store: CookieStore,
  url: string,
  own: string | undefined,
): string | undefined | Promise<string | undefined> {
  // A jar that never took a cookie (the common case) answers at once, without a promise.
  if (jarIsEmpty(store)) return own;
  return mergedCookieHeader(store, url, own);
}

/**
 * The two classes {@link jarIsEmpty} tests every request against, read from the module
 * once: its exports are getters, two calls a request otherwise.
 */
let memoryJarClasses: { Jar: typeof CookieJar; Memory: typeof MemoryCookieStore } | undefined;

/**
 * Whether `store` is a tough-cookie jar over its in-memory store that holds no cookie at all
 * (no domain in its index; a jar that held some and lost them takes the ordinary path).
 */
export function jarIsEmpty(store: CookieStore): boolean {
  if (memoryJarClasses === undefined) {
    const { CookieJar, MemoryCookieStore } = toughCookie();
    memoryJarClasses = { Jar: CookieJar, Memory: MemoryCookieStore };
  }
  const { Jar, Memory } = memoryJarClasses;
  if (!(store instanceof Jar) || !(store.store instanceof Memory)) return false;
  for (const _ in store.store.idx) return false;
  return true;
}

async function mergedCookieHeader(
  store: CookieStore,
  url: string,
  own: string | undefined,
): Promise<string | undefined> {
  const fromJar = await store.getCookieString(url);
  if (!fromJar) return own;
  if (!own) return fromJar;
  const taken = names(own);
  const kept = fromJar
    .split(';')
    .map((pair) => pair.trim())
    .filter((pair) => pair && !taken.has(pair.slice(0, Math.max(0, pair.indexOf('='))).trim()));
  return kept.length ? `${own}; ${kept.join('; ')}` : own;
}

/**
 * Stores the `Set-Cookie` values of a response from `url`. A value the jar refuses (another
 * domain's, a public suffix's, malformed) is dropped, as a browser drops it: hostile input,
 * not a failure of the request. A jar the Session made itself is bounded against hostile
 * servers: a value over {@link MAX_COOKIE_BYTES} is dropped, and past
 * {@link MAX_COOKIES_PER_DOMAIN} cookies for a domain, or {@link MAX_COOKIES} in all, the
 * oldest are evicted.
 */
export async function storeCookies(
  store: CookieStore,
  url: string,
  values: string | string[],
): Promise<void> {
  const own = store instanceof toughCookie().CookieJar && ownJars.has(store);
  let stored = false;
  for (const value of Array.isArray(values) ? values : [values]) {
    if (own && Buffer.byteLength(value) > MAX_COOKIE_BYTES) continue;
    try {
      await store.setCookie(value, url);
      stored = true;
    } catch {
      // Refused by the jar's rules.
    }
  }
  if (own && stored) evictOldest(store, MAX_COOKIES_PER_DOMAIN, MAX_COOKIES);
}

/**
 * Evicts the oldest cookies of a jar over the in-memory store: past `perDomain` cookies of one
 * domain, then past `total` in all. Returns how many it evicted.
 */
export function evictOldest(jar: CookieJar, perDomain: number, total: number): number {
  const store = jar.store;
  if (!(store instanceof toughCookie().MemoryCookieStore)) return 0;
  const all: Cookie[] = [];
  const doomed: Cookie[] = [];
  for (const paths of Object.values(store.idx)) {
    const domain: Cookie[] = [];
    for (const keys of Object.values(paths ?? {}))
      for (const cookie of Object.values(keys ?? {})) if (cookie) domain.push(cookie);
    if (domain.length > perDomain) {
      domain.sort(byCreation);
      doomed.push(...domain.splice(0, domain.length - perDomain));
    }
    all.push(...domain);
  }
  if (all.length > total) {
    all.sort(byCreation);
    doomed.push(...all.slice(0, all.length - total));
  }
  for (const cookie of doomed)
    void store.removeCookie(cookie.domain ?? '', cookie.path ?? '/', cookie.key);
  return doomed.length;
}

function byCreation(a: Cookie, b: Cookie): number {
  const at = (c: Cookie): number => (c.creation instanceof Date ? c.creation.getTime() : 0);
  return at(a) - at(b) || a.creationIndex - b.creationIndex;
}

// ---------------------------------------------------------------------------------------------
// Netscape cookie files (curl's -b / -c format).

/**
 * A tough-cookie jar with the cookies of a Netscape cookie file's text: one cookie per line,
 * `domain  include-subdomains  path  secure  expires  name  value` separated by tabs;
 * `#HttpOnly_` before the domain marks an HttpOnly cookie; other `#` lines and blank lines are
 * comments. Expired cookies and malformed lines are skipped.
 */
export async function jarFromNetscape(text: string): Promise<CookieJar> {
  const jar = boundedCookieJar();
  const store = jar.store;
  const now = Date.now();
  for (const rawLine of text.split(/\r?\n/)) {
    let line = rawLine;
    let httpOnly = false;
    if (line.startsWith('#HttpOnly_')) {
      httpOnly = true;
      line = line.slice('#HttpOnly_'.length);
    } else if (line.startsWith('#') || line.trim() === '') continue;
    const fields = line.split('\t');
    if (fields.length < 7) continue;
    const [domainField, subdomains, path, secure, expiresText, name, ...rest] = fields as [
      string,
      string,
      string,
      string,
      string,
      string,
      ...string[],
    ];
    const expiresSeconds = Number(expiresText);
    if (!Number.isFinite(expiresSeconds)) continue;
    if (expiresSeconds > 0 && expiresSeconds * 1000 <= now) continue;
    const domain = domainField.replace(/^\./, '').toLowerCase();
    if (!domain || !name) continue;
    const cookie = new (toughCookie().Cookie)({
      key: name,
      value: rest.join('\t'),
      domain,
      path: path || '/',
      secure: secure.toUpperCase() === 'TRUE',
      httpOnly,
      hostOnly: subdomains.toUpperCase() !== 'TRUE',
      expires: expiresSeconds > 0 ? new Date(expiresSeconds * 1000) : 'Infinity',
    });
    await store.putCookie(cookie);
  }
  return jar;
}

/** The cookies of `jar` as a Netscape cookie file (what curl's `-c` writes); session cookies too. */
export async function netscapeFromJar(jar: CookieJar): Promise<string> {
  const cookies = await jar.store.getAllCookies();
  const lines = ['# Netscape HTTP Cookie File', '# Written by dogged. Edit at your own risk.', ''];
  for (const c of cookies) {
    const expires = c.expires instanceof Date ? Math.floor(c.expires.getTime() / 1000) : 0;
    const domain = `${c.hostOnly ? '' : '.'}${c.domain ?? ''}`;
    lines.push(
      [
        `${c.httpOnly ? '#HttpOnly_' : ''}${domain}`,
        c.hostOnly ? 'FALSE' : 'TRUE',
        c.path ?? '/',
        c.secure ? 'TRUE' : 'FALSE',
        String(expires),
        c.key,
        c.value,
      ].join('\t'),
    );
  }
  return `${lines.join('\n')}\n`;
}
