import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { InputChangedError, JournalLockedError, runBatch, seededRandom } from '../../src/index.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { journalRecords, tempDir } from './batch-support.js';

let chaos: ChaosServer;
let dir: string;
let cleanup: () => void;
beforeAll(async () => {
  chaos = await startChaosServer();
});
afterAll(async () => {
  await chaos.close();
});
beforeEach(() => {
  chaos.reset();
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

const fast = { retry: { backoff: () => 5 }, random: seededRandom(1) };

const records = journalRecords;

describe('runBatch', () => {
  it('fetches every line once: retriable failures end done, 404s fail without a retry', async () => {
    const u = chaos.url;
    const input = [
      `${u}/bytes/32?seed=1`,
      `${u}/flaky/a?fail=2&status=503`,
      `${u}/flaky/b?fail=1&mode=reset`,
      `${u}/flaky/c?fail=1&mode=truncate`,
      `${u}/status/404`,
      'not a url',
      '',
      '# comment',
      `{"url":"${u}/echo","method":"POST","json":{"a":1},"key":"post-1"}`,
    ];
    const db = join(dir, 'run.sqlite');
    const result = await runBatch({ db, input, ...fast });
    expect(result.end).toBe('complete');
    expect(result.counts).toMatchObject({ done: 5, failed: 1, invalid: 1, pending: 0 });
    const byLine = new Map(records(db).map((r) => [r.line, r]));
    expect([...byLine.keys()]).toEqual([1, 2, 3, 4, 5, 6, 9]);
    expect(byLine.get(2)).toMatchObject({ state: 'done', status: 200, attempts: 3 });
    expect(byLine.get(2)?.history.map((h) => h.status)).toEqual([503, 503]);
    expect(byLine.get(3)?.history[0]?.code).toBe('ERR_DOGGED_CONNECTION_RESET');
    expect(byLine.get(4)?.history[0]?.code).toBe('ERR_DOGGED_INCOMPLETE_BODY');
    expect(byLine.get(5)).toMatchObject({ state: 'failed', status: 404, attempts: 1 });
    expect(byLine.get(6)).toMatchObject({ state: 'invalid', raw: 'not a url' });
    expect(byLine.get(9)).toMatchObject({ state: 'done', key: 'post-1', method: 'POST' });
    expect(JSON.parse(byLine.get(9)?.body ?? '{}').json).toEqual({ a: 1 });
    expect(result.summary.failures).toEqual([
      { reason: 'http-status', status: 404, errorCode: null, count: 1 },
    ]);
  });

  it('reschedules a Retry-After longer than the policy would sleep, and honours it', async () => {
    const db = join(dir, 'run.sqlite');
    const result = await runBatch({
      db,
      input: [`${chaos.url}/flaky/ra?fail=1&status=503&retry-after=1`],
      retry: { maxRetryAfter: 100 },
    });
    expect(result.end).toBe('complete');
    const [record] = records(db);
    expect(record?.history).toMatchObject([{ status: 503, delayMs: 1000, source: 'retry-after' }]);
    const arrivals = chaos.log().filter((a) => a.key === 'ra');
    expect(arrivals).toHaveLength(2);
    expect((arrivals[1]?.timeMs ?? 0) - (arrivals[0]?.timeMs ?? 0)).toBeGreaterThanOrEqual(990);
  });

  it('stops with "deferred" instead of waiting an hour, and keeps the line scheduled', async () => {
    const db = join(dir, 'run.sqlite');
    const result = await runBatch({
      db,
      input: [`${chaos.url}/status/503?retry-after=3600`, `${chaos.url}/bytes/8`],
      maxWait: 60_000,
    });
    expect(result.end).toBe('deferred');
    expect(result.counts).toMatchObject({ done: 1, pending: 1, retrying: 1 });
    expect((result.nextDueAt ?? 0) - Date.now()).toBeGreaterThan(3_500_000);
  });

  it('resumes: a second run adds appended lines and fetches nothing twice', async () => {
    const db = join(dir, 'run.sqlite');
    const first = [`${chaos.url}/bytes/8?key=one`, `${chaos.url}/bytes/8?key=two`];
    await runBatch({ db, input: first });
    const second = await runBatch({ db, input: [...first, `${chaos.url}/bytes/8?key=three`] });
    expect(second).toMatchObject({ end: 'complete', attempts: 1 });
    expect(second.counts.done).toBe(3);
    expect(chaos.log().map((a) => a.key)).toEqual(['one', 'two', 'three']);
  });

  it('refuses an input whose recorded lines changed', async () => {
    const db = join(dir, 'run.sqlite');
    await runBatch({ db, input: [`${chaos.url}/bytes/8?key=a`] });
    await expect(runBatch({ db, input: [`${chaos.url}/bytes/8?key=b`] })).rejects.toThrow(
      InputChangedError,
    );
  });

  it('refuses a second runner on the same journal', async () => {
    const db = join(dir, 'run.sqlite');
    const slow = runBatch({ db, input: [`${chaos.url}/delay/300`] });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await expect(runBatch({ db, input: [] })).rejects.toThrow(JournalLockedError);
    expect((await slow).end).toBe('complete');
  });

  it('stops gracefully on abort; the lines left are pending and a resume finishes them', async () => {
    const db = join(dir, 'run.sqlite');
    const input = Array.from({ length: 40 }, (_, i) => `${chaos.url}/delay/40?key=d${i}`);
    const controller = new AbortController();
    const stopped = await runBatch({
      db,
      input,
      concurrency: 4,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.finished >= 8) controller.abort();
      },
      progressIntervalMs: 5,
    });
    expect(stopped.end).toBe('interrupted');
    expect(stopped.counts.in_flight).toBe(0);
    expect(stopped.counts.done).toBeGreaterThanOrEqual(8);
    expect(stopped.counts.pending).toBeGreaterThan(0);
    const resumed = await runBatch({ db, input });
    expect(resumed.end).toBe('complete');
    expect(resumed.counts.done).toBe(40);
    expect(resumed.attempts).toBe(40 - stopped.counts.done);
  });

  it('cuts off only its own attempts: runs beside a stopped one, or after it, are not cut', async () => {
    const u = chaos.url;
    const lines = (tag: string, ms: number) =>
      Array.from({ length: 6 }, (_, i) => `${u}/delay/${ms}?key=${tag}${i}`);
    const controller = new AbortController();
    const stopped = runBatch({
      db: join(dir, 'stopped.sqlite'),
      input: lines('a', 2000),
      concurrency: 6,
      graceMs: 0,
      signal: controller.signal,
    });
    const beside = runBatch({ db: join(dir, 'beside.sqlite'), input: lines('b', 300) });
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort(); // its attempts in flight are cut off at once, the other run's are not
    const a = await stopped;
    expect(a.end).toBe('interrupted');
    expect(a.counts).toMatchObject({ done: 0, pending: 6 });
    expect((await beside).counts.done).toBe(6);
    // Two runs at once after them: between them, they take over whatever both runs left.
    const after = await Promise.all(
      ['c', 'd'].map((tag) =>
        runBatch({ db: join(dir, `after-${tag}.sqlite`), input: lines(tag, 20) }),
      ),
    );
    for (const run of after) expect(run).toMatchObject({ end: 'complete', attempts: 6 });
  });

  it('writes bodies to files with bodies: { dir }', async () => {
    const db = join(dir, 'run.sqlite');
    const out = join(dir, 'bodies');
    await runBatch({ db, input: [`${chaos.url}/bytes/100?seed=3`], bodies: { dir: out } });
    const [record] = records(db);
    expect(record).toMatchObject({ bodySize: 100, bodyPath: join(out, '1.body'), body: null });
    expect(existsSync(join(out, '1.body'))).toBe(true);
    expect(readFileSync(join(out, '1.body'))).toHaveLength(100);
  });

  it('keeps within the per-host concurrency and the rate', async () => {
    let active = 0;
    let peak = 0;
    const starts: number[] = [];
    const server: Server = createServer((req, res) => {
      active++;
      peak = Math.max(peak, active);
      starts.push(performance.now());
      setTimeout(() => {
        active--;
        res.end('ok');
      }, 20);
      req.resume();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const input = Array.from({ length: 24 }, (_, i) => `http://127.0.0.1:${port}/${i}`);
      await runBatch({ db: join(dir, 'a.sqlite'), input, concurrency: 16, perHost: 3 });
      expect(peak).toBe(3);
      starts.length = 0;
      await runBatch({ db: join(dir, 'b.sqlite'), input: input.slice(0, 6), rate: 50 });
      // 50 per second: six starts 20 ms apart, 100 ms in all. A start that fired late keeps its
      // slot (up to one interval behind it), so a late first start shortens the span by up to
      // 20 ms; arrivals add a few ms of jitter. Unpaced, six starts would take a few ms.
      const span = (starts[starts.length - 1] as number) - (starts[0] as number);
      expect(starts).toHaveLength(6);
      expect(span).toBeGreaterThanOrEqual(100 - 20 - 5);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
