import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DoggedResponse,
  HTTPStatusError,
  MaxRetryError,
  type Session,
} from '../../src/http/index.js';
import { type ChaosServer, type FakeClock, startChaosServer } from '../../src/testing/index.js';
import { arrivals, fastSession, rejectionOf } from './session-support.js';

let chaos: ChaosServer;
let session: Session;
let clock: FakeClock;

beforeAll(async () => {
  chaos = await startChaosServer();
  // The status table and its backoff, without the default adaptive pacing (which a 429 would
  // start for the rest of the file: tested in storm.test.ts).
  ({ session, clock } = fastSession({ retry: { backoffFactor: 100 }, rateLimit: false }));
});
afterAll(async () => {
  await session.close();
  await chaos.close();
});
beforeEach(() => chaos.reset());

describe('the status table: what is retried', () => {
  it.each([429, 500, 502, 503, 504])(
    'retries %i with backoff, then gives up with MaxRetryError after 4 attempts',
    async (code) => {
      const sleepsBefore = clock.sleeps.length;
      const error = await rejectionOf(session.get(`${chaos.url}/status/${code}`));
      expect(error).toBeInstanceOf(MaxRetryError);
      const maxRetry = error as MaxRetryError;
      expect(maxRetry.attempts).toBe(4);
      // Like urllib3, the history records every failed attempt, the last one included.
      expect(maxRetry.history.map((h) => h.status)).toEqual([code, code, code, code]);
      expect((maxRetry.reason as DoggedResponse).status).toBe(code);
      expect(arrivals(chaos, `/status/${code}`)).toHaveLength(4);
      // urllib3's formula with backoffFactor 100: the first retry at once, then 200, 400 ms.
      expect(clock.sleeps.slice(sleepsBefore)).toEqual([0, 200, 400]);
    },
  );

  it.each([400, 401, 403, 404])(
    'never retries %i: the response comes back after one attempt',
    async (code) => {
      const sleepsBefore = clock.sleeps.length;
      const response = await session.get(`${chaos.url}/status/${code}`);
      expect(response.status).toBe(code);
      expect(response.ok).toBe(false);
      expect(response.attempts).toBe(1);
      expect(response.history).toEqual([]);
      expect(await response.json()).toEqual({ status: code, message: expect.any(String) });
      expect(arrivals(chaos, `/status/${code}`)).toHaveLength(1);
      expect(clock.sleeps.length).toBe(sleepsBefore);
    },
  );

  it('does not retry a 503 for a POST (not in allowedMethods)', async () => {
    const response = await session.post(`${chaos.url}/status/503`, { body: 'x' });
    expect(response.status).toBe(503);
    expect(response.attempts).toBe(1);
    expect(arrivals(chaos)).toHaveLength(1);
  });

  it('retries a 503 for PUT and DELETE (idempotent methods)', async () => {
    await expect(session.put(`${chaos.url}/status/503`, { body: 'x' })).rejects.toBeInstanceOf(
      MaxRetryError,
    );
    await expect(session.delete(`${chaos.url}/status/503`)).rejects.toBeInstanceOf(MaxRetryError);
    expect(arrivals(chaos).map((a) => a.method)).toEqual([
      ...Array(4).fill('PUT'),
      ...Array(4).fill('DELETE'),
    ]);
  });

  it('returns the first success after retried failures, with attempts and history', async () => {
    const response = await session.get(`${chaos.url}/flaky/s1?fail=2&status=502`);
    expect(response.status).toBe(200);
    expect(response.ok).toBe(true);
    expect(response.attempts).toBe(3);
    expect(response.history.map((h) => h.status)).toEqual([502, 502]);
    expect(await response.json()).toEqual({ key: 's1', attempt: 3, failed: false });
  });

  it('sends no request at all more than 1 + total times', async () => {
    await expect(
      session.get(`${chaos.url}/status/500`, { retry: { total: 1 } }),
    ).rejects.toMatchObject({ name: 'MaxRetryError', attempts: 2 });
    expect(arrivals(chaos)).toHaveLength(2);
  });
});

describe('raiseOnStatus, throwOnStatus and raiseForStatus', () => {
  it('with raiseOnStatus: false returns the last response once status retries run out', async () => {
    const response = await session.get(`${chaos.url}/status/503`, {
      retry: { backoffFactor: 100, raiseOnStatus: false },
    });
    expect(response.status).toBe(503);
    expect(response.attempts).toBe(4);
    expect(response.history).toHaveLength(3);
    expect(await response.json()).toEqual({ status: 503, message: 'Service Unavailable' });
    expect(arrivals(chaos)).toHaveLength(4);
  });

  it('with retry: false returns a 503 as it is, after one attempt', async () => {
    const response = await session.get(`${chaos.url}/status/503`, { retry: false });
    expect(response.status).toBe(503);
    expect(response.attempts).toBe(1);
    expect(arrivals(chaos)).toHaveLength(1);
  });

  it('throwOnStatus throws HTTPStatusError whose response body is still readable', async () => {
    const error = await rejectionOf(
      session.get(`${chaos.url}/status/404`, { throwOnStatus: true }),
    );
    expect(error).toBeInstanceOf(HTTPStatusError);
    const statusError = error as HTTPStatusError;
    expect(statusError.status).toBe(404);
    expect(statusError.retriable).toBe(false);
    expect(statusError.attempts).toBe(1);
    expect(statusError.method).toBe('GET');
    expect(statusError.url).toBe(`${chaos.url}/status/404`);
    expect(statusError.response).toBeInstanceOf(DoggedResponse);
    const response = statusError.response as DoggedResponse;
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ status: 404, message: 'Not Found' });
  });

  it('throwOnStatus does not throw for a success', async () => {
    const response = await session.get(`${chaos.url}/status/200`, { throwOnStatus: true });
    expect(response.status).toBe(200);
  });

  it('keeps the body of the final response of a give-up readable on MaxRetryError', async () => {
    const error = (await rejectionOf(session.get(`${chaos.url}/status/502`))) as MaxRetryError;
    expect(error.response).toBe(error.reason);
    expect(await (error.response as DoggedResponse).json()).toEqual({
      status: 502,
      message: 'Bad Gateway',
    });
  });

  it('raiseForStatus() throws HTTPStatusError for 4xx/5xx and returns the response otherwise', async () => {
    const notFound = await session.get(`${chaos.url}/status/404`);
    expect(() => notFound.raiseForStatus()).toThrow(HTTPStatusError);
    const ok = await session.get(`${chaos.url}/status/200`);
    expect(ok.raiseForStatus()).toBe(ok);
    await notFound.text();
    await ok.text();
  });
});
