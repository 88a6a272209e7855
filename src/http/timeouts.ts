import { showValue } from '../retry/validate.js';

/**
 * Timeouts in milliseconds. `connect`: to establish the connection; `read`: for the response
 * head and between body chunks; `total`: for the whole logical request, retries and sleeps
 * included, until its response is returned.
 */
export interface Timeouts {
  /** @default 10000 */
  connect?: number;
  /** @default 30000 */
  read?: number;
  /** @default undefined (no total deadline) */
  total?: number;
}

/**
 * A timeout as users write it: `{ connect, read, total }`, a `[connect, read]` pair (requests'
 * tuple), or one number for both connect and read.
 */
export type TimeoutOption = Timeouts | readonly [number, number] | number;

export interface ResolvedTimeouts {
  readonly connect: number;
  readonly read: number;
  readonly total: number | undefined;
}

export const DEFAULT_TIMEOUTS: ResolvedTimeouts = Object.freeze({
  connect: 10_000,
  read: 30_000,
  total: undefined,
});

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
    return Object.freeze({ connect: both, read: both, total: base.total });
  }
  if (Array.isArray(option)) {
    if (option.length !== 2)
      throw new TypeError(`${where} as an array must be [connect, read], got ${showValue(option)}`);
    return Object.freeze({
      connect: ms(`${where}[0] (connect)`, option[0]),
      read: ms(`${where}[1] (read)`, option[1]),
      total: base.total,
    });
  }
  if (option === null || typeof option !== 'object') {
    throw new TypeError(
      `${where} must be a number, [connect, read] or { connect, read, total }, got ${showValue(option)}`,
    );
  }
  const o = option as Timeouts;
  for (const key of Object.keys(o)) {
    if (!['connect', 'read', 'total'].includes(key))
      throw new TypeError(
        `${where}: unknown option ${JSON.stringify(key)}; known: connect, read, total`,
      );
  }
  return Object.freeze({
    connect: o.connect === undefined ? base.connect : ms(`${where}.connect`, o.connect),
    read: o.read === undefined ? base.read : ms(`${where}.read`, o.read),
    total: o.total === undefined ? base.total : ms(`${where}.total`, o.total),
  });
}
