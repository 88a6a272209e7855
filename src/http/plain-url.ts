/**
 * Reading an absolute http(s) URL without parsing it, when WHATWG parsing would give it back as
 * it is: most URLs a script or a batch sends (`https://api.example.com/items?page=2`) are
 * already written the way `new URL(text).href` writes them. Parsing one costs about a
 * microsecond (Node 20: the parse, then a getter for each part); this reads its parts by
 * slicing, after a check of its characters, and parses only its scheme and authority, once per
 * origin (see {@link OriginCache}).
 */
import { hostNameProblem } from './url-checks.js';

/** The parts of a URL that a request needs, as `new URL(text)` gives them. */
export interface PlainUrl {
  /** The URL itself: `href`, which is the text as given. */
  readonly href: string;
  /** `scheme://host[:port]`, as `url.origin`. */
  readonly origin: string;
  /** `host[:port]`, as `url.host`. */
  readonly host: string;
  /** Path and query, as `url.pathname + url.search`. */
  readonly path: string;
}

/**
 * Path and query made only of characters that WHATWG parsing of an http(s) URL leaves as they
 * are (RFC 3986's unreserved and sub-delimiters but `'`, which a query encodes, and `:@/?%`),
 * beginning with the path's `/`. Anything else (a space, a quote, `#`, `\`, a non-ASCII
 * letter...) and the URL is parsed.
 */
const PLAIN_PATH_AND_QUERY = /^\/[A-Za-z0-9\-._~!$&()*+,;=:@/?%]*$/;
/**
 * A path the parser would change: a `.` or `..` segment (or one written `%2e`) is resolved
 * away. Any `/.` or `%2e` in the path sends the URL to the parser, which also covers a segment
 * such as `/.well-known` that it would keep.
 */
const DOT_SEGMENT = /\/\.|%2e/i;

/** Origins kept at most; the cache is emptied when full. */
const ORIGINS = 64;

/**
 * The scheme-and-authority prefixes seen (`https://example.com:8443`), each parsed once: the
 * host when the prefix is exactly what `new URL` writes for it, with no credentials and a host
 * DNS can look up; false for any other prefix (its URLs are parsed each time).
 */
class OriginCache {
  readonly #hosts = new Map<string, string | false>();

  hostOf(prefix: string, schemeLength: number): string | false {
    const known = this.#hosts.get(prefix);
    if (known !== undefined) return known;
    const host = canonicalHost(prefix, schemeLength);
    if (this.#hosts.size >= ORIGINS) this.#hosts.clear();
    this.#hosts.set(prefix, host);
    return host;
  }
}

/** The host of `prefix` (`scheme://authority`) when the parser writes it back as it is. */
function canonicalHost(prefix: string, schemeLength: number): string | false {
  let url: URL;
  try {
    url = new URL(`${prefix}/`);
  } catch {
    return false;
  }
  if (url.href !== `${prefix}/` || url.username !== '' || url.password !== '') return false;
  if (hostNameProblem(url) !== undefined) return false;
  const host = prefix.slice(schemeLength);
  // Never other than url.host once the href matched; checked all the same, the cost is once.
  return host === url.host ? host : false;
}

const origins = new OriginCache();

/**
 * The parts of `text` when it is an absolute `http:` or `https:` URL that `new URL(text)` would
 * give back unchanged (`href === text`), with no credentials, no fragment, and a host DNS can
 * look up; undefined for any other text, which the caller parses (and reports on) as before.
 * @example plainUrl('https://example.com/a?b=1') // { href: 'https://example.com/a?b=1', origin: 'https://example.com', host: 'example.com', path: '/a?b=1' }
 * @example plainUrl('https://example.com') // undefined: the parser adds the path's `/`
 */
export function plainUrl(text: string): PlainUrl | undefined {
  let schemeLength: number;
  if (text.startsWith('https://')) schemeLength = 8;
  else if (text.startsWith('http://')) schemeLength = 7;
  else return undefined;
  const slash = text.indexOf('/', schemeLength);
  if (slash <= schemeLength) return undefined;
  const rest = text.slice(slash);
  if (!PLAIN_PATH_AND_QUERY.test(rest)) return undefined;
  const query = rest.indexOf('?');
  // An empty query (`/a?`): `url.search` is '' for it, so the path undici gets has no `?`.
  if (query === rest.length - 1) return undefined;
  if (DOT_SEGMENT.test(query < 0 ? rest : rest.slice(0, query))) return undefined;
  const origin = text.slice(0, slash);
  const host = origins.hostOf(origin, schemeLength);
  if (host === false) return undefined;
  return { href: text, origin, host, path: rest };
}
