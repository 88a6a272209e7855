import { execFile } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type BeforeRequestContext,
  ConnectError,
  ConnectionResetError,
  type DoggedResponse,
  type ErrorContext,
  type GiveUpEvent,
  MaxRetryError,
  type RetryEvent,
} from '../../src/http/index.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import {
  arrivals,
  closedPort,
  fastSession,
  recordingLogger,
  rejectionOf,
} from './session-support.js';

let chaos: ChaosServer;
beforeAll(async () => {
  chaos = await startChaosServer();
});
afterAll(() => chaos.close());
beforeEach(() => chaos.reset());

describe('hooks', () => {
  it('beforeRequest sees every attempt and may change its headers', async () => {
    const seen: { method: string; url: string; attempt: number }[] = [];
    const { session } = fastSession({
      hooks: {
        beforeRequest: (request: BeforeRequestContext) => {
          seen.push({ method: request.method, url: request.url, attempt: request.attempt });
          request.headers['x-attempt'] = String(request.attempt);
        },
      },
    });
    await using _ = session;
    const response = await session.get(`${chaos.url}/flaky/h1?fail=2`);
    expect(response.status).toBe(200);
    const url = `${chaos.url}/flaky/h1?fail=2`;
    expect(seen).toEqual([1, 2, 3].map((attempt) => ({ method: 'GET', url, attempt })));
    const echoed = await session.get(`${chaos.url}/echo`);
    expect(((await echoed.json()) as { headers: Record<string, string> }).headers).toMatchObject({
      'x-attempt': '1',
    });
  });

  it('beforeRetry gets attempt, maxAttempts, delay and cause (a status or an error)', async () => {
    const events: RetryEvent[] = [];
    const { session } = fastSession({
      retry: { backoffFactor: 100 },
      hooks: {
        beforeRetry: (event) => {
          events.push(event);
          return undefined;
        },
      },
    });
    await using _ = session;
    await session.get(`${chaos.url}/flaky/h2?fail=2&status=502`);
    expect(events).toEqual([
      expect.objectContaining({
        method: 'GET',
        url: `${chaos.url}/flaky/h2?fail=2&status=502`,
        attempt: 1,
        maxAttempts: 4,
        delayMs: 0,
        delaySource: 'backoff',
        status: 502,
        error: undefined,
      }),
      expect.objectContaining({ attempt: 2, delayMs: 200, status: 502 }),
    ]);
    expect(Object.isFrozen(events[0])).toBe(true);

    events.length = 0;
    await expect(session.get(`${chaos.url}/reset`, { retry: { total: 1 } })).rejects.toBeInstanceOf(
      MaxRetryError,
    );
    expect(events).toHaveLength(1);
    expect(events[0]?.error).toBeInstanceOf(ConnectionResetError);
    expect(events[0]?.status).toBeUndefined();
    expect(events[0]?.maxAttempts).toBe(2);
  });

  it('beforeRetry returning false vetoes a status retry: the response comes back as it is', async () => {
    const { session } = fastSession({ hooks: { beforeRetry: () => false } });
    await using _ = session;
    const response = await session.get(`${chaos.url}/status/503`);
    expect(response.status).toBe(503);
    expect(response.attempts).toBe(1);
    expect(await response.json()).toMatchObject({ status: 503 });
    expect(arrivals(chaos)).toHaveLength(1);
  });

  it('beforeRetry returning false vetoes an error retry: the error is thrown', async () => {
    let calls = 0;
    const { session } = fastSession({
      hooks: {
        beforeRetry: (event) => {
          calls++;
          return event.attempt < 2;
        },
      },
    });
    await using _ = session;
    const error = await rejectionOf(session.get(`${chaos.url}/reset`));
    expect(error).toBeInstanceOf(ConnectionResetError);
    expect((error as ConnectionResetError).attempts).toBe(2);
    expect(calls).toBe(2);
    expect(arrivals(chaos)).toHaveLength(2);
  });

  it('response sees every response head, retried ones included', async () => {
    const statuses: number[] = [];
    const { session } = fastSession({
      hooks: {
        response: (response: DoggedResponse) => {
          statuses.push(response.status);
        },
      },
    });
    await using _ = session;
    await session.get(`${chaos.url}/flaky/h3?fail=2&status=429`);
    expect(statuses).toEqual([429, 429, 200]);
  });

  it('error sees the classified error of every failed attempt, with the request', async () => {
    const calls: { error: unknown; request: ErrorContext }[] = [];
    const { session } = fastSession({
      retry: { total: 2, backoffFactor: 0 },
      hooks: {
        error: (error, request) => {
          calls.push({ error, request });
        },
      },
    });
    await using _ = session;
    const url = `http://127.0.0.1:${await closedPort()}/nothing`;
    await expect(session.post(url, { body: 'x' })).rejects.toBeInstanceOf(MaxRetryError);
    expect(calls.map((c) => c.request)).toEqual(
      [1, 2, 3].map((attempt) => ({ method: 'POST', url, attempt })),
    );
    for (const { error } of calls) expect(error).toBeInstanceOf(ConnectError);
  });

  it('hooks given to mount() run after the session hooks', async () => {
    const order: string[] = [];
    const { session } = fastSession({
      hooks: { beforeRequest: () => void order.push('session') },
    });
    await using _ = session;
    session.mount(`${chaos.url}/echo`, {
      hooks: { beforeRequest: () => void order.push('mount') },
    });
    await (await session.get(`${chaos.url}/echo`)).text();
    expect(order).toEqual(['session', 'mount']);
  });
});

