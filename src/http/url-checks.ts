/**
 * Checks of a URL before a request goes out: what DNS cannot resolve, credentials that cannot be
 * decoded. A URL from the user fails as `InvalidURLError`; one from a server's `Location` as
 * `InvalidResponseError` (the callers choose).
 */

/** The longest host name DNS allows, as text (RFC 1035). */
export const MAX_HOST_NAME = 253;
/** The longest label (between dots) of a DNS name. */
export const MAX_HOST_LABEL = 63;

/**
 * Why `url`'s host cannot be looked up, or undefined when it can: a name longer than 253
 * characters or with a label longer than 63 (the resolver would fail with a raw `EINVAL` that
 * quotes the whole host).
 * @example hostNameProblem(new URL(`http://${'a'.repeat(300)}/`)) // 'its host name is 300 characters long (DNS allows 253)'
 */
export function hostNameProblem(url: URL): string | undefined {
  const host = url.hostname;
  if (host.startsWith('[')) return undefined; // an IPv6 literal
  if (host.length > MAX_HOST_NAME)
    return `its host name is ${host.length} characters long (DNS allows ${MAX_HOST_NAME})`;
  let longest = 0;
  for (let start = 0; start <= host.length; ) {
    let end = host.indexOf('.', start);
    if (end < 0) end = host.length;
    if (end - start > longest) longest = end - start;
    start = end + 1;
  }
  if (longest > MAX_HOST_LABEL)
    return `its host name has a label of ${longest} characters (DNS allows ${MAX_HOST_LABEL})`;
  return undefined;
}

/**
 * The `Authorization: Basic` value for the `user:password@` of `url`; undefined when it has
 * none; `false` when they are not valid percent-encoding (`%zz`, a lone `%`).
 */
export function basicAuthOf(url: URL): string | undefined | false {
  if (!url.username && !url.password) return undefined;
  try {
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  } catch {
    return false;
  }
}
