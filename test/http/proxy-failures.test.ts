import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { expect, it } from 'vitest';
import {
  type BeforeRequestContext,
  MaxRetryError,
  ProxyError,
  type RetryEvent,
} from '../../src/http/index.js';
import { type ChaosServer, startBlackhole } from '../../src/testing/index.js';
import { needs } from '../support/needs.js';
import { flag, type ProxyFleet, proxiedSession, useProxyFleetAndChaos } from './proxy-support.js';
import { closedPort, recordingLogger, rejectionOf } from './session-support.js';

let fleet: ProxyFleet;
let chaos: ChaosServer;
useProxyFleetAndChaos((f, c) => {
  fleet = f;
  chaos = c;
});

needs('tinyproxy')('proxy failures', () => {
  it('a dead proxy (closed port) is skipped: the request moves on at once', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const { session, pool, clock } = proxiedSession([dead, fleet.a, fleet.b], { maxFailures: 1 });
    await using _ = session;
    const responses = [];
    for (let i = 0; i < 4; i++) responses.push(await session.get(`${chaos.url}/echo`));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(responses[0]?.attempts).toBe(2);
    expect(pool.statistics[dead]).toMatchObject({ requests: 1, failures: 1, state: 'benched' });
    expect(pool.statistics[dead]?.lastProblem).toMatch(/could not connect to proxy .*ECONNREFUSED/);
    expect(clock.sleeps).toEqual([]);
  });

  it('with the default maxFailures a dead proxy is benched after 3 failures, and no request fails', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const { session, pool } = proxiedSession([dead, fleet.a]);
    await using _ = session;
    for (let i = 0; i < 8; i++) expect((await session.get(`${chaos.url}/echo`)).status).toBe(200);
    expect(pool.statistics[dead]).toMatchObject({ failures: 3, requests: 3, state: 'benched' });
  });

  it('a proxy that never answers CONNECT fails within the connect timeout', async () => {
    await using hole = await startBlackhole();
    const { session, pool } = proxiedSession(
      [hole.url, fleet.a],
      { maxFailures: 1 },
      { timeout: { connect: 300 } },
    );
    await using _ = session;
    const response = await session.get(`${chaos.url}/echo`);
    expect(response.status).toBe(200);
    expect(pool.statistics[hole.url]?.lastProblem).toMatch(/did not answer CONNECT/);
  });

  it('when every proxy fails, the retry policy takes over with its backoff', async () => {
    const dead1 = `http://127.0.0.1:${await closedPort()}`;
    const dead2 = `http://127.0.0.1:${await closedPort()}`;
    const { session, clock } = proxiedSession([dead1, dead2], { maxFailures: 100 });
    await using _ = session;
    const error = await rejectionOf(session.get(`${chaos.url}/echo`));
    expect(error).toBeInstanceOf(MaxRetryError);
    const history = (error as MaxRetryError).history;
    expect(history).toHaveLength(4); // total 3: 4 policy attempts, each after a rotation
    for (const entry of history) expect(entry.error).toBeInstanceOf(ProxyError);
    expect((error as MaxRetryError).attempts).toBe(8);
    expect(clock.sleeps).toEqual([0, 100, 200]);
  });

  it('a target that refuses connections is not the proxies’ fault twice over: the policy retries it', async () => {
    const target = `http://127.0.0.1:${await closedPort()}/nothing`;
    const { session } = proxiedSession([fleet.a], {}, { retry: { total: 1 } });
    await using _ = session;
    const error = await rejectionOf(session.get(target));
    expect(error).toBeInstanceOf(MaxRetryError);
    expect((error as MaxRetryError).reason).toMatchObject({ name: 'ProxyError', proxyStatus: 500 });
  });
});

needs('tinyproxy')('observability', () => {
  it('hooks, logs and diagnostics show each rotation and the proxy of every attempt', async () => {
    const url = `${chaos.url}/ban?after=1&window=600000`;
    await flag(fleet.a, url, 2);
    const logger = recordingLogger();
    const requests: (string | undefined)[] = [];
    const retries: RetryEvent[] = [];
    const published: unknown[] = [];
    const listener = (message: unknown): void => void published.push(message);
    subscribe('dogged:retry', listener);
    try {
      const { session } = proxiedSession(
        [fleet.a, fleet.b],
        {},
        {
          logger,
          hooks: {
            beforeRequest: (request: BeforeRequestContext) => void requests.push(request.proxy),
            beforeRetry: (event) => void retries.push(event),
          },
        },
      );
      await using _ = session;
      expect((await session.get(url)).status).toBe(200);
    } finally {
      unsubscribe('dogged:retry', listener);
    }
    expect(requests).toEqual([fleet.a.publicUrl, fleet.b.publicUrl]);
    expect(retries).toEqual([
      expect.objectContaining({
        attempt: 1,
        maxAttempts: 5,
        delayMs: 0,
        delaySource: 'rotation',
        status: 403,
        proxy: fleet.a.publicUrl,
      }),
    ]);
    expect(published).toEqual(retries);
    const warns = logger.lines.filter((l) => l.level === 'warn').map((l) => l.message);
    expect(warns).toEqual([
      `GET ${url} attempt 1/5 via proxy ${fleet.a.publicUrl} failed: 403 Forbidden; rotating to another proxy at once`,
    ]);
    expect(logger.lines.filter((l) => l.level === 'debug').map((l) => l.message)).toEqual([
      `GET ${url} answered 200 OK (attempt 2 via proxy ${fleet.b.publicUrl})`,
    ]);
  });

  it('error hooks see a proxy failure with the proxy that failed', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const seen: { error: unknown; proxy: string | undefined }[] = [];
    const { session } = proxiedSession(
      [dead, fleet.a],
      {},
      { hooks: { error: (error, request) => void seen.push({ error, proxy: request.proxy }) } },
    );
    await using _ = session;
    await session.get(`${chaos.url}/echo`);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.proxy).toBe(dead);
    expect(seen[0]?.error).toBeInstanceOf(ProxyError);
    expect(seen[0]?.error).toMatchObject({ proxy: dead, phase: 'connect', retriable: true });
  });
});
