/**
 * Redaction: what dogged prints, logs or exports never carries a credential.
 *
 * - URL credentials: the whole `user:password@` part becomes `***@`
 *   (`http://***@127.0.0.1:3128/`), for URLs that parse and for strings that only look like
 *   URLs (a password holding `/`, `#`, `?` or `@` makes a URL unparseable; the credentials end at
 *   the last `@`).
 * - Header values: `Authorization`, `Proxy-Authorization`, `Cookie`, `Set-Cookie` and any header
 *   marked secret (the CLI's `--secret-header NAME`) become `***`.
 * - Known secrets: a {@link Redactor} can be told literal secrets (passwords of the URLs given on
 *   the command line, values of secret `-H` headers); they are scrubbed from any text, whatever
 *   shape the text has.
 */

/** What a redacted value is replaced with. */
export const REDACTED = '***';

/** Headers whose values are always secret (lower case). */
export const DEFAULT_SECRET_HEADERS: readonly string[] = Object.freeze([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
]);

/** Literal secrets shorter than this are not scrubbed from free text (too many false hits). */
const MIN_SECRET_LENGTH = 5;

const SCHEME = /^\s*[A-Za-z][A-Za-z0-9+.-]*:\/\//;
/** A URL-looking token inside free text: a scheme, then anything up to a space or a quote. */
const URL_TOKEN = /\b[A-Za-z][A-Za-z0-9+.-]*:\/\/[^\s"'<>`]*/g;

/** `***@` in place of the credentials of a URL that parsed. */
function redactParsed(url: URL): string {
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  const href = copy.href;
  const slashes = href.indexOf('//');
  return slashes < 0 ? href : `${href.slice(0, slashes + 2)}${REDACTED}@${href.slice(slashes + 2)}`;
}

/**
 * `***@` in place of everything from the scheme's `//` (or the start, without a scheme) to the
 * last `@`: the credentials of a string that does not parse as a URL.
 */
function redactUnparsed(text: string): string {
  const at = text.lastIndexOf('@');
  if (at < 0) return text;
  const scheme = SCHEME.exec(text);
  const start = scheme ? scheme[0].length : 0;
  if (at < start) return text;
  return `${text.slice(0, start)}${REDACTED}${text.slice(at)}`;
}

/**
 * A URL whose parse misreads its credentials: a password starting with digits read as a port
 * (`redis://u:12#ab@host` parses as host `u`, port `12`, fragment `ab@host`), or one holding
 * `@` and `#` (`redis://:Pa55@w0rd#x@host` parses as password `Pa55`, host `w0rd`). The tell: a
 * `:` between the `//` and the last `@`, and no `/`. (A URL such as `http://h:80?to=a@b` is
 * redacted too: over-redacting a message is harmless.)
 */
function hidesCredentials(text: string): boolean {
  const scheme = SCHEME.exec(text);
  const start = scheme ? scheme[0].length : 0;
  const at = text.lastIndexOf('@');
  if (at < start) return false;
  const userinfo = text.slice(start, at);
  // Without `//` (`user:pass@host:3128`, a proxy written without its scheme), a `:` is enough.
  return userinfo.includes(':') && (!scheme || !userinfo.includes('/'));
}

/**
 * The URL with its credentials (`user:password@`) replaced by `***@`, for messages, logs,
 * history and exports. A URL without credentials is returned as it is; a string that does not
 * parse is cut at its last `@` (`redis://:Pa55#w0rd@host:6379` -> `redis://***@host:6379`).
 *
 * @example redactUrl('http://user:secret@127.0.0.1:8080/a') // 'http://***@127.0.0.1:8080/a'
 */
export function redactUrl(url: string | URL | undefined): string | undefined {
  if (url === undefined) return undefined;
  if (url instanceof URL) return url.username || url.password ? redactParsed(url) : url.href;
  const text = String(url);
  // Cheap check first: most URLs carry no credentials.
  if (!text.includes('@')) return text;
  if (hidesCredentials(text)) return redactUnparsed(text);
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    return redactUnparsed(text);
  }
  // Already redacted (`***@`): as it is, so redacting twice changes nothing.
  if (parsed.username === REDACTED && !parsed.password) return text;
  return parsed.username || parsed.password ? redactParsed(parsed) : text;
}

