import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { redactor, shownUrl } from './redaction.js';

/**
 * Checks one proxy URL (`--proxy`, a line of `--proxies`): `http(s)://[user:password@]host:port`
 * with no path. The message of a bad one shows it with its credentials as `***@`. Returns the
 * URL as the ProxyPool takes it.
 */
export function parseProxyUrl(text: string): string {
  // Its password is a secret from now on, even if the URL turns out malformed.
  redactor.addUrl(text);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError(
      `${JSON.stringify(shownUrl(text))} is not a proxy URL such as http://127.0.0.1:3128 (a password holding / # ? @ must be percent-encoded)`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InvalidArgumentError(`proxy URLs must be http or https, got ${url.protocol}`);
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash)
    throw new InvalidArgumentError(
      `${JSON.stringify(shownUrl(text))} is not a proxy URL: write protocol://[user:password@]host:port, with no path`,
    );
  return url.href;
}

/**
 * Proxy URLs from a file: one per line; blank lines and `#` comments are skipped. A missing
 * file or a bad line is an `InvalidArgumentError` (a usage error) naming the file and the line.
 */
export function readProxyFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'it is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : (error as Error).message;
    throw new InvalidArgumentError(
      `--proxies ${path}: cannot read it (${why}); give a file of proxy URLs, one a line`,
    );
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  // Every password first: a bad line's message must not show another line's password either.
  for (const line of lines) if (line && !line.startsWith('#')) redactor.addUrl(line);
  const urls: string[] = [];
  for (const [index, line] of lines.entries()) {
    if (!line || line.startsWith('#')) continue;
    try {
      urls.push(parseProxyUrl(line));
    } catch (error) {
      throw new InvalidArgumentError(
        `--proxies ${path} line ${index + 1}: ${(error as Error).message}`,
      );
    }
  }
  if (!urls.length) throw new InvalidArgumentError(`--proxies ${path} lists no proxy`);
  return urls;
}
