/**
 * OpenTelemetry spans, read back with the SDK's in-memory span exporter: one INTERNAL span per
 * logical request, one CLIENT span per attempt under it (HTTP semantic conventions), retry,
 * budget, breaker and cooldown events, context parenting and trace context propagation. The
 * Session runs on a FakeClock: no real sleeping, nothing timed.
 */
import { channel } from 'node:diagnostics_channel';
import {
  type Context,
  type ContextManager,
  context,
  ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  type TextMapPropagator,
  trace,
} from '@opentelemetry/api';
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  type Sampler,
  SamplingDecision,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { enableOpenTelemetry, type OpenTelemetryHandle } from '../../src/http/otel-metrics.js';
import { Session } from '../../src/http/session.js';
import { type ChaosServer, FakeClock, startChaosServer } from '../../src/testing/index.js';
import { closedPort, fastSession, rejectionOf } from './session-support.js';

let chaos: ChaosServer;
let port: number;
beforeAll(async () => {
  chaos = await startChaosServer();
  port = Number(new URL(chaos.url).port);
});
afterAll(async () => {
  await chaos.close();
});

let exporter: InMemorySpanExporter;
let provider: BasicTracerProvider;
let otel: OpenTelemetryHandle;
beforeEach(async () => {
  exporter = new InMemorySpanExporter();
  provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  otel = await enableOpenTelemetry({ tracerProvider: provider });
});
afterEach(async () => {
  otel.disable();
  await provider.shutdown();
});

/** Waits, turn by turn of the event loop, until `check()` holds (no timer involved). */
async function until(check: () => boolean): Promise<void> {
  for (let turn = 0; turn < 100_000 && !check(); turn++)
    await new Promise((resolve) => setImmediate(resolve));
  if (!check()) throw new Error('condition never held');
}

const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;
/** The logical span of a request to `path` and its attempt spans, in order. */
function tree(path: string): { request: ReadableSpan; attempts: ReadableSpan[] } {
  const spans = exporter.getFinishedSpans();
  const request = spans.find(
    (s) => s.kind === SpanKind.INTERNAL && String(s.attributes['url.full']).includes(path),
  );
  if (!request) throw new Error(`no logical span for ${path}`);
  const attempts = spans
    .filter((s) => parentOf(s) === request.spanContext().spanId)
    .sort(
      (a, b) =>
        Number(a.attributes['http.request.resend_count'] ?? 0) -
        Number(b.attributes['http.request.resend_count'] ?? 0),
    );
  return { request, attempts };
}

