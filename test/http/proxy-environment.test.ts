import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import {
  closeDefaultSession,
  configureDefaultSession,
  get,
  ProxyPool,
  Session,
} from '../../src/http/index.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { available, needs } from '../support/needs.js';
import {
  clientOf,
  type ProxyFleet,
  selfSignedCertificate,
  startProxyFleet,
} from './proxy-support.js';
import { closedPort } from './session-support.js';

let fleet: ProxyFleet;
let chaos: ChaosServer;
let secure: ChaosServer;
let cert: string;
beforeAll(async () => {
  if (!available('tinyproxy', 'openssl')) return; // skipped, or failing on CI: needs.ts
  fleet = await startProxyFleet();
  chaos = await startChaosServer();
  const pair = selfSignedCertificate();
  cert = pair.cert;
  secure = await startChaosServer({ tls: pair });
});
afterAll(async () => {
  await closeDefaultSession();
  await fleet?.close();
  await chaos?.close();
  await secure?.close();
});

/** A session whose environment is `env` (process.env is left alone). */
function envSession(env: Record<string, string>, includeLoopback = true, tls = false): Session {
  return new Session({
    proxyFromEnvironment: { env, includeLoopback },
    logger: false,
    ...(tls && { tls: { ca: cert } }),
  });
}

needs('tinyproxy', 'openssl')('proxies from the environment', () => {
  it('never proxies loopback targets unless asked, even with HTTP_PROXY set', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    await using session = envSession({ HTTP_PROXY: dead, HTTPS_PROXY: dead }, false);
    expect(await clientOf(await session.get(`${chaos.url}/echo`))).toBe('127.0.0.1');
  });

  it('sends http targets through HTTP_PROXY when loopback is included', async () => {
    await using session = envSession({ HTTP_PROXY: fleet.a.url });
    expect(await clientOf(await session.get(`${chaos.url}/echo`))).toBe('127.0.0.2');
  });

  it('sends https targets through HTTPS_PROXY, http ones through HTTP_PROXY', async () => {
    await using session = envSession(
      { HTTP_PROXY: fleet.a.url, HTTPS_PROXY: fleet.b.url },
      true,
      true,
    );
    expect(await clientOf(await session.get(`${secure.url}/echo`))).toBe('127.0.0.3');
    expect(await clientOf(await session.get(`${chaos.url}/echo`))).toBe('127.0.0.2');
  });

  it('an https target with only HTTP_PROXY set goes direct', async () => {
    await using session = envSession({ HTTP_PROXY: fleet.a.url }, true, true);
    expect(await clientOf(await session.get(`${secure.url}/echo`))).toBe('127.0.0.1');
  });

  it('prefers the lower-case variables, as curl and requests do', async () => {
    await using session = envSession({ http_proxy: fleet.c.url, HTTP_PROXY: fleet.a.url });
    expect(await clientOf(await session.get(`${chaos.url}/echo`))).toBe('127.0.0.4');
  });

  it('accepts host:port without a scheme, meaning http', async () => {
    await using session = envSession({ HTTP_PROXY: `127.0.0.1:${fleet.a.port}` });
    expect(await clientOf(await session.get(`${chaos.url}/echo`))).toBe('127.0.0.2');
  });

  it('obeys NO_PROXY (and no_proxy)', async () => {
    await using session = envSession({
      HTTP_PROXY: fleet.a.url,
      no_proxy: `example.test, 127.0.0.1:${chaos.secondaryPort}`,
    });
    expect(await clientOf(await session.get(`${chaos.url}/echo`))).toBe('127.0.0.2');
    expect(await clientOf(await session.get(`${chaos.secondaryUrl}/echo`))).toBe('127.0.0.1');
  });

  it('NO_PROXY=* turns the environment proxy off', async () => {
    await using session = envSession({ HTTP_PROXY: fleet.a.url, NO_PROXY: '*' });
    expect(await clientOf(await session.get(`${chaos.url}/echo`))).toBe('127.0.0.1');
  });

  it('a session’s own proxies (and a mount’s proxies: false) win over the environment', async () => {
    await using session = new Session({
      proxyFromEnvironment: { env: { HTTP_PROXY: fleet.a.url }, includeLoopback: true },
      proxies: [fleet.b.url],
      logger: false,
    });
    session.mount(`${chaos.url}/echo?direct`, { proxies: false });
    expect(await clientOf(await session.get(`${chaos.url}/echo`))).toBe('127.0.0.3');
    expect(await clientOf(await session.get(`${chaos.url}/echo?direct`))).toBe('127.0.0.1');
  });

  it('the environment’s proxy is not a rotation pool: a 403 comes back as it is', async () => {
    await using session = envSession({ HTTP_PROXY: fleet.a.url });
    const url = `${chaos.url}/ban?after=0&window=600000`;
    const response = await session.get(url);
    expect(response.status).toBe(403);
    expect(response.attempts).toBe(1);
    expect((await session.get(url)).status).toBe(403); // not benched: still used
  });

  it('says which variable holds a bad proxy URL, without its password', () => {
    expect(() => envSession({ HTTPS_PROXY: 'ftp://user:hunter2@127.0.0.1:2121' })).toThrow(
      'HTTPS_PROXY="ftp://***@127.0.0.1:2121" is not a proxy URL such as http://127.0.0.1:3128 (ProxyPool: urls[0] must be an http or https proxy URL, got ftp:)',
    );
  });
});

