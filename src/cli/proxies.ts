import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';

/** Checks one proxy URL (for `--proxy`). */
export function parseProxyUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InvalidArgumentError(
      `${JSON.stringify(text)} is not a proxy URL such as http://127.0.0.1:3128`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new InvalidArgumentError(`proxy URLs must be http or https, got ${url.protocol}`);
  return url.href;
}

/** Proxy URLs from a file: one per line; blank lines and `#` comments are skipped. */
export function readProxyFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidArgumentError(`cannot read ${path}: ${(error as Error).message}`);
  }
  const urls = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map(parseProxyUrl);
  if (!urls.length) throw new InvalidArgumentError(`${path} lists no proxy`);
  return urls;
}
