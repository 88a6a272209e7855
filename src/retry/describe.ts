import type { Outcome } from './attempt-state.js';

/** A duration as people read it: 850 ms, 1.5 s, 2 min 5 s. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return 'forever';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  // Stryker disable next-line EqualityOperator: `ms <= 10_000` is equivalent: at 10 s both 10.00 and 10.0 print as 10
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1).replace(/\.?0+$/, '')} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return seconds ? `${minutes} min ${seconds} s` : `${minutes} min`;
}

/** One line about a thrown value, whatever it is: `ECONNRESET: read ECONNRESET`, `a string "boom"`. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const label =
      typeof code === 'string' && code !== error.name ? `${error.name} ${code}` : error.name;
    return error.message ? `${label}: ${error.message}` : label;
  }
  if (error === undefined) return 'undefined (a non-Error value)';
  if (error === null) return 'null (a non-Error value)';
  if (typeof error === 'string')
    return `a string ${JSON.stringify(truncate(error, 200))} (a non-Error value)`;
  return `${truncate(safeJson(error), 200)} (a non-Error ${typeof error})`;
}

/** One line about a returned value, for "the result was rejected" messages. */
export function describeValue(value: unknown): string {
  return truncate(safeJson(value), 200);
}

export function describeOutcome(outcome: Outcome<unknown> | undefined): string {
  if (!outcome) return 'has not finished';
  return outcome.ok
    ? `returned ${describeValue(outcome.value)}`
    : `threw ${describeError(outcome.error)}`;
}

function safeJson(value: unknown): string {
  if (typeof value === 'function') return value.name ? `[function ${value.name}]` : '[function]';
  if (typeof value === 'bigint') return `${value}n`;
  // Stryker disable next-line ConditionalExpression,StringLiteral: equivalent: JSON.stringify(symbol) is undefined, and String(symbol) below gives the same text
  if (typeof value === 'symbol') return value.toString();
  try {
    const json = JSON.stringify(value);
    if (json !== undefined) return json;
  } catch {
    // Circular or otherwise unserialisable: fall through to String().
  }
  try {
    return String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * A value quoted in an error message, cut to its first `max` characters with `…` and its
 * length when it is longer: a hostile server's 1 MB host name or Location stays one short line.
 * @example clip('a'.repeat(1_048_576)) // 'aaaa…aaaa… (1048576 chars)' (200 a's)
 */
export function clip(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length} chars)` : text;
}

/** Every run of more than `max` non-space characters in `message` (a URL, a host...) {@link clip}ped. */
export function clipLongValues(message: string, max = 200): string {
  // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent: a message of at most max characters has no run longer than max to clip
  if (message.length <= max) return message;
  // Stryker disable next-line ArithmeticOperator: `max - 1` is equivalent: clip() leaves runs of max characters or fewer as they are
  return message.replace(new RegExp(`\\S{${max + 1},}`, 'g'), (run) => clip(run, max));
}

/** `text`, cut to at most `max` characters with `...` at the end when it is longer. */
export function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}
