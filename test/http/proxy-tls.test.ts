import { afterAll, beforeAll, expect, it } from 'vitest';
import { ProxyAuthError, ProxyPool, Session, TLSError } from '../../src/http/index.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { available, needs } from '../support/needs.js';
import {
  clientOf,
  PROXY_PASSWORD,
  PROXY_USER,
  type ProxyFleet,
  selfSignedCertificate,
  startProxyFleet,
} from './proxy-support.js';
import { rejectionOf } from './session-support.js';

let fleet: ProxyFleet;
let secure: ChaosServer;
let cert: string;
beforeAll(async () => {
  if (!available('tinyproxy', 'openssl')) return; // skipped, or failing on CI: needs.ts
  fleet = await startProxyFleet();
  const pair = selfSignedCertificate();
  cert = pair.cert;
  secure = await startChaosServer({ tls: pair });
});
afterAll(async () => {
  await fleet?.close();
  await secure?.close();
});

needs('tinyproxy', 'openssl')('https targets through a CONNECT tunnel', () => {
  it('the chaos server serves https with the certificate made for the test', () => {
    expect(secure.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('reaches an https target through the proxy, trusting the test CA given in tls.ca', async () => {
    await using session = new Session({ proxies: [fleet.b.url], tls: { ca: cert }, logger: false });
    const response = await session.get(`${secure.url}/echo`);
    expect(response.status).toBe(200);
    expect(await clientOf(response)).toBe('127.0.0.3');
  });

  it('reaches it through the authenticating proxy with the right credentials', async () => {
    await using session = new Session({
      proxies: [fleet.auth.url],
      tls: { ca: cert },
      logger: false,
    });
    expect(await clientOf(await session.get(`${secure.url}/echo`))).toBe('127.0.0.5');
  });

  it('an untrusted certificate is a TLSError: not retried, and not the proxy’s fault', async () => {
    const pool = new ProxyPool([fleet.a.url, fleet.b.url]);
    await using session = new Session({ proxies: pool, logger: false });
    const error = await rejectionOf(session.get(`${secure.url}/echo`));
    expect(error).toBeInstanceOf(TLSError);
    expect((error as TLSError).attempts).toBe(1);
    expect(pool.statistics[fleet.a.publicUrl]).toMatchObject({ requests: 1, failures: 0 });
  });

  it('rotation works for https targets too: a ban moves the request to another proxy', async () => {
    const url = `${secure.url}/ban?after=1&window=600000`;
    await using session = new Session({
      proxies: [fleet.a.url, fleet.b.url],
      tls: { ca: cert },
      logger: false,
    });
    expect((await session.get(url)).status).toBe(200); // A
    expect((await session.get(url)).status).toBe(200); // B
    await using second = new Session({
      proxies: [fleet.a.url, fleet.c.url],
      tls: { ca: cert },
      logger: false,
    });
    const response = await second.get(url); // A is banned now: C
    expect(response.status).toBe(200);
    expect(response.attempts).toBe(2);
    expect(((await response.json()) as { client: string }).client).toBe('127.0.0.4');
  });

  it('wrong credentials are a ProxyAuthError for https targets as well', async () => {
    await using session = new Session({
      proxies: [fleet.auth.withCredentials(PROXY_USER, `not-${PROXY_PASSWORD}`)],
      tls: { ca: cert },
      logger: false,
    });
    const error = await rejectionOf(session.get(`${secure.url}/echo`));
    expect(error).toBeInstanceOf(ProxyAuthError);
  });

  it('tls.ca is used for direct requests too', async () => {
    await using session = new Session({ tls: { ca: cert }, logger: false });
    expect((await session.get(`${secure.url}/echo`)).status).toBe(200);
  });
});
