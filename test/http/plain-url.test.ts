import { describe, expect, it } from 'vitest';
import { plainUrl } from '../../src/http/plain-url.js';
import { hostNameProblem } from '../../src/http/url-checks.js';
import { seededRandom } from '../../src/retry/random.js';

const SCHEMES = ['http://', 'https://', 'HTTP://', 'ftp://', 'http:/', 'https:', 'ws://'];
const HOSTS = [
  'example.com',
  'api.example.com',
  'EXAMPLE.com',
  '127.0.0.1',
  '127.1',
  '0x7f.0.0.1',
  'localhost:8080',
  'example.com:80',
  'example.com:443',
  'example.com:65536',
  '[::1]',
  '[::1]:8080',
  '[0:0::1]',
  'user:pw@example.com',
  'user@example.com',
  '@example.com',
  'example.com.',
  '%41.example.com',
  'xn--nxasmq6b.example',
  'bücher.example',
  `${'a'.repeat(64)}.example`,
  `${'a'.repeat(63)}.example`,
  `${'a.'.repeat(127)}com`,
  'exa mple.com',
  'example.com?x',
  'example.com#x',
  'example.com\\x',
  '',
];
/** The hosts of {@link HOSTS} written as the parser writes them. */
const PLAIN_HOSTS = ['example.com', 'api.example.com', '127.0.0.1', 'localhost:8080', '[::1]:8080'];
/** Pieces of a path and query that the parser leaves as they are, in any order. */
const PLAIN_PIECES = [
  'a',
  'items',
  'Z9',
  'v1.json',
  '-_~',
  '!$&()*+,;=:@',
  '/',
  '//',
  '?q=1',
  '&b=2',
];
/** Pieces of paths and queries: the plain, and every kind the parser changes or encodes. */
const PIECES = [
  ...PLAIN_PIECES,
  "'",
  '?',
  '#frag',
  '%20',
  '%2e',
  '%2E',
  '%zz',
  '%',
  '.',
  '..',
  '/./',
  '/../',
  '/.well-known',
  ' ',
  '\t',
  '"',
  '<>',
  '`',
  '{}',
  '|',
  '^',
  '[]',
  '\\',
  'é',
  '€',
  '\u0000',
];

interface Parts {
  readonly href: string;
  readonly origin: string;
  readonly host: string;
  readonly path: string;
}

/** What `new URL(text)` makes of `text`, for URLs without credentials or fragment. */
function parsed(text: string): Parts | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  return {
    href: url.href,
    origin: url.origin,
    host: url.host,
    path: `${url.pathname}${url.search}`,
  };
}

describe('plainUrl', () => {
  it('reads the parts of a plain http(s) URL as the parser does, without parsing it', () => {
    expect(plainUrl('https://api.example.com/v1/items?page=2&sort=-id')).toEqual({
      href: 'https://api.example.com/v1/items?page=2&sort=-id',
      origin: 'https://api.example.com',
      host: 'api.example.com',
      path: '/v1/items?page=2&sort=-id',
    });
    expect(plainUrl('http://127.0.0.1:8080/')).toEqual({
      href: 'http://127.0.0.1:8080/',
      origin: 'http://127.0.0.1:8080',
      host: '127.0.0.1:8080',
      path: '/',
    });
    expect(plainUrl('http://[::1]:9/x?y=a/b?c')?.path).toBe('/x?y=a/b?c');
    // A query may hold dots; only the path's are resolved.
    expect(plainUrl('http://example.com/a?next=/./b/../c')?.path).toBe('/a?next=/./b/../c');
  });

  it.each([
    ['the path the parser adds', 'https://example.com'],
    ['a fragment', 'http://example.com/a#b'],
    ['a host in capitals', 'http://Example.com/a'],
    ['a default port', 'http://example.com:80/a'],
    ['an IPv4 address in short', 'http://127.1/a'],
    ['credentials', 'http://user:pw@example.com/a'],
    ['a dot segment', 'http://example.com/a/./b'],
    ['a dot segment in percent-encoding', 'http://example.com/a/%2e%2E/b'],
    ['an empty query', 'http://example.com/a?'],
    ['a space', 'http://example.com/a b'],
    ['a quote the query encodes', "http://example.com/a?b='c'"],
    ['a backslash', 'http://example.com\\a'],
    ['a non-ASCII letter', 'http://example.com/café'],
    ['a label DNS refuses', `http://${'a'.repeat(64)}.example/`],
    ['another scheme', 'ftp://example.com/a'],
    ['a relative URL', '/a/b'],
  ])('leaves a URL with %s to the parser', (_, text) => {
    expect(plainUrl(text)).toBeUndefined();
  });

  it('never gives other parts than the parser for 20,000 generated URLs, and takes most plain ones', () => {
    // Seeded: the same URLs every run.
    const next = seededRandom(20261206);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)] as T;
    let taken = 0;
    let plainLooking = 0;
    for (let i = 0; i < 20_000; i++) {
      // Half of them from plain parts alone, so the fast path is exercised, not only refused.
      const plainOnly = next() < 0.5;
      const scheme = plainOnly ? pick(SCHEMES.slice(0, 2)) : pick(SCHEMES);
      const host = plainOnly ? pick(PLAIN_HOSTS) : pick(HOSTS);
      let rest = plainOnly || next() < 0.9 ? '/' : '';
      const pieces = Math.floor(next() * 6);
      for (let k = 0; k < pieces; k++) rest += plainOnly ? pick(PLAIN_PIECES) : pick(PIECES);
      const text = `${scheme}${host}${rest}`;
      const fast = plainUrl(text);
      if (plainOnly) plainLooking++;
      if (fast === undefined) continue;
      taken++;
      const url = new URL(text);
      // The fast path's promise: the parser would give the text back, with these parts.
      expect(fast, text).toEqual(parsed(text));
      expect(url.href, text).toBe(text);
      expect([url.username, url.password, url.hash], text).toEqual(['', '', '']);
      expect(hostNameProblem(url), text).toBeUndefined();
    }
    // Every URL built of plain parts.
    expect(plainLooking).toBeGreaterThan(9_000);
    expect(taken).toBeGreaterThanOrEqual(plainLooking);
  });
});
