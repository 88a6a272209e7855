import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { inspect } from 'node:util';
import { expect, it } from 'vitest';
import {
  MaxRetryError,
  ProxyAuthError,
  ProxyError,
  ProxyPool,
  Session,
} from '../../src/http/index.js';
import type { ChaosServer } from '../../src/testing/index.js';
import { needs } from '../support/needs.js';
import {
  clientOf,
  PROXY_PASSWORD,
  PROXY_USER,
  type ProxyFleet,
  useProxyFleetAndChaos,
} from './proxy-support.js';
import { closedPort, recordingLogger, rejectionOf } from './session-support.js';

let fleet: ProxyFleet;
let chaos: ChaosServer;
useProxyFleetAndChaos((f, c) => {
  fleet = f;
  chaos = c;
});

const wrong = (): string => fleet.auth.withCredentials(PROXY_USER, 'wrong-password');

needs('tinyproxy')('proxy credentials', () => {
  it('the right credentials get through: the target sees the proxy’s address', async () => {
    await using session = new Session({ proxies: [fleet.auth.url], logger: false });
    expect(await clientOf(await session.get(`${chaos.url}/echo`))).toBe('127.0.0.5');
  });

  it('wrong credentials give ProxyAuthError, not retried through the same proxy', async () => {
    const pool = new ProxyPool([wrong()]);
    await using session = new Session({ proxies: pool, retry: { total: 5 }, logger: false });
    const error = await rejectionOf(session.get(`${chaos.url}/echo`));
    expect(error).toBeInstanceOf(ProxyAuthError);
    expect(error).toBeInstanceOf(ProxyError);
    expect(error).toMatchObject({
      code: 'ERR_DOGGED_PROXY_AUTH',
      retriable: false,
      attempts: 1,
      proxy: fleet.auth.publicUrl,
      proxyStatus: 401, // tinyproxy answers a wrong password with 401, a missing one with 407
    });
    expect(pool.statistics[fleet.auth.publicUrl]).toMatchObject({
      requests: 1,
      failures: 1,
      state: 'benched',
    });
    expect(chaos.log()).toHaveLength(0);
  });

  it('missing credentials are a 407 and a ProxyAuthError too', async () => {
    await using session = new Session({ proxies: [fleet.auth.publicUrl], logger: false });
    const error = await rejectionOf(session.get(`${chaos.url}/echo`));
    expect(error).toBeInstanceOf(ProxyAuthError);
    expect((error as ProxyAuthError).proxyStatus).toBe(407);
  });

  it('wrong credentials on one proxy: the request moves on to another, and stays off it', async () => {
    const pool = new ProxyPool([wrong(), fleet.a.url]);
    await using session = new Session({ proxies: pool, logger: false });
    const first = await session.get(`${chaos.url}/echo`);
    expect(first.status).toBe(200);
    expect(first.attempts).toBe(2);
    expect(await clientOf(first)).toBe('127.0.0.2');
    for (let i = 0; i < 3; i++) await (await session.get(`${chaos.url}/echo`)).text();
    expect(pool.statistics[fleet.auth.publicUrl]?.requests).toBe(1);
  });
});

needs('tinyproxy')('credentials never leak', () => {
  const secrets = [
    PROXY_PASSWORD,
    'wrong-password',
    PROXY_USER,
    Buffer.from(`${PROXY_USER}:${PROXY_PASSWORD}`).toString('base64'),
    Buffer.from(`${PROXY_USER}:wrong-password`).toString('base64'),
    'pw-of-dead',
  ];

  it('not in errors, history, logs, hooks, diagnostics, statistics or inspect output', async () => {
    const dead = `http://${PROXY_USER}:pw-of-dead@127.0.0.1:${await closedPort()}`;
    const logger = recordingLogger();
    const shown: string[] = [];
    const listener = (message: unknown): void => void shown.push(inspect(message, { depth: 20 }));
    subscribe('dogged:retry', listener);
    subscribe('dogged:giveup', listener);
    const pool = new ProxyPool([wrong(), dead, fleet.auth.url], { maxFailures: 100 });
    const session = new Session({
      proxies: pool,
      logger,
      retry: { total: 2, backoffFactor: 0 },
      hooks: {
        beforeRequest: (request) => void shown.push(inspect(request, { depth: 20 })),
        beforeRetry: (event) => void shown.push(inspect(event, { depth: 20 })),
        error: (error, request) => void shown.push(inspect({ error, request }, { depth: 20 })),
        response: (response) => void shown.push(inspect(response, { depth: 5 })),
      },
    });
    try {
      // Wrong credentials, a dead proxy, then the right one: a 503 that retries run out on.
      const error = await rejectionOf(session.get(`${chaos.url}/status/503`));
      expect(error).toBeInstanceOf(MaxRetryError);
      shown.push(inspect(error, { depth: 20, showHidden: true }));
      shown.push(JSON.stringify((error as MaxRetryError).history));
      shown.push(String((error as Error).stack));
      // Only broken proxies: every failure ends up in errors and their causes.
      const broken = new Session({
        proxies: new ProxyPool([wrong(), dead], { maxFailures: 100 }),
        logger,
        retry: { total: 1, backoffFactor: 0 },
      });
      const failure = await rejectionOf(broken.get(`${chaos.url}/echo`));
      shown.push(inspect(failure, { depth: 20, showHidden: true }));
      await broken.close();
    } finally {
      unsubscribe('dogged:retry', listener);
      unsubscribe('dogged:giveup', listener);
      await session.close();
    }
    shown.push(inspect(pool, { depth: 20, showHidden: true }));
    shown.push(JSON.stringify(pool.statistics));
    shown.push(inspect(session, { depth: 20, showHidden: true }));
    shown.push(...logger.lines.map((l) => l.message));
    const everything = shown.join('\n');
    expect(everything).toContain(fleet.auth.publicUrl); // the proxies are named...
    expect(everything).toContain('ProxyAuthError');
    expect(everything).toContain('ECONNREFUSED');
    expect(logger.lines.some((l) => l.message.includes('via proxy'))).toBe(true);
    for (const secret of secrets) expect(everything).not.toContain(secret); // ...not their secrets
  });
});
