import { showValue } from '../retry/validate.js';

/** Headers as users write them. An `undefined` value removes a header set at a lower level. */
export type HeadersLike =
  | Headers
  | Record<string, string | number | readonly string[] | undefined | null>
  | ReadonlyArray<readonly [string, string]>;

/** Lower-cased names; arrays for repeated headers. The form undici takes. */
export type HeaderRecord = Record<string, string | string[]>;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function setHeader(target: HeaderRecord, name: string, value: unknown, where: string): void {
  if (!TOKEN.test(name)) throw new TypeError(`${where}: invalid header name ${showValue(name)}`);
  const key = name.toLowerCase();
  if (value === undefined || value === null) {
    delete target[key];
    return;
  }
  if (Array.isArray(value)) {
    target[key] = value.map(String);
    return;
  }
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new TypeError(
      `${where}: header ${JSON.stringify(name)} must be a string, got ${showValue(value)}`,
    );
  }
  const text = String(value);
  if (/[\r\n\0]/.test(text))
    throw new TypeError(`${where}: header ${JSON.stringify(name)} contains a line break or NUL`);
  target[key] = text;
}

/** Applies `headers` over `target` (later levels win; `undefined` removes). */
export function mergeHeaders(
  target: HeaderRecord,
  headers: HeadersLike | undefined,
  where: string,
): HeaderRecord {
  if (headers === undefined || headers === null) return target;
  if (headers instanceof Headers) {
    for (const [name, value] of headers) setHeader(target, name, value, where);
  } else if (Array.isArray(headers)) {
    for (const pair of headers as ReadonlyArray<readonly [string, string]>) {
      if (!Array.isArray(pair) || pair.length !== 2)
        throw new TypeError(`${where}: header pairs must be [name, value], got ${showValue(pair)}`);
      setHeader(target, pair[0], pair[1], where);
    }
  } else if (typeof headers === 'object') {
    for (const name of Object.keys(headers))
      setHeader(target, name, (headers as Record<string, unknown>)[name], where);
  } else {
    throw new TypeError(
      `${where}: headers must be an object, a Headers or an array of pairs, got ${showValue(headers)}`,
    );
  }
  return target;
}

/** A WHATWG `Headers` from undici's response header object. */
export function toHeaders(raw: Record<string, string | string[] | undefined>): Headers {
  const headers = new Headers();
  for (const name of Object.keys(raw)) {
    const value = raw[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.append(name, value);
  }
  return headers;
}
