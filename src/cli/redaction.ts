/**
 * The command line's redactor: everything dogged prints (messages, errors, -v lines, hints,
 * summaries) goes through it. It is primed from the arguments before commander parses them, so
 * even a value commander rejects (and echoes) is redacted: the passwords of every URL-looking
 * argument (`--queue`, `--store`, `--proxy`...), the values of secret `-H` headers, and the
 * header names given with `--secret-header`.
 */
import { Redactor, redactUrl } from '../http/redact.js';

/** The process's redactor (one command runs per process). */
export const redactor = new Redactor();

/** Options whose value is a header `Name: value`. */
const HEADER_FLAGS = new Set(['-H', '--header']);
const SECRET_HEADER_FLAG = '--secret-header';

/** `--flag=value` -> ['--flag', 'value']; anything else as it is. */
function split(arg: string): [string, string | undefined] {
  if (!arg.startsWith('--')) return [arg, undefined];
  const eq = arg.indexOf('=');
  return eq < 0 ? [arg, undefined] : [arg.slice(0, eq), arg.slice(eq + 1)];
}

/** `-Hvalue` (commander accepts a short flag glued to its value) -> 'value'. */
function gluedHeader(arg: string): string | undefined {
  return arg.startsWith('-H') && arg.length > 2 && !arg.startsWith('--') ? arg.slice(2) : undefined;
}

/** The values given to the option(s) `names` in `args`. */
function valuesOf(args: readonly string[], names: ReadonlySet<string>): string[] {
  const values: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const [flag, inline] = split(arg);
    if (names.has(flag)) {
      const value = inline ?? args[i + 1];
      if (value !== undefined) values.push(value);
      if (inline === undefined) i++;
    } else if (names.has('-H')) {
      const glued = gluedHeader(arg);
      if (glued !== undefined) values.push(glued);
    }
  }
  return values;
}

/** Registers what is secret in the command's arguments (`process.argv.slice(2)`). */
export function primeRedactor(args: readonly string[]): void {
  for (const name of valuesOf(args, new Set([SECRET_HEADER_FLAG]))) {
    try {
      redactor.addSecretHeader(name);
    } catch {
      // A bad name is reported by the option's parser; it marks nothing.
    }
  }
  for (const header of valuesOf(args, HEADER_FLAGS)) {
    const colon = header.indexOf(':');
    if (colon > 0) {
      redactor.addHeader(header.slice(0, colon).trim(), header.slice(colon + 1));
    } else {
      // Malformed (no `Name:`): maybe a token with its name forgotten. All of it is secret.
      redactor.addSecret(header);
      for (const part of header.split(/\s+/).slice(1)) redactor.addSecret(part);
    }
  }
  for (const arg of args) {
    const value = split(arg)[1] ?? arg;
    if (value.includes('@')) redactor.addUrl(value);
  }
}

/** `text` with every secret the command knows of redacted. */
export function redacted(text: string): string {
  return redactor.text(text);
}

/** A URL (or a string given as one) for a message: credentials as `***@`, known secrets `***`. */
export function shownUrl(text: string): string {
  return redactor.text(redactUrl(text) ?? text);
}

/**
 * A malformed `-H` value for a message: only its leading header-name characters (at most 40),
 * never what follows (it may be a token written without its `Name:`).
 */
export function shownHeader(text: string): string {
  const name = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{0,40}/.exec(text)?.[0] ?? '';
  return name.length === text.length ? name : `${name}…`;
}

/**
 * The command line, with the values of secret headers and the credentials of URLs as `***`:
 * for the "resume with" hints.
 */
export function redactedArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const [flag, inline] = split(arg);
    if (HEADER_FLAGS.has(flag) && inline === undefined && i + 1 < args.length) {
      out.push(arg, redactHeaderArg(args[i + 1] as string));
      i++;
    } else if (HEADER_FLAGS.has(flag) && inline !== undefined) {
      out.push(`${flag}=${redactHeaderArg(inline)}`);
    } else {
      out.push(redacted(arg));
    }
  }
  return out;
}

function redactHeaderArg(header: string): string {
  const colon = header.indexOf(':');
  if (colon > 0 && redactor.isSecretHeader(header.slice(0, colon).trim()))
    return `${header.slice(0, colon)}: ***`;
  return redacted(header);
}
