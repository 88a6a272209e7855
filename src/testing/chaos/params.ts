/**
 * A request the chaos server refuses: it becomes a 4xx JSON response
 * `{ error, message, parameter? }`, never a crash.
 */
export class ChaosRequestError extends Error {
  override readonly name = 'ChaosRequestError';

  constructor(
    readonly status: number,
    readonly error: string,
    message: string,
    readonly parameter?: string,
  ) {
    super(message);
  }

  toJSON(): Record<string, unknown> {
    return {
      error: this.error,
      message: this.message,
      ...(this.parameter === undefined ? {} : { parameter: this.parameter }),
    };
  }
}

/** A 400 naming the parameter at fault. */
export function badParameter(parameter: string, message: string): ChaosRequestError {
  return new ChaosRequestError(400, 'bad_parameter', message, parameter);
}

/** Bounds for a numeric parameter; both inclusive. */
export interface NumberBounds {
  readonly min?: number;
  readonly max?: number;
}

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;

function checkBounds(name: string, value: number, raw: string, bounds: NumberBounds): number {
  if (bounds.min !== undefined && value < bounds.min) {
    throw badParameter(name, `${name} must be at least ${bounds.min}, got ${JSON.stringify(raw)}`);
  }
  if (bounds.max !== undefined && value > bounds.max) {
    throw badParameter(name, `${name} must be at most ${bounds.max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** Parses a whole number (path segment or query value) or throws a 400 naming `name`. */
export function parseInteger(name: string, raw: string, bounds: NumberBounds = {}): number {
  const value = Number(raw.trim());
  if (!INTEGER.test(raw.trim()) || !Number.isSafeInteger(value)) {
    throw badParameter(name, `${name} must be an integer, got ${JSON.stringify(raw)}`);
  }
  return checkBounds(name, value, raw, bounds);
}

/** Parses a finite decimal number or throws a 400 naming `name`. */
export function parseDecimal(name: string, raw: string, bounds: NumberBounds = {}): number {
  const value = Number(raw.trim());
  if (!DECIMAL.test(raw.trim()) || !Number.isFinite(value)) {
    throw badParameter(name, `${name} must be a number, got ${JSON.stringify(raw)}`);
  }
  return checkBounds(name, value, raw, bounds);
}

/** Typed, validated access to a request's query string. */
export class QueryReader {
  constructor(readonly search: URLSearchParams) {}

  /** The raw value, or undefined when absent; a parameter given twice is refused. */
  string(name: string): string | undefined {
    const all = this.search.getAll(name);
    if (all.length > 1)
      throw badParameter(name, `${name} was given ${all.length} times; give it once`);
    return all[0];
  }

  /** Like {@link string} but refuses absence and the empty string. */
  requiredString(name: string): string {
    const value = this.string(name);
    if (value === undefined || value === '') throw badParameter(name, `${name} is required`);
    return value;
  }

  integer(name: string, fallback: number, bounds?: NumberBounds): number {
    return this.optionalInteger(name, bounds) ?? fallback;
  }

  optionalInteger(name: string, bounds: NumberBounds = {}): number | undefined {
    const raw = this.string(name);
    return raw === undefined ? undefined : parseInteger(name, raw, bounds);
  }

  decimal(name: string, fallback: number, bounds: NumberBounds = {}): number {
    const raw = this.string(name);
    return raw === undefined ? fallback : parseDecimal(name, raw, bounds);
  }

  /** `true`/`1`/empty (present without a value) or `false`/`0`. */
  boolean(name: string, fallback: boolean): boolean {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    const lower = raw.trim().toLowerCase();
    if (lower === '' || lower === 'true' || lower === '1') return true;
    if (lower === 'false' || lower === '0') return false;
    throw badParameter(name, `${name} must be true or false, got ${JSON.stringify(raw)}`);
  }

  oneOf<const T extends string>(name: string, values: readonly T[], fallback: T): T {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    const found = values.find((v) => v === raw.trim().toLowerCase());
    if (found === undefined) {
      throw badParameter(
        name,
        `${name} must be one of ${values.join(', ')}, got ${JSON.stringify(raw)}`,
      );
    }
    return found;
  }
}
