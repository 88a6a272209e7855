/**
 * `/metrics` (Prometheus) of a batch: scraped while a line is held in flight and after the run,
 * against the chaos server; the numbers are the batch's.
 */
import { once } from 'node:events';
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseListen, startMetricsServer } from '../../src/batch/metrics.js';
import type { BatchOptions } from '../../src/batch/options.js';
import { runBatch } from '../../src/batch/runner.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { startCli, tempDir, waitFor, writeLines } from './batch-support.js';

let chaos: ChaosServer;
let dir: string;
let cleanup: () => void;
/** A server whose `/hold` answers only once `release()` is called. */
let holder: Server;
let holderUrl: string;
let release: () => void = () => {};
let held = 0;

beforeAll(async () => {
  chaos = await startChaosServer();
  holder = createServer((req, res) => {
    held++;
    const answer = (): void => {
      res.end('released');
    };
    const previous = release;
    release = () => {
      previous();
      answer();
    };
    req.resume();
  });
  holder.listen(0, '127.0.0.1');
  await once(holder, 'listening');
  holderUrl = `http://127.0.0.1:${(holder.address() as AddressInfo).port}`;
});
afterAll(async () => {
  release();
  holder.closeAllConnections();
  holder.close();
  await chaos.close();
});
beforeEach(() => {
  ({ dir, cleanup } = tempDir('dogged-metrics-'));
  held = 0;
  release = () => {};
});
afterEach(() => cleanup());

/** GET with node:http (not fetch: undici's own requests would count in the metrics). */
function scrape(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }),
      );
    }).on('error', reject);
  });
}

/** The value of one sample (`name{labels}`), labels in any order; 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
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

/** The sum of a metric's samples whose labels include `labels`. */
function total(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(match[3]);
  }
  return sum;
}

const chaosHost = (): string => new URL(chaos.url).host;

