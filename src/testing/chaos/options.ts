import type { ChaosArrival } from './arrival-log.js';
import { isLoopbackHost } from './loopback.js';

/** Options of {@link startChaosServer}. */
export interface ChaosServerOptions {
  /**
   * TCP port of the main listener; 0 picks a free one (read it back from `server.port`).
   * @default 0
   * @example startChaosServer({ port: 8099 })
   */
  port?: number;
  /**
   * Address to bind. Anything but loopback (127.0.0.0/8, `::1`, `localhost`) is refused unless
   * {@link allowNonLoopback} is set: fault endpoints should not be reachable from the network.
   * @default '127.0.0.1'
   * @example startChaosServer({ host: '::1' })
   */
  host?: string;
  /**
   * Permits a non-loopback {@link host} such as `0.0.0.0`.
   * @default false
   * @example startChaosServer({ host: '0.0.0.0', allowNonLoopback: true })
   */
  allowNonLoopback?: boolean;
  /**
   * TCP port of the secondary listener (same host, same endpoints and state, another origin) used
   * for cross-origin redirects; 0 picks a free one.
   * @default 0
   * @example startChaosServer({ port: 8099, secondaryPort: 8100 })
   */
  secondaryPort?: number;
  /**
   * Default seed of `/fail-rate` and `/bytes` when a request names none.
   * @default 1
   * @example startChaosServer({ seed: 42 })
   */
  seed?: number;
  /**
   * Monotonic time source for `/ban` windows, `/ratelimit` buckets and arrival timestamps, in
   * milliseconds. A `FakeClock` makes rate-limit tests independent of real time. (Delays such as
   * `/delay/:ms` always use real timers.)
   * @default performance.now
   * @example startChaosServer({ clock: new FakeClock() })
   */
  clock?: { now(): number };
  /**
   * How many arrivals the log keeps; older ones are dropped (and counted in `dropped`).
   * @default 10000
   * @example startChaosServer({ logLimit: 100_000 })
   */
  logLimit?: number;
  /**
   * Largest request body read, in bytes; a larger one gets 413.
   * @default 10485760 (10 MiB)
   * @example startChaosServer({ maxBodyBytes: 1024 })
   */
  maxBodyBytes?: number;
  /**
   * Milliseconds an idle keep-alive connection is kept open.
   * @default 5000
   * @example startChaosServer({ keepAliveTimeoutMs: 60_000 })
   */
  keepAliveTimeoutMs?: number;
  /**
   * Called for every logged arrival (the CLI's `--verbose` prints them).
   * @default undefined
   * @example startChaosServer({ onArrival: (a) => console.log(a.method, a.target) })
   */
  onArrival?: (arrival: ChaosArrival) => void;
  /**
   * Serve HTTPS instead of HTTP on both listeners, with this certificate and private key (PEM).
   * Tests generate a throwaway self-signed pair and trust it on the client side (a Session's
   * `tls: { ca: cert }`). `url` and `secondaryUrl` then start with `https://`.
   * @default undefined (plain HTTP)
   * @example startChaosServer({ tls: { key: readFileSync('key.pem'), cert: readFileSync('cert.pem') } })
   */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

/** {@link ChaosServerOptions} with every default filled in and every value checked. */
export interface ResolvedChaosOptions {
  readonly port: number;
  readonly host: string;
  readonly secondaryPort: number;
  readonly seed: number;
  readonly clock: { now(): number };
  readonly logLimit: number;
  readonly maxBodyBytes: number;
  readonly keepAliveTimeoutMs: number;
  readonly onArrival: ((arrival: ChaosArrival) => void) | undefined;
  readonly tls: { readonly key: string | Buffer; readonly cert: string | Buffer } | undefined;
}

function integerOption(name: string, value: unknown, fallback: number, min: number, max: number) {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TypeError(
      `startChaosServer: ${name} must be an integer from ${min} to ${max}, got ${String(value)}`,
    );
  }
  return value;
}

/** Validates options loudly, at the boundary. */
export function resolveChaosOptions(options: ChaosServerOptions): ResolvedChaosOptions {
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') {
    throw new TypeError(`startChaosServer: host must be a non-empty string, got ${String(host)}`);
  }
  if (!isLoopbackHost(host) && options.allowNonLoopback !== true) {
    throw new Error(
      `startChaosServer: refusing to bind ${host}, which is not a loopback address; the chaos server would be reachable from the network. Pass allowNonLoopback: true (CLI: --host) if that is intended.`,
    );
  }
  const clock = options.clock ?? performance;
  if (typeof clock.now !== 'function') {
    throw new TypeError('startChaosServer: clock must have a now() method');
  }
  if (options.onArrival !== undefined && typeof options.onArrival !== 'function') {
    throw new TypeError('startChaosServer: onArrival must be a function');
  }
  const tls = options.tls;
  const isPem = (v: unknown): boolean => typeof v === 'string' || Buffer.isBuffer(v);
  if (
    tls !== undefined &&
    (tls === null || typeof tls !== 'object' || !isPem(tls.key) || !isPem(tls.cert))
  ) {
    throw new TypeError('startChaosServer: tls must be { key, cert } with PEM strings or Buffers');
  }
  return {
    host,
    port: integerOption('port', options.port, 0, 0, 65_535),
    secondaryPort: integerOption('secondaryPort', options.secondaryPort, 0, 0, 65_535),
    seed: integerOption('seed', options.seed, 1, 0, 0xffff_ffff),
    clock,
    logLimit: integerOption('logLimit', options.logLimit, 10_000, 1, 10_000_000),
    maxBodyBytes: integerOption('maxBodyBytes', options.maxBodyBytes, 10 * 1024 * 1024, 0, 2 ** 31),
    keepAliveTimeoutMs: integerOption(
      'keepAliveTimeoutMs',
      options.keepAliveTimeoutMs,
      5000,
      1,
      2 ** 31 - 1,
    ),
    onArrival: options.onArrival,
    tls: tls === undefined ? undefined : { key: tls.key, cert: tls.cert },
  };
}
