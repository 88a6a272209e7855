import { Agent, type Dispatcher, Pool, ProxyAgent } from 'undici';
import { assertKnownKeys, assertPlainObject, showValue } from '../retry/validate.js';
import { markProxyFailure } from './classify.js';
import { abortableConnector, connectorFor } from './connect-abort.js';
import { Http2Agent } from './http2.js';
import { type ProxyEntry, proxyUri } from './proxy-pool.js';

type Pem = string | Buffer;

/**
 * TLS settings for https targets (and https proxies): trust a private CA, present a client
 * certificate, or (for local tests only) skip verification.
 */
export interface TlsOptions {
  /**
   * Certificate authorities to trust instead of Node's bundled ones (PEM).
   * @default Node's root certificates
   * @example { tls: { ca: readFileSync('test-ca.pem') } }
   */
  ca?: Pem | readonly Pem[];
  /**
   * A client certificate (PEM), with `key`.
   * @default undefined
   * @example { tls: { cert: readFileSync('client.pem'), key: readFileSync('client-key.pem') } }
   */
  cert?: Pem | readonly Pem[];
  /**
   * The private key of `cert` (PEM).
   * @default undefined
   * @example { tls: { cert: readFileSync('client.pem'), key: readFileSync('client-key.pem') } }
   */
  key?: Pem | readonly Pem[];
  /**
   * Verify the server's certificate. Turning it off makes TLS worthless against an attacker:
   * prefer `ca`.
   * @default true
   * @example { tls: { rejectUnauthorized: false } } // a throwaway local test server only
   */
  rejectUnauthorized?: boolean;
}

const TLS_KEYS = ['ca', 'cert', 'key', 'rejectUnauthorized'] as const;

function isPemList(value: unknown): boolean {
  const isPem = (v: unknown): boolean => typeof v === 'string' || Buffer.isBuffer(v);
  return isPem(value) || (Array.isArray(value) && value.every(isPem));
}

/** Validates {@link TlsOptions} loudly. */
export function checkTls(value: unknown, where: string): TlsOptions {
  assertPlainObject(where, value);
  const tls = value as TlsOptions;
  assertKnownKeys(where, tls as Record<string, unknown>, TLS_KEYS, {
    servername: 'the server name is taken from the URL',
    insecure: 'use rejectUnauthorized: false',
  });
  for (const name of ['ca', 'cert', 'key'] as const) {
    if (tls[name] !== undefined && !isPemList(tls[name]))
      throw new TypeError(
        `${where}.${name} must be a PEM string, a Buffer or an array of them, got ${showValue(tls[name])}`,
      );
  }
  if (tls.rejectUnauthorized !== undefined && typeof tls.rejectUnauthorized !== 'boolean')
    throw new TypeError(
      `${where}.rejectUnauthorized must be a boolean, got ${showValue(tls.rejectUnauthorized)}`,
    );
  return Object.freeze({ ...tls });
}

type ConnectOnly = (options: Dispatcher.ConnectOptions) => Promise<Dispatcher.ConnectData>;

/** A timeout as undici takes it: `Infinity` (no limit) is its 0. */
export function undiciTimeout(ms: number): number {
  return Number.isFinite(ms) ? ms : 0;
}

/**
 * The Session's keep-alive dispatchers: one undici `Agent` per connect timeout for direct
 * requests, one `ProxyAgent` per proxy and connect timeout. Every one of them gets the
 * session's TLS settings and connect timeout.
 */
export class Dispatchers {
  readonly #tls: TlsOptions;
  readonly #direct = new Map<number, Dispatcher>();
  readonly #proxied = new Map<ProxyEntry, Map<number, ProxyAgent>>();
  /** Offer HTTP/2 by ALPN on https connections (undici's `allowH2`). */
  readonly #http2: boolean;

  constructor(tls: TlsOptions = {}, http2 = false) {
    this.#tls = tls;
    this.#http2 = http2;
  }

  #connect(timeout: number): Record<string, unknown> {
    return { timeout: undiciTimeout(timeout), ...this.#tls };
  }

  /**
   * The direct Agent for this connect timeout. Its connector destroys a socket still connecting
   * (or handshaking) when the attempt that opened it is aborted (see `connect-abort.ts`). With
   * HTTP/2, the requests of idempotent methods to an origin share one connection, and a body
   * shorter than its Content-Length fails as a cut one (`http2.ts`).
   */
  direct(connectTimeout: number): Dispatcher {
    let agent = this.#direct.get(connectTimeout);
    if (!agent) {
      agent = this.#http2
        ? new Http2Agent({
            allowH2: true,
            connect: connectorFor({ ...this.#connect(connectTimeout), allowH2: true }),
          })
        : new Agent({ connect: connectorFor(this.#connect(connectTimeout)) });
      this.#direct.set(connectTimeout, agent);
    }
    return agent;
  }

  /**
   * The ProxyAgent of `proxy` for this connect timeout. Every request is tunnelled with
   * CONNECT (http targets too), so the target sees the proxy's address and keep-alive works
   * through the tunnel. The proxy must answer CONNECT within the connect timeout; whatever
   * goes wrong before the tunnel is up is marked as the proxy's failure.
   */
  proxy(proxy: ProxyEntry, connectTimeout: number): ProxyAgent {
    let byTimeout = this.#proxied.get(proxy);
    if (!byTimeout) {
      byTimeout = new Map();
      this.#proxied.set(proxy, byTimeout);
    }
    let agent = byTimeout.get(connectTimeout);
    if (!agent) {
      const connect = this.#connect(connectTimeout);
      agent = new ProxyAgent({
        uri: proxyUri(proxy),
        proxyTls: connect,
        requestTls: connect,
        clientFactory: (origin: URL, options: Pool.Options): Dispatcher => {
          const pool = new Pool(origin, {
            ...options,
            // The connection to the proxy ends with the attempt that opens it.
            ...(typeof options.connect === 'function' && {
              connect: abortableConnector(options.connect),
            }),
            headersTimeout: undiciTimeout(connectTimeout),
          });
          const tunnel = pool.connect.bind(pool) as ConnectOnly;
          (pool as unknown as { connect: ConnectOnly }).connect = (params) =>
            tunnel(params).catch((error: unknown) => {
              throw markProxyFailure(error);
            });
          return pool;
        },
      });
      byTimeout.set(connectTimeout, agent);
    }
    return agent;
  }

  /** Closes every dispatcher (waiting for requests in flight). */
  async close(): Promise<void> {
    const all: Dispatcher[] = [...this.#direct.values()];
    for (const byTimeout of this.#proxied.values()) all.push(...byTimeout.values());
    this.#direct.clear();
    this.#proxied.clear();
    await Promise.all(all.map((d) => d.close()));
  }
}
