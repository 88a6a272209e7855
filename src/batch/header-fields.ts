/**
 * The journal's response headers, stored as fields: a header whose value repeats (`server:
 * nginx`, `content-type: text/html`, a long `content-security-policy`, the same `date` within a
 * second) is written once, in `header_values`, and each response names it by its id; the others
 * are written in full. A final response's `header_fields`, in its line's `requests` row, is a
 * JSON array in header order whose elements are either an id or a `[name, value]` pair (the
 * value a string, or an array of strings for a header the server sent more than once). The
 * `response_headers` view turns them back into the JSON object the journal stored before.
 */

/**
 * A response's headers as undici parses them: lower-case names, a repeated header's values as an
 * array. A name whose value is `undefined` is left out, as `JSON.stringify` leaves it out.
 */
export type ResponseHeaderFields = Readonly<Record<string, string | readonly string[] | undefined>>;

/** A row of `header_values`, to be written in the same transaction as the first response that names it. */
export interface HeaderValueRow {
  readonly id: number;
  readonly name: string;
  readonly value: string;
}

/**
 * Values remembered per header name. A value gets an id when it comes again while remembered: a
 * name with many values (a request id, an ETag) keeps being written in full, and costs at most
 * this many string comparisons a response.
 */
const VALUES_PER_NAME = 16;
/** Header names remembered; past this many the memory starts again (ids stay valid: rows are never deleted). */
const MAX_NAMES = 256;
/**
 * Characters of values remembered, all names together; past this many the memory starts again.
 * A server's headers are 16 KiB at most each (undici's limit), and the memory holds at most
 * `MAX_NAMES · VALUES_PER_NAME` of them: without this bound, one that sent a different long value
 * under each of many names could make it hold 64 MiB.
 */
const MAX_REMEMBERED = 1 << 20;

/** Texts of lists of ids kept at most (see `HeaderFieldEncoder.encode`); emptied when full. */
const MAX_TEXTS = 64;

/** True when `kept` is the first `n` of `ids`. */
function sameIds(kept: readonly number[], ids: readonly number[], n: number): boolean {
  if (kept.length !== n) return false;
  for (let k = 0; k < n; k++) if (kept[k] !== ids[k]) return false;
  return true;
}

/** The values remembered for one header name, with their ids (0: seen once, no id yet), in a ring. */
interface NameSlot {
  readonly values: string[];
  readonly ids: number[];
  next: number;
}

/**
 * Encodes responses' headers into `header_fields` text, giving ids to the values that repeat.
 * The rows it gives ids to are in {@link pending} until the caller writes them ({@link take}),
 * in the transaction that writes the responses that name them.
 */
export class HeaderFieldEncoder {
  #nextId: number;
  readonly #names = new Map<string, NameSlot>();
  /** The length of the values in {@link #names}, together. */
  #remembered = 0;
  #pending: HeaderValueRow[] = [];
  /** The texts of lists of ids given before, by a hash of the list (see {@link encode}). */
  readonly #texts = new Map<number, { readonly ids: readonly number[]; readonly text: string }>();
  /** The fields of the response being encoded: their ids (0: written in full), reused. */
  readonly #ids: number[] = [];
  /** The names and values of the fields written in full, by field index (see {@link #build}). */
  readonly #fieldNames: (string | undefined)[] = [];
  readonly #fieldValues: (string | readonly string[] | undefined)[] = [];

  /** `nextId`: the first id free in the journal's `header_values`. */
  constructor(nextId: number) {
    this.#nextId = nextId;
  }

  /** True when some ids given out are not written yet. */
  get pending(): boolean {
    return this.#pending.length > 0;
  }

  /** The rows given ids since the last call, to write now. */
  take(): HeaderValueRow[] {
    const rows = this.#pending;
    this.#pending = [];
    return rows;
  }

  /**
   * Puts back rows {@link take}n before, to write again: the transaction that wrote them rolled
   * back. Their ids stay given (an outcome encoded before that transaction and written after it
   * names them), and are written with the next responses.
   */
  restore(rows: readonly HeaderValueRow[]): void {
    if (rows.length > 0) this.#pending = [...rows, ...this.#pending];
  }