describe('logging', () => {
  it('logs one warn line per retry: method, URL, attempt n/N, cause and delay', async () => {
    const logger = recordingLogger();
    const { session } = fastSession({ logger, retry: { backoffFactor: 100 } });
    await using _ = session;
    await expect(session.get(`${chaos.url}/status/503`)).rejects.toBeInstanceOf(MaxRetryError);
    const url = `${chaos.url}/status/503`;
    const retries = logger.lines.filter(
      (l) => l.level === 'warn' && l.message.includes('retrying'),
    );
    expect(retries.map((l) => l.message)).toEqual([
      `GET ${url} attempt 1/4 failed: 503 Service Unavailable; retrying in 0 ms (backoff)`,
      `GET ${url} attempt 2/4 failed: 503 Service Unavailable; retrying in 200 ms (backoff)`,
      `GET ${url} attempt 3/4 failed: 503 Service Unavailable; retrying in 400 ms (backoff)`,
    ]);
    const giveUps = logger.lines.filter((l) => l.message.includes('gave up'));
    expect(giveUps).toHaveLength(1);
    expect(giveUps[0]?.message).toMatch(new RegExp(`^GET ${url} gave up after 4 attempts: `));
  });

  it('names the error class and the Retry-After source in retry lines', async () => {
    const logger = recordingLogger();
    const { session } = fastSession({ logger });
    await using _ = session;
    await session.get(`${chaos.url}/flaky/l1?fail=1&mode=reset`);
    await session.get(`${chaos.url}/flaky/l2?fail=1&status=429&retry-after=2`);
    const warns = logger.lines.filter((l) => l.level === 'warn').map((l) => l.message);
    expect(warns[0]).toMatch(/attempt 1\/4 failed: ConnectionResetError .*; retrying in 0 ms/);
    expect(warns[1]).toMatch(
      /attempt 1\/4 failed: 429 Too Many Requests; retrying in 2 s \(retry-after\)$/,
    );
  });

  it('logs each final response at debug level', async () => {
    const logger = recordingLogger();
    const { session } = fastSession({ logger });
    await using _ = session;
    await (await session.get(`${chaos.url}/status/200`)).text();
    expect(logger.lines).toEqual([
      { level: 'debug', message: `GET ${chaos.url}/status/200 answered 200 OK (attempt 1)` },
    ]);
  });

  const fixture = fileURLToPath(new URL('../fixtures/session-debug-log.ts', import.meta.url));
  const runFixture = (dogLog: string | undefined) =>
    new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      const env = { ...process.env };
      delete env.DOGGED_LOG;
      if (dogLog !== undefined) env.DOGGED_LOG = dogLog;
      execFile(
        process.execPath,
        ['--import', 'tsx', fixture],
        { env, timeout: 20_000 },
        (error, stdout, stderr) => (error ? reject(error) : resolve({ stdout, stderr })),
      );
    });

  it('DOGGED_LOG=debug prints retry and request lines to stderr, without credentials', async () => {
    const { stdout, stderr } = await runFixture('debug');
    const port = /port (\d+) status 200 attempts 2/.exec(stdout)?.[1];
    expect(port).toBeDefined();
    const url = `http://***@127.0.0.1:${port}/flaky/log?fail=1`;
    expect(stderr.trim().split('\n')).toEqual([
      `dogged warn: GET ${url} attempt 1/4 failed: 503 Service Unavailable; retrying in 0 ms (backoff)`,
      `dogged debug: GET ${url} answered 200 OK (attempt 2)`,
    ]);
    expect(stderr).not.toContain('s3cret');
    expect(stderr).not.toContain('ada');
  });

  it('DOGGED_LOG=warn prints only the retry lines; unset prints nothing', async () => {
    const warn = await runFixture('warn');
    expect(warn.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^dogged warn: GET /)]);
    const silent = await runFixture(undefined);
    expect(silent.stderr).toBe('');
  });
});