describe('enableOpenTelemetry: spans', () => {
  it('makes a logical span with one CLIENT span per attempt, resend_count and retry events', async () => {
    const { session } = fastSession({ retry: { total: 3, backoffFactor: 50 } });
    await using _ = session;
    const res = await session.get(`${chaos.url}/flaky/t1?fail=2&status=503`);
    expect(res.status).toBe(200);
    await res.text();
    const { request, attempts } = tree('/flaky/t1');
    expect(request.name).toBe('GET');
    expect(request.kind).toBe(SpanKind.INTERNAL);
    expect(request.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.full': `${chaos.url}/flaky/t1?fail=2&status=503`,
      'server.address': '127.0.0.1',
      'server.port': port,
      'http.response.status_code': 200,
      'dogged.attempts': 3,
    });
    expect(request.attributes['error.type']).toBeUndefined();
    expect(request.status.code).toBe(SpanStatusCode.UNSET);

    expect(attempts.map((s) => s.kind)).toEqual([
      SpanKind.CLIENT,
      SpanKind.CLIENT,
      SpanKind.CLIENT,
    ]);
    expect(attempts.map((s) => s.name)).toEqual(['GET', 'GET', 'GET']);
    expect(attempts.map((s) => s.attributes['http.request.resend_count'])).toEqual([
      undefined,
      1,
      2,
    ]);
    expect(attempts.map((s) => s.attributes['http.response.status_code'])).toEqual([503, 503, 200]);
    expect(attempts.map((s) => s.attributes['error.type'])).toEqual(['503', '503', undefined]);
    expect(attempts[0]?.attributes).toMatchObject({
      'http.request.method': 'GET',
      'server.address': '127.0.0.1',
      'server.port': port,
    });
    expect(attempts.every((s) => s.spanContext().traceId === request.spanContext().traceId)).toBe(
      true,
    );

    const retries = request.events.filter((e) => e.name === 'dogged.retry');
    expect(retries.map((e) => e.attributes)).toEqual([
      {
        'dogged.retry.attempt': 1,
        'dogged.retry.delay_ms': 0,
        'dogged.retry.source': 'backoff',
        'dogged.retry.reason': '503',
        'http.response.status_code': 503,
      },
      {
        'dogged.retry.attempt': 2,
        'dogged.retry.delay_ms': 100,
        'dogged.retry.source': 'backoff',
        'dogged.retry.reason': '503',
        'http.response.status_code': 503,
      },
    ]);
  });

  it('marks a Retry-After retry and the cooldown it starts', async () => {
    const { session } = fastSession({ retry: { total: 2 } });
    await using _ = session;
    const res = await session.get(`${chaos.url}/flaky/t2?fail=1&status=503&retry-after=2`);
    expect(res.status).toBe(200);
    await res.text();
    const { request, attempts } = tree('/flaky/t2');
    expect(attempts).toHaveLength(2);
    const retry = request.events.find((e) => e.name === 'dogged.retry');
    expect(retry?.attributes).toMatchObject({
      'dogged.retry.source': 'retry-after',
      'dogged.retry.delay_ms': 2000,
    });
    const cooldown = request.events.find((e) => e.name === 'dogged.cooldown');
    expect(cooldown?.attributes).toEqual({ 'dogged.cooldown.duration_ms': 2000 });
  });

  it('ends a 404 after one attempt with error.type 404', async () => {
    const { session } = fastSession();
    await using _ = session;
    const res = await session.get(`${chaos.url}/status/404`);
    expect(res.status).toBe(404);
    await res.text();
    const { request, attempts } = tree('/status/404');
    expect(attempts).toHaveLength(1);
    expect(attempts[0]?.attributes['http.request.resend_count']).toBeUndefined();
    expect(request.attributes).toMatchObject({
      'http.response.status_code': 404,
      'error.type': '404',
    });
    expect(request.status.code).toBe(SpanStatusCode.ERROR);
    expect(request.events).toEqual([]);
  });

  it('redacts credentials in url.full', async () => {
    const { session } = fastSession();
    await using _ = session;
    const res = await session.get(`http://alice:s3cret@127.0.0.1:${port}/echo?who=me`);
    expect(res.status).toBe(200);
    await res.text();
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(2);
    for (const span of spans) {
      const url = String(span.attributes['url.full']);
      expect(url).not.toContain('s3cret');
      expect(url).toContain(`127.0.0.1:${port}/echo?who=me`);
      expect(JSON.stringify(span.attributes)).not.toContain('s3cret');
    }
  });

  it('gives dogged error.type to a refused connection, per attempt and on the request', async () => {
    const { session } = fastSession({ retry: { total: 1 } });
    await using _ = session;
    const url = `http://127.0.0.1:${await closedPort()}/refused`;
    const final = (await rejectionOf(session.get(url))) as {
      code: string;
      reason: { code: string };
    };
    // Retries ran out (MaxRetryError); error.type is the failure behind it.
    expect(final.code).toBe('ERR_DOGGED_MAX_RETRIES');
    const error = final.reason;
    expect(error.code).toBe('ERR_DOGGED_CONNECT');
    const { request, attempts } = tree('/refused');
    expect(attempts).toHaveLength(2);
    expect(attempts.map((s) => s.attributes['error.type'])).toEqual([error.code, error.code]);
    expect(attempts.map((s) => s.attributes['http.response.status_code'])).toEqual([
      undefined,
      undefined,
    ]);
    expect(attempts.every((s) => s.status.code === SpanStatusCode.ERROR)).toBe(true);
    expect(request.attributes['error.type']).toBe(error.code);
    expect(request.attributes['dogged.retries_exhausted']).toBe(true);
    expect(request.status.code).toBe(SpanStatusCode.ERROR);
    const retry = request.events.find((e) => e.name === 'dogged.retry');
    expect(retry?.attributes?.['error.type']).toBe(error.code);
  });

  it('records budget exhaustion and breaker transitions as events', async () => {
    const { session } = fastSession({
      retry: { total: 3 },
      budget: { percentCanRetry: 0, minRetriesPerSecond: 0 },
      breaker: { mode: 'consecutive', threshold: 1, halfOpenAfterMs: 60_000 },
    });
    await using _ = session;
    await rejectionOf(session.get(`${chaos.url}/status/503?key=t6`));
    const { request, attempts } = tree('/status/503');
    expect(attempts).toHaveLength(1);
    const names = request.events.map((e) => e.name);
    expect(names).toContain('dogged.budget.exhausted');
    const transition = request.events.find((e) => e.name === 'dogged.breaker.transition');
    expect(transition?.attributes).toMatchObject({
      'dogged.breaker.from': 'closed',
      'dogged.breaker.to': 'open',
    });
    // The open circuit fails the next request fast: a span with no attempt.
    const fast = (await rejectionOf(session.get(`${chaos.url}/status/200?key=t6b`))) as {
      code: string;
    };
    const next = tree('/status/200');
    expect(next.attempts).toHaveLength(0);
    expect(next.request.attributes['error.type']).toBe(fast.code);
  });

  it('parents the logical span on the active context and injects traceparent per attempt', async () => {
    // A synchronous context manager is enough: the request starts within session.get().
    let active: Context = ROOT_CONTEXT;
    const manager: ContextManager = {
      active: () => active,
      with(ctx, fn, thisArg, ...args) {
        const before = active;
        active = ctx;
        try {
          return fn.call(thisArg, ...args);
        } finally {
          active = before;
        }
      },
      bind: (_ctx, target) => target,
      enable() {
        return this;
      },
      disable() {
        return this;
      },
    };
    const propagator: TextMapPropagator = {
      inject(ctx, carrier, setter) {
        const span = trace.getSpanContext(ctx);
        if (span) setter.set(carrier, 'traceparent', `00-${span.traceId}-${span.spanId}-01`);
      },
      extract: (ctx) => ctx,
      fields: () => ['traceparent'],
    };
    context.setGlobalContextManager(manager);
    propagation.setGlobalPropagator(propagator);
    try {
      const { session } = fastSession({ retry: { total: 2 } });
      await using _ = session;
      const outer = provider.getTracer('test').startSpan('job');
      const pending = context.with(trace.setSpan(ROOT_CONTEXT, outer), () =>
        session.get(`${chaos.url}/echo?t=7`),
      );
      const res = await pending;
      const echoed = (await res.json()) as { headers: Record<string, string> };
      outer.end();
      const { request, attempts } = tree('/echo?t=7');
      expect(parentOf(request)).toBe(outer.spanContext().spanId);
      expect(request.spanContext().traceId).toBe(outer.spanContext().traceId);
      expect(attempts).toHaveLength(1);
      const attempt = attempts[0] as ReadableSpan;
      expect(echoed.headers.traceparent).toBe(
        `00-${attempt.spanContext().traceId}-${attempt.spanContext().spanId}-01`,
      );
    } finally {
      propagation.disable();
      context.disable();
    }
  });

  it('adds no traceparent when no propagator is registered', async () => {
    const { session } = fastSession();
    await using _ = session;
    const res = await session.get(`${chaos.url}/echo?t=8`);
    const echoed = (await res.json()) as { headers: Record<string, string> };
    expect(echoed.headers.traceparent).toBeUndefined();
    expect(tree('/echo?t=8').attempts).toHaveLength(1);
  });
});

