import type { ChaosContext } from './context.js';

/** One parameter as the `GET /` index documents it. */
export interface ParamSpec {
  readonly name: string;
  readonly description: string;
  readonly default?: string | number | boolean;
}

/** One endpoint: its path pattern, what it accepts, and its handler. */
export interface Route {
  /** Segments starting with `:` capture, e.g. `/status/:code`. */
  readonly path: string;
  /** Allowed methods; any method when omitted. */
  readonly methods?: readonly string[];
  readonly summary: string;
  readonly pathParams?: readonly ParamSpec[];
  /** The query parameters it understands; any other (except `key`) is a 400. */
  readonly query?: readonly ParamSpec[];
  /** Accept any query parameter (for `/echo`). */
  readonly anyQuery?: boolean;
  /** Control endpoints (`/__log`, `/__reset`) are left out of the arrival log. */
  readonly isControl?: boolean;
  /** A request to show in the index and the docs, e.g. `/status/503?retry-after=2`. */
  readonly example: string;
  handle(ctx: ChaosContext): void | Promise<void>;
}

/** Every route also accepts `key`: a label recorded in the arrival log. */
export const KEY_PARAM: ParamSpec = {
  name: 'key',
  description: 'A label recorded in the arrival log (and, where stated, a state key).',
};

/**
 * Matches a decoded list of path segments against a route pattern; returns the captured
 * parameters, or undefined when the route does not apply.
 */
export function matchPath(
  pattern: string,
  segments: readonly string[],
): Record<string, string> | undefined {
  const parts = pattern.split('/').filter(Boolean);
  if (parts.length !== segments.length) return undefined;
  const captured: Record<string, string> = {};
  for (const [index, part] of parts.entries()) {
    const segment = segments[index] ?? '';
    if (part.startsWith(':')) {
      if (segment === '') return undefined;
      captured[part.slice(1)] = segment;
    } else if (part !== segment) {
      return undefined;
    }
  }
  return captured;
}
