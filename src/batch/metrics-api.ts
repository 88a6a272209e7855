/**
 * {@link startMetricsServer}, loaded on first use: `import 'dogged'` does not load prom-client
 * for programs that serve no metrics.
 */
import type { MetricsServer, MetricsServerOptions } from './metrics.js';

export type { BatchHooks, MetricsServer, MetricsServerOptions, WorkerHooks } from './metrics.js';

/**
 * Serves Prometheus metrics of batches and workers at `http://HOST:PORT/metrics` (what
 * `--metrics HOST:PORT` does): lines by state, queue depth, requests by host and status class,
 * request durations, requests in flight, retries by host, class and delay source. Feed it a
 * batch with `observeBatch(options)` (or a worker with `observeWorker(options)`). See
 * docs/metrics.md.
 * @example
 * const metrics = await startMetricsServer({ listen: '127.0.0.1:9464' });
 * await runBatch(metrics.observeBatch({ input: 'urls.txt', db: 'run.sqlite' }));
 * await metrics.close();
 */
export async function startMetricsServer(
  options: MetricsServerOptions = {},
): Promise<MetricsServer> {
  return (await import('./metrics.js')).startMetricsServer(options);
}
