/** How a `Range` header applies to a representation of a given size (RFC 9110, section 14). */
export type RangeDecision =
  /** No Range header, or one the server must ignore (syntax it does not serve): send it all. */
  | { readonly kind: 'full' }
  /** One satisfiable byte range, both ends inclusive. */
  | { readonly kind: 'partial'; readonly start: number; readonly end: number }
  /** A valid range that lies outside the representation: 416. */
  | { readonly kind: 'unsatisfiable' };

const SINGLE_RANGE = /^bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i;

/**
 * Resolves a `Range` header against `size` bytes. Only a single range is served; a header
 * naming several ranges, or one that does not parse, is ignored as RFC 9110 allows.
 */
export function resolveRange(header: string | undefined, size: number): RangeDecision {
  if (header === undefined) return { kind: 'full' };
  const match = SINGLE_RANGE.exec(header);
  if (!match) return { kind: 'full' };
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return { kind: 'full' };
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  return { kind: 'partial', start, end };
}

/** One entity tag as it appears in `If-Match` or `If-Range`. */
interface EntityTag {
  readonly weak: boolean;
  readonly opaque: string;
}

const ENTITY_TAG = /(W\/)?"([^"]*)"/g;

function parseEntityTags(header: string): EntityTag[] {
  return [...header.matchAll(ENTITY_TAG)].map((m) => ({
    weak: m[1] !== undefined,
    opaque: m[2] ?? '',
  }));
}

function parseEntityTag(value: string): EntityTag | undefined {
  return parseEntityTags(value)[0];
}

/**
 * Evaluates `If-Match` with the strong comparison RFC 9110 requires: a weak tag never matches,
 * and a resource without an ETag only matches `*`.
 */
export function ifMatchPasses(header: string, currentEtag: string | undefined): boolean {
  if (header.trim() === '*') return true;
  const current = currentEtag === undefined ? undefined : parseEntityTag(currentEtag);
  if (!current || current.weak) return false;
  return parseEntityTags(header).some((tag) => !tag.weak && tag.opaque === current.opaque);
}

/**
 * Whether `If-Range` allows the Range to be honoured: only an exact strong match does (a date
 * validator is never considered strong enough here, as the resource has no Last-Modified).
 */
export function ifRangePasses(header: string, currentEtag: string | undefined): boolean {
  const given = parseEntityTag(header.trim());
  const current = currentEtag === undefined ? undefined : parseEntityTag(currentEtag);
  return (
    given !== undefined &&
    current !== undefined &&
    !given.weak &&
    !current.weak &&
    given.opaque === current.opaque
  );
}
