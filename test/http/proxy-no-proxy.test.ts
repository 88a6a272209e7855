import { describe, expect, it } from 'vitest';
import { NoProxyList } from '../../src/http/index.js';

const matches = (list: string | string[], url: string): boolean =>
  NoProxyList.parse(list, 'noProxy').matches(new URL(url));

describe('noProxy lists (curl NO_PROXY rules)', () => {
  it('* matches every host', () => {
    expect(matches('*', 'http://127.0.0.1:8080/')).toBe(true);
    expect(matches(' * ', 'https://example.test/')).toBe(true);
  });

  it('a host name matches itself and its subdomains, not look-alikes', () => {
    expect(matches('example.test', 'http://example.test/')).toBe(true);
    expect(matches('example.test', 'http://api.example.test/')).toBe(true);
    expect(matches('example.test', 'http://badexample.test/')).toBe(false);
    expect(matches('example.test', 'http://example.test.evil/')).toBe(false);
  });

  it('a leading dot or *. is ignored, as in curl', () => {
    expect(matches('.example.test', 'http://example.test/')).toBe(true);
    expect(matches('*.example.test', 'http://www.example.test/')).toBe(true);
  });

  it('is case-insensitive and ignores a trailing dot', () => {
    expect(matches('Example.TEST', 'http://EXAMPLE.test./')).toBe(true);
  });

  it('takes a comma-separated string or an array, skipping blanks', () => {
    expect(matches('a.test, ,b.test', 'http://b.test/')).toBe(true);
    expect(matches(['a.test', 'b.test,c.test'], 'http://c.test/')).toBe(true);
    expect(NoProxyList.parse('', 'noProxy').isEmpty).toBe(true);
  });

  it('matches IP addresses and CIDR ranges, IPv4 and IPv6', () => {
    expect(matches('127.0.0.1', 'http://127.0.0.1:9/')).toBe(true);
    expect(matches('127.0.0.1', 'http://127.0.0.2:9/')).toBe(false);
    expect(matches('127.0.0.0/8', 'http://127.9.9.9/')).toBe(true);
    expect(matches('::1', 'http://[::1]:8080/')).toBe(true);
    expect(matches('fd00::/8', 'http://[fd12::5]/')).toBe(true);
    expect(matches('10.0.0.0/8', 'http://127.0.0.1/')).toBe(false);
  });

  it('an entry with :port matches that port only (default ports included)', () => {
    expect(matches('example.test:8080', 'http://example.test:8080/')).toBe(true);
    expect(matches('example.test:8080', 'http://example.test/')).toBe(false);
    expect(matches('example.test:443', 'https://example.test/')).toBe(true);
    expect(matches('127.0.0.1:80', 'http://127.0.0.1/')).toBe(true);
    expect(matches('[::1]:8080', 'http://[::1]:8080/')).toBe(true);
    expect(matches('[::1]:8080', 'http://[::1]:8081/')).toBe(false);
  });

  it('rejects entries that are not hosts, addresses or ranges with a TypeError naming them', () => {
    expect(() => NoProxyList.parse('http://example.test/', 'noProxy')).toThrow(
      new TypeError(
        'noProxy: "http://example.test/" is not a host name, an IP address or a CIDR range',
      ),
    );
    expect(() => NoProxyList.parse('10.0.0.0/40', 'noProxy')).toThrow(/is not a CIDR range/);
    expect(() => NoProxyList.parse(42 as unknown as string, 'noProxy')).toThrow(
      'noProxy must be a comma-separated string or an array of host names, got 42',
    );
  });

  it('LOOPBACK covers localhost, 127.0.0.0/8 and ::1', () => {
    for (const url of ['http://localhost:1/', 'http://127.0.0.5/', 'http://[::1]/'])
      expect(NoProxyList.LOOPBACK.matches(new URL(url))).toBe(true);
    expect(NoProxyList.LOOPBACK.matches(new URL('http://10.1.2.3/'))).toBe(false);
  });
});
