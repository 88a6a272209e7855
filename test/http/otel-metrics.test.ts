/**
 * OpenTelemetry metrics, read back with the SDK's in-memory exporter: one duration per attempt,
 * retry decisions by source, give-ups; nothing recorded once disabled.
 */
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enableOpenTelemetry } from '../../src/http/otel-metrics.js';
import { Session } from '../../src/http/session.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';

let chaos: ChaosServer;
beforeAll(async () => {
  chaos = await startChaosServer();
});
afterAll(async () => {
  await chaos.close();
});

describe('enableOpenTelemetry', () => {
  it('records attempts, retries by source and give-ups', async () => {
    const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const otel = await enableOpenTelemetry({ meterProvider });
    const session = new Session({ retry: { total: 2, backoffFactor: 5 } });
    try {
      // 503 then 200 (a backoff); 503 + Retry-After: 0 then 200; 503 three times: a give-up.
      expect((await session.get(`${chaos.url}/flaky/o1?fail=1&status=503`)).status).toBe(200);
      expect(
        (await session.get(`${chaos.url}/flaky/o2?fail=1&status=503&retry-after=0`)).status,
      ).toBe(200);
      await expect(session.get(`${chaos.url}/status/503?key=o3`)).rejects.toThrow();
      otel.disable();
      // Not recorded: disabled.
      await (await session.get(`${chaos.url}/bytes/8?key=o4`)).text();
    } finally {
      otel.disable();
      await session.close();
    }
    await reader.forceFlush();
    const metrics =
      exporter
        .getMetrics()
        .at(-1)
        ?.scopeMetrics.flatMap((s) => s.metrics) ?? [];
    const named = (name: string) => metrics.find((m) => m.descriptor.name === name);
    const points = (name: string) => (named(name)?.dataPoints ?? []) as DataPoint<unknown>[];

    const durations = points('http.client.request.duration') as DataPoint<Histogram>[];
    const count = (status: number): number =>
      durations
        .filter((p) => p.attributes['http.response.status_code'] === status)
        .reduce((n, p) => n + p.value.count, 0);
    expect(count(200)).toBe(2);
    expect(count(503)).toBe(5);
    expect(durations[0]?.attributes).toMatchObject({
      'http.request.method': 'GET',
      'server.address': '127.0.0.1',
    });
    expect(named('http.client.request.duration')?.descriptor.unit).toBe('s');

    const retries = points('dogged.retries') as DataPoint<number>[];
    const bySource = (source: string): number =>
      retries
        .filter((p) => p.attributes['dogged.retry.source'] === source)
        .reduce((n, p) => n + p.value, 0);
    expect(bySource('backoff')).toBe(3);
    expect(bySource('retry-after')).toBe(1);
    const giveUps = points('dogged.giveups') as DataPoint<number>[];
    expect(giveUps.reduce((n, p) => n + p.value, 0)).toBe(1);
    await meterProvider.shutdown();
  });
});
