/**
 * `dogged worker --metrics 127.0.0.1:0`: the worker's /metrics holds the job's lines by state,
 * its queue depth, and the requests it sent. Redis database 2, a private PostgreSQL schema.
 */
import { get } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChaosServer, startChaosServer } from '../../../src/testing/index.js';
import { runCli, tempDir, waitFor, writeLines } from '../batch-support.js';
import {
  jobTarget,
  type Sandbox,
  sandbox,
  startWorker,
  stopWorker,
} from './distributed-support.js';

let chaos: ChaosServer;
let box: Sandbox;
let dir: string;
let cleanup: () => void;
beforeAll(async () => {
  chaos = await startChaosServer();
  box = await sandbox(2);
  ({ dir, cleanup } = tempDir('dogged-worker-metrics-'));
});
afterAll(async () => {
  await chaos.close();
  await box.cleanup();
  cleanup();
});

function scrape(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

function sample(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
  }
  return 0;
}

describe('dogged worker --metrics', () => {
  it('serves the job’s lines by state, queue depth and the requests it sent', async () => {
    const urls = writeLines(dir, 'urls.txt', [
      ...[1, 2, 3, 4].map((i) => `${chaos.url}/bytes/16?key=w${i}`),
      `${chaos.url}/flaky/wm1?fail=1&status=503`,
      `${chaos.url}/status/404?key=w5`,
    ]);
    const enqueued = await runCli([
      'batch',
      urls,
      ...jobTarget(box, 'metrics'),
      '--enqueue-only',
      '--backoff',
      '5ms',
    ]);
    expect(enqueued.code).toBe(0);
    const worker = startWorker(box, 'metrics', ['--metrics', '127.0.0.1:0']);
    try {
      await waitFor(
        () => /metrics at http:\/\/127\.0\.0\.1:\d+\/metrics/.test(worker.stderr()),
        'the metrics address',
        30_000,
      );
      const url = /metrics at (\S+)/.exec(worker.stderr())?.[1] as string;
      let text = '';
      for (;;) {
        text = await scrape(url);
        const done = sample(text, 'dogged_lines', { job: 'metrics', state: 'done' });
        const failed = sample(text, 'dogged_lines', { job: 'metrics', state: 'failed' });
        if (done + failed === 6) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const host = new URL(chaos.url).host;
      expect(sample(text, 'dogged_lines', { job: 'metrics', state: 'done' })).toBe(5);
      expect(sample(text, 'dogged_lines', { job: 'metrics', state: 'failed' })).toBe(1);
      expect(sample(text, 'dogged_lines_total', { job: 'metrics' })).toBe(6);
      expect(sample(text, 'dogged_queue_depth', { job: 'metrics' })).toBe(0);
      expect(sample(text, 'dogged_requests_total', { host, class: '2xx' })).toBe(5);
      expect(sample(text, 'dogged_requests_total', { host, class: '5xx' })).toBe(1);
      expect(sample(text, 'dogged_requests_total', { host, class: '4xx' })).toBe(1);
      expect(sample(text, 'dogged_retries_total', { host, class: '5xx', source: 'backoff' })).toBe(
        1,
      );
    } finally {
      expect(await stopWorker(worker)).toBe(0);
    }
  }, 90_000);

  it('shows a host paused fleet-wide and the lines held back by its cooldown', async () => {
    const urls = writeLines(
      dir,
      'throttled.txt',
      Array.from(
        { length: 12 },
        (_, i) => `${chaos.url}/flaky/wt${i}?fail=100&status=429&retry-after=30`,
      ),
    );
    const enqueued = await runCli([
      'batch',
      urls,
      ...jobTarget(box, 'throttled'),
      '--enqueue-only',
    ]);
    expect(enqueued.code).toBe(0);
    const worker = startWorker(box, 'throttled', ['--metrics', '127.0.0.1:0']);
    try {
      await waitFor(
        () => /metrics at http:\/\/127\.0\.0\.1:\d+\/metrics/.test(worker.stderr()),
        'the metrics address',
        30_000,
      );
      const url = /metrics at (\S+)/.exec(worker.stderr())?.[1] as string;
      const host = new URL(chaos.url).host;
      let text = '';
      const deadline = Date.now() + 30_000;
      while (
        sample(text, 'dogged_held_total', { host, reason: 'cooldown' }) === 0 ||
        sample(text, 'dogged_host_paused_seconds', { host }) === 0
      ) {
        if (Date.now() > deadline) throw new Error(`no cooldown in:\n${text}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        text = await scrape(url);
      }
      expect(sample(text, 'dogged_host_paused_seconds', { host })).toBeGreaterThan(20);
      expect(sample(text, 'dogged_host_paused_seconds', { host })).toBeLessThanOrEqual(30);
      expect(sample(text, 'dogged_hosts', { state: 'paused' })).toBe(1);
      expect(sample(text, 'dogged_host_down', { host })).toBe(0);
      // Lines held by the pause were not sent.
      expect(sample(text, 'dogged_requests_total', { host, class: '4xx' })).toBeLessThanOrEqual(4);
    } finally {
      expect(await stopWorker(worker)).toBe(0);
    }
  }, 90_000);
});
