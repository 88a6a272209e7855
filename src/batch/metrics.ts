/**
 * Prometheus metrics of a batch or a worker (`--metrics HOST:PORT`): a `/metrics` endpoint in
 * the Prometheus text format, served by prom-client on a registry of its own.
 *
 * Where the numbers come from, without touching the request path when metrics are off:
 * - requests, their status class, duration and the requests in flight: undici's own
 *   `diagnostics_channel` events (`undici:request:create`, `:headers`, `:trailers`, `:error`),
 *   subscribed to only while metrics are served;
 * - lines by state and the queue depth: the batch's `onProgress` snapshots;
 * - retries: the batch's `onRetry` events;
 * - the hosts' state (paused, paced, down) and the lines a worker's hosts held back: dogged's own
 *   channels (`dogged:batch:hosts`, published with each progress report, and
 *   `dogged:batch:held`), subscribed to only while metrics are served.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { watchUndiciRequests } from '../http/undici-requests.js';
import {
  type HeldMessage,
  type HostSnapshot,
  type HostsMessage,
  heldChannel,
  hostsChannel,
} from './host-events.js';
import type { BatchProgress, BatchRetryEvent } from './progress-state.js';

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  /**
   * Where to listen: `HOST:PORT` (`[::1]:9464` for IPv6). Port 0 takes a free port: read the
   * actual one from {@link MetricsServer.url}.
   * @default '127.0.0.1:9464'
   * @example { listen: '0.0.0.0:9464' }
   */
  listen?: string;
  /**
   * Hosts that get a label of their own on the per-host metrics; requests to further hosts are
   * counted under `host="other"` (a crawl of a million hosts must not make a million series).
   * @default 200
   * @example { maxHosts: 1000 }
   */
  maxHosts?: number;
  /**
   * Also export Node's process metrics (`process_cpu_seconds_total`,
   * `process_resident_memory_bytes`, `nodejs_eventloop_lag_seconds`...).
   * @default true
   * @example { processMetrics: false }
   */
  processMetrics?: boolean;
}

/** Buckets of `dogged_request_duration_seconds`. */
export const DURATION_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** The states `dogged_lines` reports. */
const STATES = ['pending', 'in_flight', 'retrying', 'done', 'failed', 'invalid'] as const;

type ProgressCallback = (progress: BatchProgress) => void;

/** A running `/metrics` endpoint; see {@link startMetricsServer}. */
export interface MetricsServer {
  /** `http://HOST:PORT/metrics`, with the port actually taken. */
  readonly url: string;
  /** The registry it serves: add metrics of your own to it. */
  readonly registry: Registry;
  /**
   * The options of a batch (`runBatch`) with `onProgress` and `onRetry` that also feed the
   * metrics; the ones given still run (`onProgress` at its own `progressIntervalMs`).
   */
  observeBatch<T extends BatchHooks>(options: T, job?: string): T;
  /** The same for `runWorker` options (progress comes per job). */
  observeWorker<T extends WorkerHooks>(options: T): T;
  /** Stops serving and unsubscribes from undici's events. */
  close(): Promise<void>;
}

/** The hooks of `runBatch` options that metrics use. */
export interface BatchHooks {
  progressIntervalMs?: number;
  onProgress?: ProgressCallback;
  onRetry?: (event: BatchRetryEvent) => void;
}

/** The hooks of `runWorker` options that metrics use. */
export interface WorkerHooks {
  progressIntervalMs?: number;
  onProgress?: (job: string, progress: BatchProgress) => void;
  onRetry?: (event: BatchRetryEvent) => void;
}

/** `HOST:PORT` parsed; a TypeError for anything else. */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/]+)):(\d{1,5})$/.exec(text.trim());
  const port = Number(match?.[3]);
  if (!match || !Number.isInteger(port) || port > 65_535)
    throw new TypeError(
      `--metrics takes HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464 (port 0: any free port), got ${JSON.stringify(text.slice(0, 80))}`,
    );
  return { host: (match[1] ?? match[2]) as string, port };
}

