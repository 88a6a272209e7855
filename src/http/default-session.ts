import type { DoggedResponse } from './response.js';
import { type RequestOptions, Session, type SessionOptions } from './session.js';

let shared: Session | undefined;
let sharedOptions: SessionOptions = { proxyFromEnvironment: true, cookies: false };

/**
 * The session behind the module-level `get`, `post`, ... (created on first use). It has the
 * default settings plus `proxyFromEnvironment: true`: `HTTP_PROXY` / `HTTPS_PROXY` /
 * `NO_PROXY` (lower-case first) are obeyed, loopback targets always go direct; and
 * `cookies: false`: as with `requests.get`, unrelated calls share no cookies (a `Session` keeps
 * them).
 */
export function defaultSession(): Session {
  if (!shared || shared.closed) shared = new Session(sharedOptions);
  return shared;
}

/**
 * Replaces the default session's settings (the current one is closed once its requests are
 * done); returns the new session. The options are checked at once.
 * @example configureDefaultSession({ proxyFromEnvironment: false }); // ignore HTTP(S)_PROXY
 * @example configureDefaultSession({ logger: console, retry: { total: 5 } });
 */
export function configureDefaultSession(options: SessionOptions = {}): Session {
  const merged: SessionOptions = { proxyFromEnvironment: true, cookies: false, ...options };
  const next = new Session(merged);
  const previous = shared;
  sharedOptions = merged;
  shared = next;
  void previous?.close();
  return next;
}

type VerbOptions = Omit<RequestOptions, 'method'>;

/**
 * Sends a request on the default session.
 * @example const res = await request('http://127.0.0.1:8080/echo', { method: 'POST', json: { a: 1 } });
 */
export function request(url: string | URL, options?: RequestOptions): Promise<DoggedResponse> {
  return defaultSession().request(url, options);
}
/** GET on the default session. @example const res = await get('http://127.0.0.1:8080/status/200'); */
export function get(url: string | URL, options?: VerbOptions): Promise<DoggedResponse> {
  return defaultSession().get(url, options);
}
/** HEAD on the default session. */
export function head(url: string | URL, options?: VerbOptions): Promise<DoggedResponse> {
  return defaultSession().head(url, options);
}
/** POST on the default session. */
export function post(url: string | URL, options?: VerbOptions): Promise<DoggedResponse> {
  return defaultSession().post(url, options);
}
/** PUT on the default session. */
export function put(url: string | URL, options?: VerbOptions): Promise<DoggedResponse> {
  return defaultSession().put(url, options);
}
/** PATCH on the default session. */
export function patch(url: string | URL, options?: VerbOptions): Promise<DoggedResponse> {
  return defaultSession().patch(url, options);
}
/** DELETE on the default session (exported as `delete` too). */
export function del(url: string | URL, options?: VerbOptions): Promise<DoggedResponse> {
  return defaultSession().delete(url, options);
}
/** OPTIONS on the default session. */
export function options(url: string | URL, opts?: VerbOptions): Promise<DoggedResponse> {
  return defaultSession().options(url, opts);
}
/** Closes the default session's connections (a later call opens a new one). */
export async function closeDefaultSession(): Promise<void> {
  const s = shared;
  shared = undefined;
  await s?.close();
}

/**
 * A drop-in WHATWG `fetch` on the default session: retries, timeouts and logs included.
 * @example const res = await fetch('http://127.0.0.1:8080/flaky/a?fail=2'); console.log(res.status);
 */
export function fetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  return defaultSession().fetch(input, init);
}
