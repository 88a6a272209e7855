import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { showValue } from '../retry/validate.js';

/**
 * Hosts that bypass proxies, written as curl's `NO_PROXY`: a comma-separated string or an
 * array of entries. An entry is `*` (every host), a host name that also matches its subdomains
 * (`example.com` matches `api.example.com`; a leading `.` or `*.` is ignored), an IP address,
 * a CIDR range (`10.0.0.0/8`, `fd00::/8`), optionally followed by `:port` (`[::1]:8080`).
 */
export type NoProxyOption = string | readonly string[];

interface HostEntry {
  readonly host: string;
  readonly port: number | undefined;
}

function defaultPort(protocol: string): number {
  return protocol === 'https:' ? 443 : 80;
}

function notAHost(where: string, entry: string): TypeError {
  return new TypeError(
    `${where}: ${JSON.stringify(entry)} is not a host name, an IP address or a CIDR range`,
  );
}

function bracketless(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** A parsed {@link NoProxyOption}: answers whether a URL goes direct. */
export class NoProxyList {
  /** The list that matches nothing. */
  static readonly EMPTY = new NoProxyList([], false);
  /** `localhost`, 127.0.0.0/8 and `::1`: never proxied by environment variables. */
  static readonly LOOPBACK = NoProxyList.parse(['localhost', '127.0.0.0/8', '::1'], 'loopback');

  readonly #all: boolean;
  readonly #names: HostEntry[] = [];
  readonly #addresses = new BlockList();
  readonly #addressPorts: { list: BlockList; port: number }[] = [];
  readonly #entries: readonly string[];

  private constructor(entries: readonly string[], all: boolean) {
    this.#entries = Object.freeze([...entries]);
    this.#all = all;
  }

  /**
   * Parses a list; throws a `TypeError` naming `where` and the bad entry.
   * @example NoProxyList.parse('localhost,.internal.example,10.0.0.0/8', 'noProxy')
   */
  static parse(value: NoProxyOption | undefined, where: string): NoProxyList {
    if (value === undefined) return NoProxyList.EMPTY;
    let items: string[];
    if (typeof value === 'string') items = value.split(',');
    else if (Array.isArray(value) && value.every((v) => typeof v === 'string'))
      items = value.flatMap((v: string) => v.split(','));
    else
      throw new TypeError(
        `${where} must be a comma-separated string or an array of host names, got ${showValue(value)}`,
      );
    const entries = items.map((v) => v.trim().toLowerCase()).filter((v) => v !== '');
    const list = new NoProxyList(entries, entries.includes('*'));
    for (const entry of entries) if (entry !== '*') list.#add(entry, where);
    return list;
  }

  #add(entry: string, where: string): void {
    let host = entry;
    let port: number | undefined;
    const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(entry);
    if (bracketed) {
      host = bracketed[1] as string;
      port = bracketed[2] === undefined ? undefined : Number(bracketed[2]);
    } else if (!isIPv6(entry.split('/')[0] ?? '')) {
      const withPort = /^(.*):(\d+)$/.exec(entry);
      if (withPort) {
        host = withPort[1] as string;
        port = Number(withPort[2]);
      }
    }
    if (port !== undefined && (port < 1 || port > 65_535))
      throw new TypeError(`${where}: ${JSON.stringify(entry)} has an invalid port`);
    const slash = host.indexOf('/');
    if (slash >= 0) {
      const address = host.slice(0, slash);
      const bits = Number(host.slice(slash + 1));
      const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
      const max = family === 'ipv4' ? 32 : 128;
      if (!family) throw notAHost(where, entry);
      if (!/^\d+$/.test(host.slice(slash + 1)) || bits > max)
        throw new TypeError(
          `${where}: ${JSON.stringify(entry)} is not a CIDR range such as 10.0.0.0/8`,
        );
      this.#addressList(port).addSubnet(address, bits, family);
      return;
    }
    if (isIPv4(host) || isIPv6(host)) {
      this.#addressList(port).addAddress(host, isIPv4(host) ? 'ipv4' : 'ipv6');
      return;
    }
    const name = host.replace(/^\*?\./, '').replace(/\.$/, '');
    if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(name)) throw notAHost(where, entry);
    this.#names.push({ host: name, port });
  }

  #addressList(port: number | undefined): BlockList {
    if (port === undefined) return this.#addresses;
    const list = new BlockList();
    this.#addressPorts.push({ list, port });
    return list;
  }

  /** The entries as given (lower-cased), for messages. */
  get entries(): readonly string[] {
    return this.#entries;
  }

  /** True when the list matches nothing. */
  get isEmpty(): boolean {
    return this.#entries.length === 0;
  }

  /** A list matching what either list matches. */
  concat(other: NoProxyList): NoProxyList {
    if (other.isEmpty) return this;
    if (this.isEmpty) return other;
    return NoProxyList.parse([...this.#entries, ...other.#entries], 'noProxy');
  }

  /** Whether `url` should bypass the proxy. */
  matches(url: URL): boolean {
    if (this.#all) return true;
    if (this.isEmpty) return false;
    const host = bracketless(url.hostname.toLowerCase()).replace(/\.$/, '');
    const port = url.port === '' ? defaultPort(url.protocol) : Number(url.port);
    const family = isIPv4(host) ? 'ipv4' : isIPv6(host) ? 'ipv6' : undefined;
    if (family) {
      if (this.#addresses.check(host, family)) return true;
      return this.#addressPorts.some((p) => p.port === port && p.list.check(host, family));
    }
    return this.#names.some(
      (n) =>
        (n.port === undefined || n.port === port) &&
        (host === n.host || host.endsWith(`.${n.host}`)),
    );
  }
}