describe('diagnostics_channel', () => {
  it('publishes dogged:retry before each retry and dogged:giveup when it fails for good', async () => {
    const retries: RetryEvent[] = [];
    const giveUps: GiveUpEvent[] = [];
    const onRetry = (message: unknown) => void retries.push(message as RetryEvent);
    const onGiveUp = (message: unknown) => void giveUps.push(message as GiveUpEvent);
    subscribe('dogged:retry', onRetry);
    subscribe('dogged:giveup', onGiveUp);
    try {
      const { session } = fastSession({ retry: { total: 2, backoffFactor: 100 } });
      await using _ = session;
      const url = `${chaos.url}/status/504`;
      const error = await rejectionOf(session.get(url));
      expect(
        retries.map((e) => [e.method, e.url, e.attempt, e.maxAttempts, e.status, e.delayMs]),
      ).toEqual([
        ['GET', url, 1, 3, 504, 0],
        ['GET', url, 2, 3, 504, 200],
      ]);
      expect(giveUps).toHaveLength(1);
      expect(giveUps[0]).toMatchObject({ method: 'GET', url, attempts: 3 });
      expect(giveUps[0]?.error).toBe(error);
    } finally {
      unsubscribe('dogged:retry', onRetry);
      unsubscribe('dogged:giveup', onGiveUp);
    }
  });

  it('publishes nothing for a request that succeeds at once', async () => {
    const events: unknown[] = [];
    const onAny = (message: unknown) => void events.push(message);
    subscribe('dogged:retry', onAny);
    subscribe('dogged:giveup', onAny);
    try {
      const { session } = fastSession();
      await using _ = session;
      await (await session.get(`${chaos.url}/status/200`)).text();
      expect(events).toEqual([]);
    } finally {
      unsubscribe('dogged:retry', onAny);
      unsubscribe('dogged:giveup', onAny);
    }
  });
});

describe('credentials in the URL', () => {
  const SECRET = 's3cret-pw';
  const withCredentials = (url: string): string => {
    const parsed = new URL(url);
    parsed.username = 'ada';
    parsed.password = SECRET;
    return parsed.href;
  };
  const BASIC = Buffer.from(`ada:${SECRET}`).toString('base64');

  /** Everything a user could print: the error with its history, reason, response and causes. */
  const printable = (value: unknown): string => `${String(value)}\n${inspect(value, { depth: 8 })}`;

  it('never appear in errors, history, logs, hook arguments or diagnostics events', async () => {
    const logger = recordingLogger();
    const hookArgs: unknown[] = [];
    const channelEvents: unknown[] = [];
    const onEvent = (message: unknown) => void channelEvents.push(message);
    subscribe('dogged:retry', onEvent);
    subscribe('dogged:giveup', onEvent);
    try {
      const { session } = fastSession({
        logger,
        hooks: {
          beforeRetry: (event) => void hookArgs.push(event),
          error: (error, request) => void hookArgs.push(error, request),
          response: (response) => void hookArgs.push(response.url),
        },
      });
      await using _ = session;
      const statusError = await rejectionOf(
        session.get(withCredentials(`${chaos.url}/status/503`)),
      );
      expect(statusError).toBeInstanceOf(MaxRetryError);
      const maxRetry = statusError as MaxRetryError;
      // Credentials are shown as ***@ (they were there; what they are is not shown).
      const shown = (url: string): string => url.replace('http://', 'http://***@');
      expect(maxRetry.url).toBe(shown(`${chaos.url}/status/503`));
      expect(maxRetry.history.map((h) => h.url)).toEqual(
        Array(4).fill(shown(`${chaos.url}/status/503`)),
      );
      expect((maxRetry.response as DoggedResponse).url).toBe(shown(`${chaos.url}/status/503`));

      const resetError = await rejectionOf(session.get(withCredentials(`${chaos.url}/reset`)));
      const refused = await rejectionOf(
        session.post(withCredentials(`http://127.0.0.1:${await closedPort()}/x`), { body: 'x' }),
      );
      const cut = await session.get(withCredentials(`${chaos.url}/truncate`), { retry: false });
      const bodyError = await rejectionOf(cut.text());
      expect(bodyError).toMatchObject({
        name: 'IncompleteBodyError',
        url: shown(`${chaos.url}/truncate`),
      });
      const ok = await session.get(withCredentials(`${chaos.url}/flaky/c1?fail=1`));
      expect(ok.url).toBe(shown(`${chaos.url}/flaky/c1?fail=1`));
      await ok.text();

      for (const value of [
        statusError,
        resetError,
        refused,
        bodyError,
        ok.history,
        logger.lines,
        hookArgs,
        channelEvents,
      ]) {
        const text = printable(value);
        expect(text).not.toContain(SECRET);
        expect(text).not.toContain(BASIC);
      }
      expect(logger.lines.length).toBeGreaterThan(0);
      expect(channelEvents.length).toBeGreaterThan(0);
    } finally {
      unsubscribe('dogged:retry', onEvent);
      unsubscribe('dogged:giveup', onEvent);
    }
  });
});