/** `2xx`... from a status; `error` without one. */
function statusClass(status: number | undefined): string {
  return status === undefined || status < 100 || status > 599
    ? 'error'
    : `${Math.floor(status / 100)}xx`;
}

/** How often the metrics read progress, at most. */
const PROGRESS_MS = 1000;

/**
 * Serves the batch's metrics at `http://HOST:PORT/metrics` (Prometheus text format):
 *
 * - `dogged_lines{job,state}`: lines by state (pending, in_flight, retrying, done, failed,
 *   invalid), `dogged_lines_total{job}` all lines recorded;
 * - `dogged_queue_depth{job}`: lines waiting (pending, retries included) — fleet-wide for a
 *   distributed job;
 * - `dogged_requests_total{host,class}`: requests sent by this process by status class (`2xx`
 *   ... `5xx`, `error` for no response or a body cut short);
 * - `dogged_request_duration_seconds{host}`: a histogram, from the request's creation to its
 *   last byte;
 * - `dogged_requests_in_flight`;
 * - `dogged_retries_total{host,class,source}`: retries scheduled (source `backoff` or
 *   `retry-after`), throttles and outages included;
 * - `dogged_hosts{state}`: hosts paused (a Retry-After, a throttle), paced (a rate found from
 *   their 429s, or `--rate`) and down (an outage: probed one request at a time, the batch's
 *   circuit breaker half open), all hosts counted;
 * - `dogged_host_paused_seconds{host}`, `dogged_host_rate{host}` (requests per second it is
 *   paced at; absent when not paced), `dogged_host_down{host}` (1 in an outage);
 * - `dogged_held_total{host,reason}` (workers): lines held back by their host instead of
 *   starting, by reason: `cooldown` (paused fleet-wide), `busy` (its slots taken), `rate` (its
 *   pace), `budget` (the fleet's retry budget spent).
 *
 * @example
 * const metrics = await startMetricsServer({ listen: '127.0.0.1:9464' });
 * await runBatch(metrics.observeBatch({ input: 'urls.txt', db: 'run.sqlite' }));
 * await metrics.close();
 */