describe('enableOpenTelemetry: spans sampled out, traces off', () => {
  it('exports nothing with an AlwaysOffSampler, and nothing with traces: false', async () => {
    otel.disable();
    const offExporter = new InMemorySpanExporter();
    const off = new BasicTracerProvider({
      sampler: new AlwaysOffSampler(),
      spanProcessors: [new SimpleSpanProcessor(offExporter)],
    });
    const sampledOut = await enableOpenTelemetry({ tracerProvider: off });
    const noTraces = await enableOpenTelemetry({ tracerProvider: provider, traces: false });
    try {
      const { session } = fastSession({ retry: { total: 2 } });
      await using _ = session;
      const res = await session.get(`${chaos.url}/flaky/t9?fail=1&status=503`);
      expect(res.status).toBe(200);
      await res.text();
    } finally {
      sampledOut.disable();
      noTraces.disable();
    }
    expect(offExporter.getFinishedSpans()).toEqual([]);
    expect(exporter.getFinishedSpans()).toEqual([]);
    await off.shutdown();
  });
});

/** GETs `path` from the chaos server and reads the whole body; the status. */
async function readAll(session: Session, path: string): Promise<number> {
  const res = await session.get(`${chaos.url}${path}`);
  await res.text();
  return res.status;
}

describe('enableOpenTelemetry: no SDK yet', () => {
  it('publishes only the start of an untraced request, and traces once an SDK is registered', async () => {
    otel.disable();
    const later = ['dogged:attempt:start', 'dogged:attempt:end', 'dogged:request:end'].map((name) =>
      channel(name),
    );
    const listened = (): boolean[] => later.map((c) => c.hasSubscribers);
    const proxy = new ProxyTracerProvider();
    const noSdk = await enableOpenTelemetry({ tracerProvider: proxy });
    try {
      const { session } = fastSession();
      await using _ = session;
      const get = async (path: string): Promise<void> => {
        expect(await readAll(session, path)).toBe(200);
      };
      await get('/bytes/11');
      expect(listened()).toEqual([false, false, false]);
      // An SDK registered later (the proxy's delegate): the next request is traced whole.
      proxy.setDelegate(provider);
      await get('/bytes/12');
      expect(tree('bytes/12').attempts).toHaveLength(1);
      expect(listened()).toEqual([true, true, true]);
      expect(exporter.getFinishedSpans()).toHaveLength(2);
    } finally {
      noSdk.disable();
    }
    expect(listened()).toEqual([false, false, false]);
  });

  it('follows while a traced request is in flight, lets go after an untraced one, and on disable', async () => {
    otel.disable();
    const attemptEnd = channel('dogged:attempt:end');
    // Samples the slow requests only.
    const sampler: Sampler = {
      shouldSample: (_context, _trace, _name, _kind, attributes) => ({
        decision: String(attributes['url.full']).includes('/delay/')
          ? SamplingDecision.RECORD_AND_SAMPLED
          : SamplingDecision.NOT_RECORD,
      }),
      toString: () => 'slow only',
    };
    const sampled = new BasicTracerProvider({
      sampler,
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const handle = await enableOpenTelemetry({ tracerProvider: sampled });
    try {
      const { session } = fastSession();
      await using _ = session;
      const quick = (path: string): Promise<number> => readAll(session, path);
      await quick('/bytes/21');
      expect(attemptEnd.hasSubscribers).toBe(false);
      const slow = session.get(`${chaos.url}/delay/300`);
      expect(attemptEnd.hasSubscribers).toBe(true);
      await quick('/bytes/22');
      // The traced request is still in flight: its later events must still be seen.
      expect(attemptEnd.hasSubscribers).toBe(true);
      const res = await slow;
      await res.text();
      expect(tree('delay/300').attempts).toHaveLength(1);
      expect(tree('delay/300').request.attributes['http.response.status_code']).toBe(200);
      await quick('/bytes/23');
      expect(attemptEnd.hasSubscribers).toBe(false);
      expect(exporter.getFinishedSpans()).toHaveLength(2);
      const again = session.get(`${chaos.url}/delay/1`);
      expect(attemptEnd.hasSubscribers).toBe(true);
      await (await again).text();
      expect(exporter.getFinishedSpans()).toHaveLength(4);
    } finally {
      handle.disable();
      await sampled.shutdown();
    }
    expect(attemptEnd.hasSubscribers).toBe(false);
  });
});

describe('enableOpenTelemetry: storm-control metrics', () => {
  it('counts budget rejections, breaker state, cooldowns and waits', async () => {
    otel.disable();
    const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
    const reader = new PeriodicExportingMetricReader({
      exporter: metricExporter,
      exportIntervalMillis: 3_600_000,
    });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const metricsOn = await enableOpenTelemetry({ meterProvider, traces: false });
    try {
      const budgeted = fastSession({
        retry: { total: 3 },
        budget: { percentCanRetry: 0, minRetriesPerSecond: 0 },
        breaker: { mode: 'consecutive', threshold: 1, halfOpenAfterMs: 60_000 },
      }).session;
      await using _a = budgeted;
      await rejectionOf(budgeted.get(`${chaos.url}/status/503?key=m1`));

      // A 503 with Retry-After: 3 holds the origin 3 s; a request sent meanwhile waits for it.
      const clock = new FakeClock();
      await using session = new Session({ clock, logger: false, retry: { total: 1 } });
      const held = session.get(`${chaos.url}/status/503?retry-after=3&key=m2`).then(
        (res) => res.text(),
        () => undefined,
      );
      await until(() => clock.pending === 1);
      const waiting = session.get(`${chaos.url}/status/200?key=m3`);
      await until(() => clock.pending === 2);
      await clock.advance(3000);
      await held;
      expect((await waiting).status).toBe(200);
      // Collected while enabled: the breaker gauge is observed by a callback.
      await reader.forceFlush();
    } finally {
      metricsOn.disable();
    }
    const metrics =
      metricExporter
        .getMetrics()
        .at(-1)
        ?.scopeMetrics.flatMap((s) => s.metrics) ?? [];
    const points = (name: string) =>
      (metrics.find((m) => m.descriptor.name === name)?.dataPoints ?? []) as DataPoint<unknown>[];
    const sum = (name: string) =>
      (points(name) as DataPoint<number>[]).reduce((n, p) => n + p.value, 0);

    expect(sum('dogged.budget.rejections')).toBe(1);
    expect(points('dogged.budget.rejections')[0]?.attributes).toMatchObject({
      'server.address': '127.0.0.1',
      'server.port': port,
    });
    const state = points('dogged.breaker.state') as DataPoint<number>[];
    expect(state.map((p) => p.value)).toEqual([2]);
    expect(sum('dogged.breaker.transitions')).toBe(1);
    const cooldowns = points('dogged.cooldown.duration') as DataPoint<Histogram>[];
    expect(cooldowns.reduce((n, p) => n + p.value.count, 0)).toBe(1);
    expect(cooldowns[0]?.value.sum).toBe(3);
    const waits = points('dogged.wait.duration') as DataPoint<Histogram>[];
    const cooldownWaits = waits.filter((p) => p.attributes['dogged.wait.reason'] === 'cooldown');
    expect(cooldownWaits.reduce((n, p) => n + p.value.count, 0)).toBe(1);
    await meterProvider.shutdown();
  });
});