/** The password of a URL (or of a string that looks like one), for {@link Redactor.addSecret}. */
function passwordOf(text: string): string | undefined {
  if (!hidesCredentials(text)) {
    try {
      const url = new URL(text);
      return url.password ? decodeURIComponentSafe(url.password) : undefined;
    } catch {
      // Not a URL: the credentials end at the last `@`.
    }
  }
  const at = text.lastIndexOf('@');
  if (at < 0) return undefined;
  const scheme = SCHEME.exec(text);
  const userinfo = text.slice(scheme ? scheme[0].length : 0, at);
  const colon = userinfo.indexOf(':');
  return colon < 0 ? undefined : userinfo.slice(colon + 1);
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Options of a {@link Redactor}. */
export interface RedactorOptions {
  /**
   * Header names whose values are secret, besides {@link DEFAULT_SECRET_HEADERS} (any case).
   * @default []
   * @example { secretHeaders: ['X-Api-Key'] }
   */
  secretHeaders?: Iterable<string>;
  /**
   * Literal secrets to scrub from any text (a password, a token). Secrets shorter than 5
   * characters are only redacted where their shape shows (URL credentials, header values).
   * @default []
   * @example { secrets: [process.env.API_TOKEN ?? ''] }
   */
  secrets?: Iterable<string>;
}

/**
 * Redacts URLs, headers and free text: URL credentials become `***@`, the values of secret
 * headers `***`, and the literal secrets it was told about `***`. The command line keeps one,
 * primed with the passwords and secret headers of its arguments, for everything it prints.
 *
 * @example
 * const redactor = new Redactor({ secretHeaders: ['x-api-key'] });
 * redactor.addUrl('redis://:Pa55#w0rd@10.0.0.5:6379');
 * redactor.text('cannot reach redis://:Pa55#w0rd@10.0.0.5:6379'); // 'cannot reach redis://***@10.0.0.5:6379'
 */
export class Redactor {
  readonly #headers = new Set<string>(DEFAULT_SECRET_HEADERS);
  readonly #secrets = new Set<string>();
  #headerPattern: RegExp | undefined;
  #secretPattern: RegExp | undefined;

  constructor(options: RedactorOptions = {}) {
    for (const name of options.secretHeaders ?? []) this.addSecretHeader(name);
    for (const secret of options.secrets ?? []) this.addSecret(secret);
  }

  /** Marks a header name secret (any case). Throws a TypeError for a name that is not a token. */
  addSecretHeader(name: string): void {
    if (typeof name !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name))
      throw new TypeError(
        `a secret header must be a header name such as X-Api-Key, got ${JSON.stringify(String(name).slice(0, 40))}`,
      );
    this.#headers.add(name.toLowerCase());
    this.#headerPattern = undefined;
  }

  /** Scrubs `secret` (and its percent-encoded form) from every text from now on. */
  addSecret(secret: string): void {
    if (typeof secret !== 'string' || secret.length < MIN_SECRET_LENGTH) return;
    for (const form of [secret, encodeURIComponent(secret)]) this.#secrets.add(form);
    this.#secretPattern = undefined;
  }

  /** Remembers the password of a URL (or URL-looking string) as a secret. */
  addUrl(url: string): void {
    const password = passwordOf(url);
    if (password !== undefined) this.addSecret(password);
  }

  /**
   * Remembers the value of a header as a secret when the header is secret: the whole value and,
   * for `Bearer TOKEN` or `Basic TOKEN`, the token.
   */
  addHeader(name: string, value: string): void {
    if (!this.isSecretHeader(name)) return;
    this.addSecret(value.trim());
    const parts = value.trim().split(/\s+/);
    if (parts.length > 1) this.addSecret(parts[parts.length - 1] as string);
  }

  /** Whether values of the header `name` are secret. */
  isSecretHeader(name: string): boolean {
    return this.#headers.has(name.toLowerCase());
  }

  /** The secret header names, lower case. */
  get secretHeaders(): readonly string[] {
    return [...this.#headers];
  }

  /** {@link redactUrl}, then the known secrets. */
  url(url: string): string {
    return this.#scrub(redactUrl(url) ?? url);
  }

  /**
   * A copy of `headers` with the values of secret headers replaced by `***`.
   * @example redactor.headers({ 'set-cookie': 'sid=1', 'content-type': 'text/plain' }) // { 'set-cookie': '***', ... }
   */
  headers<V extends string | readonly string[]>(
    headers: Readonly<Record<string, V>>,
  ): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (this.isSecretHeader(name))
        out[name] = typeof value === 'string' ? REDACTED : value.map(() => REDACTED);
      else
        out[name] =
          typeof value === 'string' ? this.#scrub(value) : value.map((v) => this.#scrub(v));
    }
    return out;
  }

  /**
   * Free text (a message, a log line, a command line): the credentials of every URL in it, the
   * values after `Authorization:` (or any secret header name, as in `"cookie":"..."`), and the
   * known secrets.
   * @example redactor.text('GET http://u:p@h/ failed') // 'GET http://***@h/ failed'
   */
  text(text: string): string {
    let out = text.includes('@')
      ? text.replace(URL_TOKEN, (token) => redactUrl(token) ?? token)
      : text;
    out = out.replace(
      this.#headerRegExp(),
      (_all, quote: string, name: string, sep: string, value: string) => {
        const q = value.startsWith('"') ? '"' : value.startsWith("'") ? "'" : '';
        return `${quote}${name}${quote}${sep}${q}${REDACTED}${q}`;
      },
    );
    return this.#scrub(out);
  }

  #headerRegExp(): RegExp {
    if (!this.#headerPattern) {
      const names = [...this.#headers].sort((a, b) => b.length - a.length).map(escapeRegExp);
      // `Name: value` to the end of the line, or `"name": "value"` / `name="value"` to the quote.
      this.#headerPattern = new RegExp(
        `(["']?)\\b(${names.join('|')})\\1(\\s*[:=]\\s*)("(?:[^"\\\\\\r\\n]|\\\\.)*"?|'[^'\\r\\n]*'?|[^\\r\\n]+)`,
        'gi',
      );
    }
    this.#headerPattern.lastIndex = 0;
    return this.#headerPattern;
  }

  #scrub(text: string): string {
    if (this.#secrets.size === 0) return text;
    this.#secretPattern ??= new RegExp(
      [...this.#secrets]
        .sort((a, b) => b.length - a.length)
        .map(escapeRegExp)
        .join('|'),
      'g',
    );
    this.#secretPattern.lastIndex = 0;
    return text.replace(this.#secretPattern, REDACTED);
  }
}

const plain = new Redactor();

/**
 * The credentials of every URL in `text`, and the values of `Authorization`,
 * `Proxy-Authorization`, `Cookie` and `Set-Cookie` headers written in it, replaced by `***`.
 * @example redactText('proxy http://u:p@127.0.0.1:3128 refused') // 'proxy http://***@127.0.0.1:3128 refused'
 */
export function redactText(text: string): string {
  return plain.text(text);
}

/**
 * A copy of `headers` with the values of `Authorization`, `Proxy-Authorization`, `Cookie`,
 * `Set-Cookie` and the `secretHeaders` given replaced by `***`.
 * @example redactHeaders({ authorization: 'Bearer x', accept: '*\/*' }) // { authorization: '***', accept: '*\/*' }
 */
export function redactHeaders<V extends string | readonly string[]>(
  headers: Readonly<Record<string, V>>,
  secretHeaders: Iterable<string> = [],
): Record<string, string | string[]> {
  return new Redactor({ secretHeaders }).headers(headers);
}