export async function startMetricsServer(
  options: MetricsServerOptions = {},
): Promise<MetricsServer> {
  const { host, port } = parseListen(options.listen ?? '127.0.0.1:9464');
  const maxHosts = options.maxHosts ?? 200;
  if (!Number.isInteger(maxHosts) || maxHosts < 0)
    throw new TypeError('maxHosts must be an integer >= 0');
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const lines = new Gauge({
    name: 'dogged_lines',
    help: 'Lines of the batch by state (retrying: pending lines that already had an attempt).',
    labelNames: ['job', 'state'],
    registers: [registry],
  });
  const linesTotal = new Gauge({
    name: 'dogged_lines_total',
    help: 'Lines recorded (grows while the input is read).',
    labelNames: ['job'],
    registers: [registry],
  });
  const queueDepth = new Gauge({
    name: 'dogged_queue_depth',
    help: 'Lines waiting to be fetched: pending, scheduled retries included.',
    labelNames: ['job'],
    registers: [registry],
  });
  const requests = new Counter({
    name: 'dogged_requests_total',
    help: 'Requests sent by this process, by host and status class (error: no response, or a body cut short).',
    labelNames: ['host', 'class'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'dogged_request_duration_seconds',
    help: 'Request duration, from its creation to its last byte (or its error), by host.',
    labelNames: ['host'],
    buckets: [...DURATION_BUCKETS],
    registers: [registry],
  });
  const inFlight = new Gauge({
    name: 'dogged_requests_in_flight',
    help: 'Requests of this process waiting for their response or body.',
    registers: [registry],
  });
  const retries = new Counter({
    name: 'dogged_retries_total',
    help: 'Retries scheduled by this process, by host, status class of the failed attempt and delay source.',
    labelNames: ['host', 'class', 'source'],
    registers: [registry],
  });

  const hostsByState = new Gauge({
    name: 'dogged_hosts',
    help: 'Hosts by state: paused (Retry-After, throttle), paced (a rate found from its 429s, or --rate), down (an outage: probed one request at a time).',
    labelNames: ['state'],
    registers: [registry],
  });
  const hostPaused = new Gauge({
    name: 'dogged_host_paused_seconds',
    help: 'How long the host stays paused (a Retry-After, a throttle, an outage probe).',
    labelNames: ['host'],
    registers: [registry],
  });
  const hostRate = new Gauge({
    name: 'dogged_host_rate',
    help: 'Request starts per second the host is paced at (absent: not paced).',
    labelNames: ['host'],
    registers: [registry],
  });
  const hostDown = new Gauge({
    name: 'dogged_host_down',
    help: '1 while the host is in an outage (20 failures in a row): one request at a time probes it.',
    labelNames: ['host'],
    registers: [registry],
  });
  const held = new Counter({
    name: 'dogged_held_total',
    help: 'Lines a worker held back instead of starting, by host and reason (cooldown, busy, rate, budget).',
    labelNames: ['host', 'reason'],
    registers: [registry],
  });

  const hostLabels = new Map<string, string>();
  const hostLabel = (hostPort: string): string => {
    const known = hostLabels.get(hostPort);
    if (known !== undefined) return known;
    const label = hostLabels.size < maxHosts ? hostPort.slice(0, 256) : 'other';
    if (hostLabels.size < maxHosts) hostLabels.set(hostPort, label);
    return label;
  };
  const originHosts = new Map<string, string>();
  const hostOfOrigin = (origin: unknown): string => {
    const text = String(origin);
    let hostPort = originHosts.get(text);
    if (hostPort === undefined) {
      try {
        const url = new URL(text);
        hostPort = `${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
      } catch {
        hostPort = 'unknown';
      }
      if (originHosts.size < 10_000) originHosts.set(text, hostPort);
    }
    return hostLabel(hostPort);
  };
  const hostOfUrl = (url: string): string => {
    try {
      const u = new URL(url);
      return hostLabel(`${u.hostname}:${u.port || (u.protocol === 'https:' ? '443' : '80')}`);
    } catch {
      return hostLabel('unknown');
    }
  };

  // Requests: undici's diagnostics channels, subscribed while serving.
  const stopWatching = watchUndiciRequests({
    started: () => inFlight.inc(),
    ended: ({ request, durationMs, status, error }) => {
      inFlight.dec();
      const host = hostOfOrigin((request as { origin?: unknown }).origin);
      requests.inc({ host, class: error !== undefined ? 'error' : statusClass(status) });
      duration.observe({ host }, durationMs / 1000);
    },
  });

  // Hosts: the last snapshot of each batch or job, merged (a worker may run several jobs).
  const snapshots = new Map<string, readonly HostSnapshot[]>();
  const recordHosts = (): void => {
    const merged = new Map<string, { paused: number; rate: number; down: boolean }>();
    for (const hosts of snapshots.values())
      for (const h of hosts) {
        const m = merged.get(h.host);
        const rate = h.ratePerSecond ?? Number.POSITIVE_INFINITY;
        if (!m) merged.set(h.host, { paused: h.pausedMs, rate, down: h.down });
        else {
          m.paused = Math.max(m.paused, h.pausedMs);
          m.rate = Math.min(m.rate, rate);
          m.down ||= h.down;
        }
      }
    let paused = 0;
    let paced = 0;
    let down = 0;
    hostPaused.reset();
    hostRate.reset();
    hostDown.reset();
    for (const [hostPort, m] of merged) {
      if (m.paused > 0) paused++;
      if (Number.isFinite(m.rate)) paced++;
      if (m.down) down++;
      const host = hostLabel(hostPort);
      // Hosts past maxHosts share the label "other": a gauge of one of them would be arbitrary.
      if (host === 'other') continue;
      hostPaused.set({ host }, m.paused / 1000);
      if (Number.isFinite(m.rate)) hostRate.set({ host }, m.rate);
      hostDown.set({ host }, m.down ? 1 : 0);
    }
    hostsByState.set({ state: 'paused' }, paused);
    hostsByState.set({ state: 'paced' }, paced);
    hostsByState.set({ state: 'down' }, down);
  };
  const onHosts = (message: unknown): void => {
    const { job, hosts } = message as HostsMessage;
    snapshots.set(job ?? '', hosts);
    recordHosts();
  };
  const onHeld = (message: unknown): void => {
    const m = message as HeldMessage;
    held.inc({ host: hostLabel(m.host), reason: m.reason });
  };
  hostsChannel.subscribe(onHosts);
  heldChannel.subscribe(onHeld);
  const stopHosts = (): void => {
    hostsChannel.unsubscribe(onHosts);
    heldChannel.unsubscribe(onHeld);
  };

  const recordProgress = (job: string | undefined, p: BatchProgress): void => {
    const labels = job === undefined ? {} : { job };
    const values: Record<(typeof STATES)[number], number> = {
      pending: p.pending - p.retrying,
      in_flight: p.inFlight,
      retrying: p.retrying,
      done: p.done,
      failed: p.failed,
      invalid: p.invalid,
    };
    for (const state of STATES) lines.set({ ...labels, state }, values[state]);
    linesTotal.set(labels, p.total);
    queueDepth.set(labels, p.pending);
  };
  const recordRetry = (e: BatchRetryEvent): void => {
    retries.inc({ host: hostOfUrl(e.url), class: statusClass(e.status), source: e.delaySource });
  };
  /** The caller's callback, called at its own interval when it is longer than ours. */
  const throttled = <A extends unknown[]>(
    fn: ((...args: A) => void) | undefined,
    everyMs: number | undefined,
  ): ((...args: A) => void) | undefined => {
    if (!fn || everyMs === undefined || everyMs <= PROGRESS_MS) return fn;
    let last = Number.NEGATIVE_INFINITY;
    return (...args: A) => {
      const now = performance.now();
      if (now - last < everyMs - 5) return;
      last = now;
      fn(...args);
    };
  };
  const interval = (ms: number | undefined): number =>
    ms === undefined ? PROGRESS_MS : Math.min(ms, PROGRESS_MS);

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('see /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (error: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(error)}\n`);
      },
    );
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    stopWatching();
    stopHosts();
    throw error;
  }
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closed = false;
  return {
    url: `http://${shownHost}:${address.port}/metrics`,
    registry,
    observeBatch<T extends BatchHooks>(batch: T, job?: string): T {
      const onProgress = throttled(batch.onProgress, batch.progressIntervalMs);
      const onRetry = batch.onRetry;
      return {
        ...batch,
        progressIntervalMs: interval(batch.progressIntervalMs),
        onProgress: (p: BatchProgress) => {
          recordProgress(job, p);
          onProgress?.(p);
        },
        onRetry: (e: BatchRetryEvent) => {
          recordRetry(e);
          onRetry?.(e);
        },
      };
    },
    observeWorker<T extends WorkerHooks>(worker: T): T {
      const onProgress = throttled(worker.onProgress, worker.progressIntervalMs);
      const onRetry = worker.onRetry;
      return {
        ...worker,
        progressIntervalMs: interval(worker.progressIntervalMs),
        onProgress: (job: string, p: BatchProgress) => {
          recordProgress(job, p);
          onProgress?.(job, p);
        },
        onRetry: (e: BatchRetryEvent) => {
          recordRetry(e);
          onRetry?.(e);
        },
      };
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      stopWatching();
      stopHosts();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
