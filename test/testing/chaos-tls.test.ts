import { Agent, request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ConnectionResetError, IncompleteBodyError, Session } from '../../src/http/index.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { selfSignedCertificate } from '../http/proxy-support.js';
import { rejectionOf } from '../http/session-support.js';
import { available, needs } from '../support/needs.js';

/** The chaos server's connection resets over TLS (the `tls` option): the TCP socket is reset. */
const describe = needs('openssl');

let chaos: ChaosServer;
let cert = '';
beforeAll(async () => {
  if (!available('openssl')) return;
  const pair = selfSignedCertificate();
  cert = pair.cert;
  chaos = await startChaosServer({ tls: pair });
});
afterAll(async () => {
  await chaos?.close();
});

describe('chaos server resets over TLS', () => {
  it('/reset resets the connection (ECONNRESET), not a 500', async () => {
    const agent = new Agent({ connect: { ca: cert } });
    try {
      const error = await rejectionOf(request(`${chaos.url}/reset`, { dispatcher: agent }));
      expect(error).toMatchObject({ code: 'ECONNRESET' });
    } finally {
      await agent.close();
    }
  });

  it('/flaky?mode=reset resets the first attempt, then answers', async () => {
    await using session = new Session({ logger: false, tls: { ca: cert }, retry: false });
    const url = `${chaos.url}/flaky/tls-reset?mode=reset&fail=1`;
    expect(await rejectionOf(session.get(url))).toBeInstanceOf(ConnectionResetError);
    const res = await session.get(url);
    expect(await res.json()).toEqual({ key: 'tls-reset', attempt: 2, failed: false });
  });

  it('/reset-mid-body sends its bytes, then resets: a cut body', async () => {
    await using session = new Session({ logger: false, tls: { ca: cert }, retry: false });
    const res = await session.get(`${chaos.url}/reset-mid-body?bytes=100&declared=1000`);
    expect(res.status).toBe(200);
    const error = await rejectionOf(res.bytes());
    expect(error).toBeInstanceOf(IncompleteBodyError);
    expect((error as IncompleteBodyError).cause).toMatchObject({ code: 'ECONNRESET' });
  });
});
