import { hash, randomUUID } from 'node:crypto';
import { plainUrl } from '../http/plain-url.js';
import { redactUrl } from '../http/redact.js';
import { truncate } from '../retry/describe.js';

/** One request of a batch, as parsed from an input line. */
export interface BatchRequest {
  readonly url: string;
  /** `host:port` of the URL: what per-host limits count. */
  readonly host: string;
  readonly method: string;
  /** Request headers, lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | undefined;
  /** The JSONL line's `key`, if any: your own identifier, kept in the journal and exports. */
  readonly key: string | undefined;
}

/** What one input line is: a request, a line to skip, or an invalid line and why. */
export type ParsedLine =
  | { readonly kind: 'request'; readonly request: BatchRequest }
  | { readonly kind: 'skip' }
  | { readonly kind: 'invalid'; readonly reason: string; readonly key: string | undefined };

/** A short, stable fingerprint of a line: tells whether a resumed input is the same input. */
/** An invalid input line as both backends record it (the local journal adds when). */
export interface InvalidLine {
  readonly kind: 'invalid';
  readonly line: number;
  readonly hash: string;
  readonly key: string | undefined;
  readonly raw: string;
  readonly reason: string;
}

/** The {@link InvalidLine} of input line number `line`. */
export function invalidLine(
  line: number,
  hash: string,
  parsed: Extract<ParsedLine, { kind: 'invalid' }>,
  raw: string,
): InvalidLine {
  return { kind: 'invalid', line, hash, key: parsed.key, raw, reason: parsed.reason };
}

export function hashLine(line: string): string {
  // crypto.hash (Node >= 20.12): the same SHA-1 as createHash, without a Hash object per line.
  return hash('sha1', line, 'hex').slice(0, 16);
}

const METHOD = /^[A-Za-z]+$/;
const JSON_FIELDS = new Set(['url', 'method', 'headers', 'body', 'json', 'key', 'idempotencyKey']);

function checkUrl(text: string): { url: string; host: string } | string {
  const plain = plainUrl(text);
  if (plain !== undefined) return { url: plain.href, host: plain.host };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `not an absolute URL: ${JSON.stringify(truncate(redactUrl(text) ?? text, 200))}`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return `only http and https URLs are supported, got ${url.protocol}`;
  return { url: url.href, host: url.host };
}

/**
 * A {@link BatchRequest}, its fields named one by one: V8 (Node 20) builds an object literal
 * that spreads one object and adds fields after it on a slow path, about 3 µs a line, more than
 * the rest of the parse.
 */
function requestOf(
  target: { url: string; host: string },
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  key: string | undefined,
): BatchRequest {
  return { url: target.url, host: target.host, method, headers, body, key };
}

function parseJsonLine(text: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return {
      kind: 'invalid',
      reason: `not valid JSON: ${(error as Error).message}`,
      key: undefined,
    };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return { kind: 'invalid', reason: 'a JSON line must be an object with a url', key: undefined };
  const o = value as Record<string, unknown>;
  const key = typeof o.key === 'string' || typeof o.key === 'number' ? String(o.key) : undefined;
  const invalid = (reason: string): ParsedLine => ({ kind: 'invalid', reason, key });
  const unknown = Object.keys(o).filter((k) => !JSON_FIELDS.has(k));
  if (unknown.length)
    return invalid(
      `unknown field ${JSON.stringify(unknown[0])}; known: url, method, headers, body, json, key, idempotencyKey`,
    );
  if (typeof o.url !== 'string') return invalid('the JSON line has no "url" string');
  const target = checkUrl(o.url);
  if (typeof target === 'string') return invalid(target);
  const method = o.method === undefined ? 'GET' : o.method;
  if (typeof method !== 'string' || !METHOD.test(method))
    return invalid(`"method" must be a token such as GET or POST, got ${JSON.stringify(method)}`);
  const headers: Record<string, string> = {};
  if (o.headers !== undefined) {
    if (o.headers === null || typeof o.headers !== 'object' || Array.isArray(o.headers))
      return invalid('"headers" must be an object of strings');
    for (const [name, v] of Object.entries(o.headers as Record<string, unknown>)) {
      if (typeof v !== 'string' && typeof v !== 'number')
        return invalid(`header ${JSON.stringify(name)} must be a string`);
      headers[name.toLowerCase()] = String(v);
    }
  }
  let body: string | undefined;
  if (o.body !== undefined && o.json !== undefined)
    return invalid('give "body" or "json", not both');
  if (o.json !== undefined) {
    body = JSON.stringify(o.json);
    headers['content-type'] ??= 'application/json';
  } else if (typeof o.body === 'string') {
    body = o.body;
  } else if (o.body !== undefined && o.body !== null) {
    body = JSON.stringify(o.body);
    headers['content-type'] ??= 'application/json';
  }
  if (o.idempotencyKey !== undefined && o.idempotencyKey !== false) {
    if (o.idempotencyKey !== true && (typeof o.idempotencyKey !== 'string' || !o.idempotencyKey))
      return invalid('"idempotencyKey" must be true or a non-empty string');
    // Chosen once, when the line is recorded: every attempt, in every run, sends the same key.
    headers['idempotency-key'] = o.idempotencyKey === true ? randomUUID() : o.idempotencyKey;
  }
  return {
    kind: 'request',
    request: requestOf(target, method.toUpperCase(), headers, body, key),
  };
}

/**
 * Parses one input line: a bare URL, or a JSON object
 * `{ "url", "method", "headers", "body" | "json", "key", "idempotencyKey" }`. Blank lines and
 * lines starting with `#` are skipped; anything else that is not a usable request is invalid.
 */
export function parseInputLine(line: string): ParsedLine {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return { kind: 'skip' };
  if (text.startsWith('{')) return parseJsonLine(text);
  const target = checkUrl(text);
  if (typeof target === 'string') return { kind: 'invalid', reason: target, key: undefined };
  return {
    kind: 'request',
    request: requestOf(target, 'GET', {}, undefined, undefined),
  };
}