  #forget(): void {
    this.#names.clear();
    // The kept texts go with the memory they came from: their lists are never built again (an id
    // given is never given again), so they would only take room.
    this.#texts.clear();
    this.#remembered = 0;
  }

  /**
   * The `header_fields` text of `headers`. A response whose fields all have ids most often names
   * the same ids as one before it (a server's headers differ in a few values a second): the text
   * of such a list is kept ({@link #texts}, by a hash of the ids) and given again, where building
   * it anew, a number turned into text and a string joined to another per field, cost about as
   * much as the rest of the encoding.
   */
  encode(headers: ResponseHeaderFields): string {
    const ids = this.#ids;
    let n = 0;
    let hash = 0;
    let whole = true;
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      const id = typeof value === 'string' ? this.#idOf(name, value) : 0;
      if (id === 0) {
        whole = false;
        this.#fieldNames[n] = name;
        this.#fieldValues[n] = value;
      }
      ids[n++] = id;
      hash = (Math.imul(hash, 31) + id) | 0;
    }
    if (!whole) return this.#build(n);
    const known = this.#texts.get(hash);
    if (known !== undefined && sameIds(known.ids, ids, n)) return known.text;
    const text = this.#build(n);
    if (this.#texts.size >= MAX_TEXTS) this.#texts.clear();
    this.#texts.set(hash, { ids: ids.slice(0, n), text });
    return text;
  }

  /** The text of the first `n` fields gathered by {@link encode}. */
  #build(n: number): string {
    const ids = this.#ids;
    let out = '[';
    for (let k = 0; k < n; k++) {
      if (k > 0) out += ',';
      const id = ids[k] as number;
      out +=
        id > 0
          ? id
          : `[${JSON.stringify(this.#fieldNames[k])},${JSON.stringify(this.#fieldValues[k])}]`;
    }
    // The names and values written in full are not held past this response.
    this.#fieldNames.fill(undefined, 0, n);
    this.#fieldValues.fill(undefined, 0, n);
    return `${out}]`;
  }

  /** The id of `name: value`, given when it comes a second time; 0 while it has none. */
  #idOf(name: string, value: string): number {
    let slot = this.#names.get(name);
    if (slot === undefined) {
      if (this.#names.size >= MAX_NAMES) this.#forget();
      slot = { values: [], ids: [], next: 0 };
      this.#names.set(name, slot);
    }
    const values = slot.values;
    for (let k = 0; k < values.length; k++) {
      if (values[k] !== value) continue;
      let id = slot.ids[k] as number;
      if (id === 0) {
        id = this.#nextId++;
        slot.ids[k] = id;
        this.#pending.push({ id, name, value });
      }
      return id;
    }
    // Not remembered: remember it in place of the oldest.
    this.#remembered += value.length - (values[slot.next]?.length ?? 0);
    if (this.#remembered > MAX_REMEMBERED) {
      this.#forget();
      this.#remembered = value.length;
      slot = { values: [value], ids: [0], next: 1 };
      this.#names.set(name, slot);
      return 0;
    }
    const at = slot.next;
    values[at] = value;
    slot.ids[at] = 0;
    slot.next = (at + 1) % VALUES_PER_NAME;
    return 0;
  }
}

/** SQL of the headers in `column`, a `header_fields` array, as a JSON object (text). */
function fieldsSql(column: string): string {
  return `(SELECT json_group_object(
      CASE WHEN e.type = 'integer' THEN v.name ELSE e.value ->> 0 END,
      CASE WHEN e.type = 'integer' THEN json_quote(v.value) ELSE json(e.value -> 1) END)
    FROM json_each(${column}) AS e
    LEFT JOIN header_values AS v ON e.type = 'integer' AND v.id = e.value)`;
}

/**
 * Where a journal holds a line's final response headers: `requests.header_fields` (schema
 * version 3 on), `responses.header_fields` (version 2) and `responses.headers` (version 1, a
 * JSON object). A journal opened read-only keeps the columns of its version.
 */
export interface HeaderColumns {
  /** `requests` has `header_fields`. */
  readonly requests: boolean;
  /** `responses` has `header_fields`. */
  readonly responses: boolean;
}

/**
 * SQL of a line's final response headers as a JSON object (text), or NULL when it has none,
 * from its `requests` row aliased `line` and its `responses` row (if any, as by a LEFT JOIN)
 * aliased `response`: the line's fields when it has them, else what an earlier dogged wrote in
 * its `responses` row.
 */
export function responseHeadersSql(
  line: string,
  response: string,
  columns: HeaderColumns = { requests: true, responses: true },
): string {
  const earlier = columns.responses
    ? `CASE WHEN ${response}.header_fields IS NULL THEN ${response}.headers ELSE ${fieldsSql(`${response}.header_fields`)} END`
    : `${response}.headers`;
  return columns.requests
    ? `CASE WHEN ${line}.header_fields IS NOT NULL THEN ${fieldsSql(`${line}.header_fields`)} ELSE ${earlier} END`
    : earlier;
}