needs('tinyproxy', 'openssl')('the default session', () => {
  afterEach(async () => {
    vi.unstubAllEnvs();
    configureDefaultSession();
    await closeDefaultSession();
  });

  it('reads HTTP_PROXY from process.env but keeps loopback targets direct', async () => {
    vi.stubEnv('HTTP_PROXY', `http://127.0.0.1:${await closedPort()}`);
    vi.stubEnv('http_proxy', '');
    await closeDefaultSession();
    expect(await clientOf(await get(`${chaos.url}/echo`))).toBe('127.0.0.1');
  });

  it('configureDefaultSession can include loopback, or opt out of the environment', async () => {
    vi.stubEnv('HTTP_PROXY', fleet.a.url);
    vi.stubEnv('http_proxy', '');
    configureDefaultSession({ proxyFromEnvironment: { includeLoopback: true }, logger: false });
    expect(await clientOf(await get(`${chaos.url}/echo`))).toBe('127.0.0.2');
    configureDefaultSession({ proxyFromEnvironment: false, logger: false });
    expect(await clientOf(await get(`${chaos.url}/echo`))).toBe('127.0.0.1');
  });
});

needs('tinyproxy', 'openssl')('Session proxy options are checked loudly', () => {
  it.each([
    [
      { proxies: 'http://127.0.0.1:3128' },
      'Session: proxies must be a ProxyPool, an array of proxy URLs or false, got "http://127.0.0.1:3128"',
    ],
    [
      { proxies: ['nope'] },
      'Session: proxies: urls[0] must be a proxy URL such as http://127.0.0.1:3128, got "nope"',
    ],
    [{ proxyRotations: -1 }, 'Session: proxyRotations must be a non-negative integer, got -1'],
    [
      { noProxy: ['http://x/'] },
      'Session: noProxy: "http://x/" is not a host name, an IP address or a CIDR range',
    ],
    [
      { tls: { ca: 5 } },
      'Session: tls.ca must be a PEM string, a Buffer or an array of them, got 5',
    ],
    [
      { tls: { insecure: true } },
      'Session: tls: unknown option "insecure"; use rejectUnauthorized: false',
    ],
    [
      { proxyFromEnvironment: 'yes' },
      'Session: proxyFromEnvironment must be true, false or { env, includeLoopback }, got "yes"',
    ],
    [
      { proxyFromEnvironment: { loopback: true } },
      'Session: proxyFromEnvironment: unknown option "loopback"; known options: env, includeLoopback',
    ],
  ])('rejects %j', (options, message) => {
    expect(() => new Session(options as never)).toThrow(new TypeError(message));
  });

  it('refuses proxies together with a dispatcher of your own', async () => {
    const { Agent } = await import('undici');
    const dispatcher = new Agent();
    expect(() => new Session({ dispatcher, proxies: ['http://127.0.0.1:3128'] })).toThrow(
      "Session: proxies needs dogged's own dispatchers; pass either dispatcher or proxies, not both",
    );
    const session = new Session({ dispatcher, logger: false });
    expect(() =>
      session.mount('http://127.0.0.1/', { proxies: ['http://127.0.0.1:3128'] }),
    ).toThrow(/proxies need dogged's own dispatchers/);
    await dispatcher.close();
  });

  it('checks proxyKey on each request', async () => {
    await using session = new Session({
      proxies: new ProxyPool([fleet.a.url]),
      logger: false,
    });
    await expect(session.get(`${chaos.url}/echo`, { proxyKey: '' })).rejects.toThrow(
      'request: proxyKey must be a non-empty string, got ""',
    );
    await expect(session.get(`${chaos.url}/echo`, { proxyKey: 'alice' })).rejects.toThrow(
      'proxyKey needs a sticky pool: new ProxyPool(urls, { sticky: true })',
    );
  });
});
