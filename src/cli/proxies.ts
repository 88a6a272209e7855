import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { type Agent, Dispatcher, ProxyAgent } from 'undici';

/**
 * Sends each request through the next proxy in turn (round robin). A stop-gap until the
 * Session's own proxy pool: no health tracking, no per-proxy limits.
 */
class RoundRobinProxies extends Dispatcher {
  readonly #agents: ProxyAgent[];
  #next = 0;

  constructor(urls: readonly string[]) {
    super();
    this.#agents = urls.map((uri) => new ProxyAgent({ uri }));
  }

  override dispatch(options: Agent.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const agent = this.#agents[this.#next++ % this.#agents.length] as ProxyAgent;
    return agent.dispatch(options, handler);
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    const done = Promise.all(this.#agents.map((a) => a.close())).then(() => undefined);
    if (callback) {
      done.then(callback, callback);
      return;
    }
    return done;
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
    const callback = typeof a === 'function' ? a : b;
    const error = typeof a === 'function' ? null : (a ?? null);
    const done = Promise.all(this.#agents.map((agent) => agent.destroy(error))).then(
      () => undefined,
    );
    if (callback) {
      done.then(callback, callback);
      return;
    }
    return done;
  }
}

/** Checks one proxy URL (for `--proxy`). */
export function parseProxyUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError(
      `${JSON.stringify(text)} is not a proxy URL such as http://127.0.0.1:3128`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InvalidArgumentError(`proxy URLs must be http or https, got ${url.protocol}`);
  return url.href;
}

/** Proxy URLs from a file: one per line; blank lines and `#` comments are skipped. */
export function readProxyFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidArgumentError(`cannot read ${path}: ${(error as Error).message}`);
  }
  const urls = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map(parseProxyUrl);
  if (!urls.length) throw new InvalidArgumentError(`${path} lists no proxy`);
  return urls;
}

/** A dispatcher through `urls` (one: that proxy; several: each in turn), or undefined for none. */
export function proxyDispatcher(urls: readonly string[] | undefined): Dispatcher | undefined {
  if (!urls?.length) return undefined;
  if (urls.length === 1) return new ProxyAgent({ uri: urls[0] as string });
  return new RoundRobinProxies(urls);
}
