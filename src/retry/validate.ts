/**
 * Loud validation at the boundary: every public constructor and factory checks its input and
 * throws a `TypeError` that names the option and shows the offending value.
 */

/** A short, safe rendering of any value for an error message. */
export function showValue(value: unknown): string {
  if (typeof value === 'string')
    return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'number') {
    // Stryker disable next-line ConditionalExpression: `false` is equivalent: String(NaN) below is 'NaN' too (`true` is killed)
    if (Number.isNaN(value)) return 'NaN';
    if (Object.is(value, -0)) return '-0';
    return String(value);
  }
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return value.name ? `function ${value.name}` : 'a function';
  if (value === null) return 'null';
  // Stryker disable next-line ConditionalExpression: `false` is equivalent: String(undefined) at the end is 'undefined' too (`true` is killed)
  if (value === undefined) return 'undefined';
  // Stryker disable next-line ConditionalExpression,StringLiteral: equivalent: String(symbol) at the end is symbol.toString() too (`true` is killed)
  if (typeof value === 'symbol') return value.toString();
  if (Array.isArray(value)) return `an array of length ${value.length}`;
  if (typeof value === 'object') {
    const ctor = (value as { constructor?: { name?: string } }).constructor?.name;
    return ctor && ctor !== 'Object' ? `a ${ctor}` : 'an object';
  }
  return String(value);
}

function fail(where: string, expected: string, value: unknown): never {
  throw new TypeError(`${where} must be ${expected}, got ${showValue(value)}`);
}

export function assertFunction(
  where: string,
  value: unknown,
): asserts value is (...args: never[]) => unknown {
  if (typeof value !== 'function') fail(where, 'a function', value);
}

/** A duration in milliseconds: a number, not NaN, at least 0. `Infinity` only when allowed. */
export function assertDuration(
  where: string,
  value: unknown,
  allowInfinity = false,
): asserts value is number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    fail(
      where,
      `a non-negative number of milliseconds${allowInfinity ? ' (or Infinity)' : ''}`,
      value,
    );
  }
  if (!allowInfinity && !Number.isFinite(value))
    fail(where, 'a finite number of milliseconds', value);
}

export function assertPositiveInteger(where: string, value: unknown): asserts value is number {
  // Stryker disable next-line ConditionalExpression: the typeof test is redundant: Number.isInteger is false for any non-number (the other mutants of this line are killed)
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    fail(where, 'a positive integer', value);
  }
}

export function assertNonNegativeInteger(where: string, value: unknown): asserts value is number {
  // Stryker disable next-line ConditionalExpression: the typeof test is redundant: Number.isInteger is false for any non-number (the other mutants of this line are killed)
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    fail(where, 'a non-negative integer', value);
  }
}

/** `value` once {@link assertNonNegativeInteger} has checked it. */
export function nonNegativeInteger(where: string, value: unknown): number {
  assertNonNegativeInteger(where, value);
  return value;
}

/** A finite number within [min, max]. */
export function assertNumberInRange(
  where: string,
  value: unknown,
  min: number,
  max: number,
): asserts value is number {
  if (
    // Stryker disable next-line ConditionalExpression,LogicalOperator: the typeof test is redundant: Number.isFinite below is false for any non-number (the other mutants of this condition are killed)
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    value < min ||
    value > max ||
    !Number.isFinite(value)
  ) {
    fail(where, `a finite number from ${min} to ${max}`, value);
  }
}

export function assertPositiveNumber(where: string, value: unknown): asserts value is number {
  // Stryker disable next-line ConditionalExpression: the typeof test is redundant: Number.isFinite is false for any non-number (the other mutants of this line are killed)
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    fail(where, 'a finite number greater than 0', value);
  }
}

export function assertPlainObject(where: string, value: unknown): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    fail(where, 'an options object', value);
}

/** Rejects keys that are not options: a typo must not silently fall back to a default. */
export function assertKnownKeys(
  where: string,
  value: Record<string, unknown>,
  known: readonly string[],
  hints: Record<string, string> = {},
): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const hint = hints[key] ? `; ${hints[key]}` : `; known options: ${known.join(', ')}`;
    throw new TypeError(`${where}: unknown option ${JSON.stringify(key)}${hint}`);
  }
}

export function assertAbortSignal(where: string, value: unknown): asserts value is AbortSignal {
  if (
    value === null ||
    typeof value !== 'object' ||
    typeof (value as AbortSignal).aborted !== 'boolean' ||
    typeof (value as AbortSignal).addEventListener !== 'function'
  ) {
    fail(where, 'an AbortSignal', value);
  }
}