describe('startMetricsServer', () => {
  it('serves lines by state, requests by host and class, durations, in flight and retries', async () => {
    const metrics = await startMetricsServer({ listen: '127.0.0.1:0', processMetrics: false });
    const urls = [
      ...[0, 1, 2, 3].map((i) => `${chaos.url}/bytes/16?key=m${i}`),
      `${chaos.url}/flaky/mb0?fail=1&status=503`,
      `${chaos.url}/flaky/mb1?fail=1&status=503`,
      `${chaos.url}/flaky/mr0?fail=1&status=503&retry-after=0`,
      `${chaos.url}/status/404?key=m0`,
      `${chaos.url}/status/404?key=m1`,
      `${holderUrl}/hold`,
    ];
    try {
      expect(metrics.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const run = runBatch(
        metrics.observeBatch({
          input: writeLines(dir, 'urls.txt', urls),
          db: join(dir, 'run.sqlite'),
          retry: { total: 2, backoffFactor: 5 },
          progressIntervalMs: 50,
        }),
      );
      // During: every line but the held one finished, the held one in flight.
      let during = '';
      await waitFor(() => held === 1, 'the held request');
      for (;;) {
        during = (await scrape(metrics.url)).body;
        if (
          sample(during, 'dogged_lines', { state: 'done' }) +
            sample(during, 'dogged_lines', { state: 'failed' }) ===
          9
        )
          break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(sample(during, 'dogged_lines', { state: 'done' })).toBe(7);
      expect(sample(during, 'dogged_lines', { state: 'failed' })).toBe(2);
      expect(sample(during, 'dogged_lines', { state: 'in_flight' })).toBe(1);
      expect(sample(during, 'dogged_lines_total')).toBe(10);
      expect(sample(during, 'dogged_queue_depth')).toBe(0);
      expect(sample(during, 'dogged_requests_in_flight')).toBe(1);
      release();
      const result = await run;
      expect(result.counts).toMatchObject({ done: 8, failed: 2 });

      const after = await scrape(metrics.url);
      expect(after.status).toBe(200);
      expect(after.type).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = after.body;
      const host = chaosHost();
      expect(sample(text, 'dogged_requests_total', { host, class: '2xx' })).toBe(7);
      expect(sample(text, 'dogged_requests_total', { host, class: '5xx' })).toBe(3);
      expect(sample(text, 'dogged_requests_total', { host, class: '4xx' })).toBe(2);
      expect(
        sample(text, 'dogged_requests_total', { host: new URL(holderUrl).host, class: '2xx' }),
      ).toBe(1);
      expect(sample(text, 'dogged_request_duration_seconds_count', { host })).toBe(12);
      expect(sample(text, 'dogged_requests_in_flight')).toBe(0);
      expect(sample(text, 'dogged_retries_total', { host, class: '5xx', source: 'backoff' })).toBe(
        2,
      );
      expect(
        sample(text, 'dogged_retries_total', { host, class: '5xx', source: 'retry-after' }),
      ).toBe(1);
      expect(sample(text, 'dogged_lines', { state: 'done' })).toBe(8);
      expect(total(text, 'dogged_lines', { state: 'pending' })).toBe(0);
      expect(text).toMatch(/# TYPE dogged_request_duration_seconds histogram/);
      expect((await scrape(metrics.url.replace('/metrics', '/'))).status).toBe(404);
    } finally {
      release();
      await metrics.close();
    }
  });

  it('shows each host paused, paced and down (an outage: the batch breaker half open) while it is', async () => {
    // One host throttles with a long Retry-After; another refuses every connection.
    const throttler = createServer((_req, res) => {
      res.writeHead(429, { 'retry-after': '30' }).end('slow down');
    });
    throttler.listen(0, '127.0.0.1');
    await once(throttler, 'listening');
    const throttleHost = `127.0.0.1:${(throttler.address() as AddressInfo).port}`;
    const gone = createServer();
    gone.listen(0, '127.0.0.1');
    await once(gone, 'listening');
    const deadHost = `127.0.0.1:${(gone.address() as AddressInfo).port}`;
    await new Promise<void>((resolve) => gone.close(() => resolve()));
    const metrics = await startMetricsServer({ listen: '127.0.0.1:0', processMetrics: false });
    const controller = new AbortController();
    try {
      const run = runBatch(
        metrics.observeBatch({
          input: [
            `http://${throttleHost}/a`,
            ...Array.from({ length: 30 }, (_, i) => `http://${deadHost}/x${i}`),
          ],
          db: join(dir, 'run.sqlite'),
          retry: { backoff: () => 5 },
          progressIntervalMs: 50,
          signal: controller.signal,
          graceMs: 0,
        }),
      );
      let text = '';
      const deadline = Date.now() + 15_000;
      while (
        sample(text, 'dogged_host_down', { host: deadHost }) !== 1 ||
        sample(text, 'dogged_host_paused_seconds', { host: throttleHost }) === 0
      ) {
        if (Date.now() > deadline) throw new Error(`no paused and down host in:\n${text}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
        text = (await scrape(metrics.url)).body;
      }
      const pausedFor = sample(text, 'dogged_host_paused_seconds', { host: throttleHost });
      expect(pausedFor).toBeGreaterThan(20);
      expect(pausedFor).toBeLessThanOrEqual(30);
      // The throttle also set the host's pace; the dead host never answered: not paced.
      expect(text).toMatch(
        new RegExp(`^dogged_host_rate\\{host="${throttleHost}"\\} [0-9.e-]+$`, 'm'),
      );
      expect(text).not.toContain(`dogged_host_rate{host="${deadHost}"}`);
      expect(sample(text, 'dogged_host_down', { host: throttleHost })).toBe(0);
      expect(sample(text, 'dogged_hosts', { state: 'down' })).toBe(1);
      expect(sample(text, 'dogged_hosts', { state: 'paced' })).toBe(1);
      expect(sample(text, 'dogged_hosts', { state: 'paused' })).toBeGreaterThanOrEqual(1);
      controller.abort();
      expect((await run).end).toBe('interrupted');
    } finally {
      controller.abort();
      await metrics.close();
      throttler.closeAllConnections();
      throttler.close();
    }
  });

  it('parses HOST:PORT and refuses anything else; maxHosts folds further hosts into "other"', async () => {
    expect(parseListen('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListen('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(() => parseListen('9464')).toThrow(TypeError);
    expect(() => parseListen('127.0.0.1:70000')).toThrow(TypeError);
    const metrics = await startMetricsServer({
      listen: '127.0.0.1:0',
      maxHosts: 0,
      processMetrics: false,
    });
    try {
      const options: BatchOptions = {
        input: writeLines(dir, 'one.txt', [`${chaos.url}/bytes/8?key=o1`]),
        db: join(dir, 'one.sqlite'),
      };
      await runBatch(metrics.observeBatch(options));
      const text = (await scrape(metrics.url)).body;
      expect(sample(text, 'dogged_requests_total', { host: 'other', class: '2xx' })).toBe(1);
      expect(text).not.toContain(chaosHost());
    } finally {
      await metrics.close();
    }
  });
});

describe('dogged batch --metrics', () => {
  it('prints the address of port 0 and serves /metrics while the batch runs', async () => {
    const urls = writeLines(dir, 'urls.txt', [
      `${chaos.url}/bytes/16?key=c1`,
      `${chaos.url}/flaky/cb1?fail=1&status=503`,
      `${holderUrl}/hold`,
    ]);
    const cli = startCli([
      'batch',
      urls,
      '--db',
      join(dir, 'run.sqlite'),
      '--backoff',
      '5ms',
      '--metrics',
      '127.0.0.1:0',
      '-q',
    ]);
    try {
      await waitFor(
        () => /metrics at http:\/\/127\.0\.0\.1:\d+\/metrics/.test(cli.stderr()),
        'the metrics address',
        30_000,
      );
      const url = /metrics at (\S+)/.exec(cli.stderr())?.[1] as string;
      await waitFor(() => held === 1, 'the held request', 30_000);
      let text = '';
      for (;;) {
        text = (await scrape(url)).body;
        if (sample(text, 'dogged_lines', { state: 'done' }) === 2) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(sample(text, 'dogged_lines', { state: 'in_flight' })).toBe(1);
      expect(sample(text, 'dogged_requests_total', { host: chaosHost(), class: '2xx' })).toBe(2);
      expect(
        sample(text, 'dogged_retries_total', {
          host: chaosHost(),
          class: '5xx',
          source: 'backoff',
        }),
      ).toBe(1);
      expect(text).toContain('process_resident_memory_bytes');
      release();
      expect(await cli.exited).toBe(0);
    } finally {
      release();
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    }
  }, 60_000);

  it('a bad --metrics is bad usage (exit 2)', async () => {
    const cli = startCli(['batch', 'x.txt', '--db', join(dir, 'x.sqlite'), '--metrics', 'nope']);
    expect(await cli.exited).toBe(2);
    expect(cli.stderr()).toMatch(/--metrics/);
  });
});
