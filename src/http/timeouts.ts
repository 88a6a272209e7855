import { showValue } from '../retry/validate.js';

/**
 * Timeouts in milliseconds. `connect`: to establish the connection (TLS handshake included);
 * `read`: for the response head and between body chunks (a silence); `attempt`: for one whole
 * attempt, head and body (however the bytes trickle in); `total`: for the whole logical request,
 * retries and sleeps included, until its response is returned. `Infinity` means no limit.
 */
export interface Timeouts {
  /**
   * To establish the connection (TCP connect and TLS handshake).
   * @default 10000
   * @example { timeout: { connect: 5000 } }
   */
  connect?: number;
  /**
   * For the response head, and for each silence between body chunks.
   * @default 30000
   * @example { timeout: { read: 60_000 } }
   */
  read?: number;
  /**
   * For one attempt, head and body together: a body that drips a byte now and then never trips
   * the read timeout, this one ends it with a retriable `AttemptTimeoutError`. By default,
   * bodies read whole (`text()`, `json()`, `arrayBuffer()`, `bytes()`) get
   * {@link BUFFERED_ATTEMPT_TIMEOUT_MS} (10 minutes), and a body read as a stream (`body`,
   * `fetch()`) has no such limit: a long download is yours to bound.
   * @default undefined (10 minutes for a body read whole, none for a stream)
   * @example { timeout: { attempt: 120_000 } }
   */
  attempt?: number;
  /**
   * For the whole logical request, retries and sleeps included, until its response is returned.
   * @default undefined (no total deadline)
   * @example { timeout: { total: 60_000 } }
   */
  total?: number;
}

/**
 * A timeout as users write it: `{ connect, read, attempt, total }`, a `[connect, read]` pair
 * (requests' tuple), or one number for both connect and read.
 */
export type TimeoutOption = Timeouts | readonly [number, number] | number;

export interface ResolvedTimeouts {
  readonly connect: number;
  readonly read: number;
  /** Undefined: none was set (a body read whole still gets {@link BUFFERED_ATTEMPT_TIMEOUT_MS}). */
  readonly attempt: number | undefined;
  readonly total: number | undefined;
}

/**
 * The attempt deadline of a body read whole (`text()`, `json()`...) when `timeout.attempt` is not
 * set: 10 minutes, a generous bound that still ends a body dripping a byte at a time.
 */
export const BUFFERED_ATTEMPT_TIMEOUT_MS = 600_000;

export const DEFAULT_TIMEOUTS: ResolvedTimeouts = Object.freeze({
  connect: 10_000,
  read: 30_000,
  attempt: undefined,
  total: undefined,
});

const KNOWN = ['connect', 'read', 'attempt', 'total'];

function ms(where: string, value: unknown): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
    throw new TypeError(
      `${where} must be a positive number of milliseconds, got ${showValue(value)}`,
    );
  }
  return value;
}

/** Layers `option` over `base`; every value is checked. */
export function resolveTimeouts(
  option: TimeoutOption | undefined,
  base: ResolvedTimeouts,
  where = 'timeout',
): ResolvedTimeouts {
  if (option === undefined) return base;
  if (typeof option === 'number') {
    const both = ms(where, option);
    return Object.freeze({ ...base, connect: both, read: both });
  }
  if (Array.isArray(option)) {
    if (option.length !== 2)
      throw new TypeError(`${where} as an array must be [connect, read], got ${showValue(option)}`);
    return Object.freeze({
      ...base,
      connect: ms(`${where}[0] (connect)`, option[0]),
      read: ms(`${where}[1] (read)`, option[1]),
    });
  }
  if (option === null || typeof option !== 'object') {
    throw new TypeError(
      `${where} must be a number, [connect, read] or { connect, read, attempt, total }, got ${showValue(option)}`,
    );
  }
  const o = option as Timeouts;
  for (const key of Object.keys(o)) {
    if (!KNOWN.includes(key))
      throw new TypeError(
        `${where}: unknown option ${JSON.stringify(key)}; known: ${KNOWN.join(', ')}`,
      );
  }
  return Object.freeze({
    connect: o.connect === undefined ? base.connect : ms(`${where}.connect`, o.connect),
    read: o.read === undefined ? base.read : ms(`${where}.read`, o.read),
    attempt: o.attempt === undefined ? base.attempt : ms(`${where}.attempt`, o.attempt),
    total: o.total === undefined ? base.total : ms(`${where}.total`, o.total),
  });
}

/** Resolved timeouts as an option again (what a Session built from them takes). */
export function timeoutOptionOf(resolved: ResolvedTimeouts): Timeouts {
  return {
    connect: resolved.connect,
    read: resolved.read,
    ...(resolved.attempt !== undefined && { attempt: resolved.attempt }),
    ...(resolved.total !== undefined && { total: resolved.total }),
  };
}
