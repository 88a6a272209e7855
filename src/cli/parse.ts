/**
 * Parsers for option values, shared by the subcommands. Each throws commander's
 * `InvalidArgumentError`, so a bad value is a usage error (exit 2) naming the option.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { redactor, shownHeader } from './redaction.js';

const UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
};

/**
 * A duration in milliseconds: `500ms`, `2s`, `1.5s`, `1m`, `2h`, or a bare number of ms.
 * @example parseDuration('1m') // 60000
 */
export function parseDuration(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h)?\s*$/i.exec(text);
  if (!match)
    throw new InvalidArgumentError(
      `${JSON.stringify(text)} is not a duration; write 500ms, 2s, 1m or 1h (a bare number is milliseconds)`,
    );
  return Number(match[1]) * (UNITS[(match[2] ?? 'ms').toLowerCase()] ?? 1);
}

/** A duration greater than zero. */
export function parsePositiveDuration(text: string): number {
  const ms = parseDuration(text);
  if (ms <= 0) throw new InvalidArgumentError(`${JSON.stringify(text)} must be more than 0`);
  return ms;
}

/** What `--timeout` parses to: connect and read, and the attempt deadline when given. */
export interface TimeoutFlag {
  connect: number;
  read: number;
  attempt?: number;
}

/**
 * `--timeout`: `5s` (connect and read), `5s,30s` (connect, read) or `5s,30s,10m` (connect,
 * read, attempt: one whole attempt, head and body).
 * @example parseTimeouts('5s,30s,10m') // { connect: 5000, read: 30000, attempt: 600000 }
 */
export function parseTimeouts(text: string): TimeoutFlag {
  const parts = text.split(',');
  if (parts.length > 3)
    throw new InvalidArgumentError(
      `${JSON.stringify(text)}: give one duration, connect,read such as 5s,30s, or connect,read,attempt such as 5s,30s,10m`,
    );
  const connect = parsePositiveDuration(parts[0] ?? '');
  const read = parts[1] === undefined ? connect : parsePositiveDuration(parts[1]);
  return {
    connect,
    read,
    ...(parts[2] !== undefined && { attempt: parsePositiveDuration(parts[2]) }),
  };
}

/** Decimal units (powers of 1000) and binary ones (powers of 1024), lower-cased. */
const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: 1024,
  kib: 1024,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
};

/**
 * A size in bytes: a bare number is bytes; `k`/`kB`, `M`/`MB`, `G`/`GB`, `T`/`TB` are decimal
 * (powers of 1000, as disk makers and networks count), `KiB`, `MiB`, `GiB`, `TiB` binary (powers
 * of 1024). Case does not matter; a fraction is rounded down to whole bytes.
 * @example parseSize('10MB') // 10000000
 * @example parseSize('1GiB') // 1073741824
 */
export function parseSize(text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = match ? SIZE_UNITS[(match[2] ?? '').toLowerCase()] : undefined;
  if (!match || unit === undefined)
    throw new InvalidArgumentError(
      `${JSON.stringify(text)} is not a size; write 500k, 10MB, 1GB (powers of 1000) or 512KiB, 10MiB, 1GiB (powers of 1024); a bare number is bytes`,
    );
  const bytes = Math.floor(Number(match[1]) * unit);
  if (bytes < 1) throw new InvalidArgumentError(`${JSON.stringify(text)} must be at least 1 byte`);
  if (!Number.isSafeInteger(bytes))
    throw new InvalidArgumentError(`${JSON.stringify(text)} is too large a size`);
  return bytes;
}

/** An integer within bounds. */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!/^\s*\d+\s*$/.test(text) || value < min || value > max)
      throw new InvalidArgumentError(
        `must be an integer${max === Number.MAX_SAFE_INTEGER ? ` of at least ${min}` : ` from ${min} to ${max}`}, got ${JSON.stringify(text)}`,
      );
    return value;
  };
}

/** Collects a repeatable option into a list. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `Name: value` -> [name, value]. */
export function parseHeader(text: string): [string, string] {
  const colon = text.indexOf(':');
  const name = colon > 0 ? text.slice(0, colon).trim() : '';
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name))
    throw new InvalidArgumentError(
      `${JSON.stringify(shownHeader(text))} is not a header; write 'Name: value'`,
    );
  return [name.toLowerCase(), text.slice(colon + 1).trim()];
}

/** Headers from repeated `-H` options. */
export function headersFrom(list: readonly string[] | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const item of list ?? []) {
    const [name, value] = parseHeader(item);
    headers[name] = value;
  }
  return headers;
}

/**
 * Adds `--secret-header NAME` (repeatable): the values of that header are redacted wherever the
 * command prints them, besides Authorization, Proxy-Authorization, Cookie and Set-Cookie.
 */
export function addSecretHeaderFlag(command: Command): Command {
  return command.option(
    '--secret-header <name>',
    'redact the values of this header wherever they would be printed or exported, besides Authorization, Proxy-Authorization, Cookie and Set-Cookie (repeatable)',
    (value: string, previous: string[] | undefined) => {
      try {
        redactor.addSecretHeader(value);
      } catch (error) {
        throw new InvalidArgumentError((error as Error).message);
      }
      return collect(value.toLowerCase(), previous);
    },
  );
}
