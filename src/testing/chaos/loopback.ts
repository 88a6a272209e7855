import { isIPv4, isIPv6 } from 'node:net';

/**
 * Whether binding `host` keeps a server reachable from this machine only: `localhost`,
 * 127.0.0.0/8, `::1` and IPv4-mapped loopback. Wildcards (`0.0.0.0`, `::`) and every other
 * name or address are not loopback; no DNS lookup is made.
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const lower = bare.toLowerCase();
  if (lower === 'localhost') return true;
  if (isIPv4(lower)) return lower.startsWith('127.');
  if (isIPv6(lower)) {
    if (lower === '::1' || lower === '0:0:0:0:0:0:0:1') return true;
    const mapped = /^(?:0:0:0:0:0|:):ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower)?.[1];
    return mapped?.startsWith('127.') === true;
  }
  return false;
}

/** `http://host:port` (or `https://`), with IPv6 addresses bracketed. */
export function httpOrigin(
  address: string,
  port: number,
  scheme: 'http' | 'https' = 'http',
): string {
  return `${scheme}://${isIPv6(address) ? `[${address}]` : address}:${port}`;
}
