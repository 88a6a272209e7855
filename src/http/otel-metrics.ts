/**
 * OpenTelemetry metrics for dogged, as a subscriber of `diagnostics_channel` events: undici's
 * `undici:request:*` (one per attempt: `http.client.request.duration`) and dogged's
 * `dogged:retry` and `dogged:giveup` (`dogged.retries`, `dogged.giveups`). Nothing is
 * subscribed, and `@opentelemetry/api` is not even loaded, until {@link enableOpenTelemetry}
 * is called: the request path costs nothing more without it.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import type { MeterProvider } from '@opentelemetry/api';
import type { GiveUpEvent, RetryEvent } from './observe.js';

/** Options of {@link enableOpenTelemetry}. */
export interface OpenTelemetryOptions {
  /**
   * Where the instruments come from.
   * @default the global meter provider of `@opentelemetry/api` (a no-op until an SDK registers one)
   * @example { meterProvider: new MeterProvider({ readers: [reader] }) }
   */
  meterProvider?: MeterProvider;
  /**
   * The name of the meter (the instrumentation scope).
   * @default 'dogged'
   * @example { meterName: 'crawler' }
   */
  meterName?: string;
}

/** What {@link enableOpenTelemetry} returns. */
export interface OpenTelemetryHandle {
  /** Unsubscribes: no more measurements. */
  disable(): void;
}

/** Buckets of `http.client.request.duration`, seconds (the HTTP semantic conventions' advice). */
const DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

/** `error.type` of a thrown value: its code, else its name. */
function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code) return code;
  return error instanceof Error ? error.name : '_OTHER';
}

/**
 * Records dogged's OpenTelemetry metrics until `disable()`:
 *
 * - `http.client.request.duration` (histogram, s): every attempt sent through undici, with
 *   `http.request.method`, `server.address`, `server.port`, `http.response.status_code` and,
 *   for an attempt that got no response or whose body was cut short, `error.type`;
 * - `dogged.retries` (counter): retry decisions, with `dogged.retry.source` (`backoff`,
 *   `retry-after`, `immediate`, `rotation`) and the failed attempt's
 *   `http.response.status_code` or `error.type`;
 * - `dogged.retry.delay` (histogram, s): the delays scheduled, with `dogged.retry.source`;
 * - `dogged.giveups` (counter): requests that failed for good, with `error.type`.
 *
 * Requires `@opentelemetry/api` (an optional peer dependency): it rejects without it.
 * @example
 * const otel = await enableOpenTelemetry(); // the global meter provider of your SDK
 * // ... requests ...
 * otel.disable();
 */
export async function enableOpenTelemetry(
  options: OpenTelemetryOptions = {},
): Promise<OpenTelemetryHandle> {
  const api = await import('@opentelemetry/api');
  const provider = options.meterProvider ?? api.metrics.getMeterProvider();
  const meter = provider.getMeter(options.meterName ?? 'dogged');
  const duration = meter.createHistogram('http.client.request.duration', {
    description: 'Duration of HTTP client requests (each attempt).',
    unit: 's',
    advice: { explicitBucketBoundaries: DURATION_BUCKETS },
  });
  const retries = meter.createCounter('dogged.retries', {
    description: 'Retries decided by dogged.',
    unit: '{retry}',
  });
  const delays = meter.createHistogram('dogged.retry.delay', {
    description: 'Delays scheduled before retries.',
    unit: 's',
  });
  const giveUps = meter.createCounter('dogged.giveups', {
    description: 'Requests that failed for good.',
    unit: '{request}',
  });

  interface Attempt {
    readonly start: number;
    status: number | undefined;
  }
  const attempts = new WeakMap<object, Attempt>();
  const finish = (request: object, error: unknown): void => {
    const attempt = attempts.get(request);
    if (!attempt) return;
    attempts.delete(request);
    const r = request as { origin?: unknown; method?: unknown };
    const attributes: Record<string, string | number> = {
      'http.request.method': String(r.method ?? '_OTHER'),
    };
    try {
      const url = new URL(String(r.origin));
      attributes['server.address'] = url.hostname;
      attributes['server.port'] = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    } catch {
      // No origin: no server attributes.
    }
    if (attempt.status !== undefined) attributes['http.response.status_code'] = attempt.status;
    if (error !== undefined) attributes['error.type'] = errorType(error);
    else if (attempt.status !== undefined && attempt.status >= 500)
      attributes['error.type'] = String(attempt.status);
    duration.record((performance.now() - attempt.start) / 1000, attributes);
  };
  const handlers: [string, (message: unknown) => void][] = [
    [
      'undici:request:create',
      (m) => {
        attempts.set((m as { request: object }).request, {
          start: performance.now(),
          status: undefined,
        });
      },
    ],
    [
      'undici:request:headers',
      (m) => {
        const { request, response } = m as { request: object; response: { statusCode: number } };
        const attempt = attempts.get(request);
        if (attempt) attempt.status = response.statusCode;
      },
    ],
    ['undici:request:trailers', (m) => finish((m as { request: object }).request, undefined)],
    [
      'undici:request:error',
      (m) => {
        const { request, error } = m as { request: object; error: unknown };
        finish(request, error ?? new Error('request failed'));
      },
    ],
    [
      'dogged:retry',
      (m) => {
        const event = m as RetryEvent;
        const attributes: Record<string, string | number> = {
          'dogged.retry.source': event.delaySource,
        };
        if (event.status !== undefined) attributes['http.response.status_code'] = event.status;
        if (event.error !== undefined) attributes['error.type'] = errorType(event.error);
        retries.add(1, attributes);
        delays.record(event.delayMs / 1000, { 'dogged.retry.source': event.delaySource });
      },
    ],
    [
      'dogged:giveup',
      (m) => {
        giveUps.add(1, { 'error.type': errorType((m as GiveUpEvent).error) });
      },
    ],
  ];
  for (const [name, fn] of handlers) subscribe(name, fn);
  let enabled = true;
  return {
    disable(): void {
      if (!enabled) return;
      enabled = false;
      for (const [name, fn] of handlers) unsubscribe(name, fn);
    },
  };
}
