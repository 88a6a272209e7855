/**
 * OpenTelemetry metrics and spans for dogged, as a subscriber of `diagnostics_channel` events:
 * undici's `undici:request:*` (one per attempt: `http.client.request.duration`), dogged's
 * `dogged:retry` and `dogged:giveup` (`dogged.retries`, `dogged.giveups`), the storm-control
 * events (budget, breaker, cooldown, waits) and the request lifecycle events that make the spans
 * (otel-traces.ts). Nothing is subscribed, and `@opentelemetry/api` is not even loaded, until
 * {@link enableOpenTelemetry} is called: the request path costs nothing more without it.
 * See docs/opentelemetry.md.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import type {
  BreakerStateMessage,
  BudgetRejectedMessage,
  CooldownMessage,
  GiveUpEvent,
  RetryEvent,
  WaitMessage,
} from './observe.js';
import { errorType, serverAttributes, type TraceHandlers, traceHandlers } from './otel-traces.js';
import { watchUndiciRequests } from './undici-requests.js';

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
  /**
   * Where the tracer comes from.
   * @default the global tracer provider of `@opentelemetry/api` (no spans until an SDK registers one)
   * @example { tracerProvider: new BasicTracerProvider({ spanProcessors: [processor] }) }
   */
  tracerProvider?: TracerProvider;
  /**
   * The name of the tracer (the instrumentation scope).
   * @default 'dogged'
   * @example { tracerName: 'crawler' }
   */
  tracerName?: string;
  /**
   * Make spans: one per logical request, one per attempt under it. `false` leaves only the metrics
   * (and publishes no request lifecycle events at all).
   * @default true
   * @example { traces: false }
   */
  traces?: boolean;
  /**
   * Inject the trace context (`traceparent`, ... as the registered propagator writes it) into the
   * headers of each attempt. Only when a propagator is registered (`propagation.setGlobalPropagator`,
   * which the Node SDK does): with none, no header is added.
   * @default true
   * @example { propagate: false }
   */
  propagate?: boolean;
}

/** What {@link enableOpenTelemetry} returns. */
export interface OpenTelemetryHandle {
  /** Unsubscribes: no more measurements. */
  disable(): void;
}

type Attributes = Record<string, string | number>;

/** Buckets of `http.client.request.duration`, seconds (the HTTP semantic conventions' advice). */
const DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

/** `dogged.breaker.state` values. */
const BREAKER_STATES = { closed: 0, 'half-open': 1, open: 2 } as const;

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
 * - `dogged.giveups` (counter): requests that failed for good, with `error.type`;
 * - `dogged.budget.rejections` (counter): retries refused by an origin's retry budget, with
 *   `server.address` and `server.port`;
 * - `dogged.breaker.state` (gauge): each origin's circuit (0 closed, 1 half-open, 2 open), for
 *   origins whose breaker changed state at least once, with `server.address`, `server.port`;
 * - `dogged.breaker.transitions` (counter): state changes, with `dogged.breaker.to`;
 * - `dogged.cooldown.duration` (histogram, s): the holds a Retry-After put on an origin;
 * - `dogged.wait.duration` (histogram, s): what attempts waited before being sent, with
 *   `dogged.wait.reason` (`cooldown` or `rate-limit`) and the server attributes.
 *
 * And, unless `traces: false`, spans (see otel-traces.ts and docs/opentelemetry.md): an INTERNAL
 * span per logical request, a CLIENT span per attempt, events for retries, budget refusals,
 * breaker transitions, cooldowns and waits.
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
  const budgetRejections = meter.createCounter('dogged.budget.rejections', {
    description: 'Retries refused by the retry budget of their origin.',
    unit: '{retry}',
  });
  const breakerState = meter.createObservableGauge('dogged.breaker.state', {
    description: 'Circuit breaker state per origin: 0 closed, 1 half-open, 2 open.',
    unit: '1',
  });
  const breakerTransitions = meter.createCounter('dogged.breaker.transitions', {
    description: 'Circuit breaker state changes.',
    unit: '{transition}',
  });
  const cooldowns = meter.createHistogram('dogged.cooldown.duration', {
    description: 'Holds put on an origin by a Retry-After (cooldowns).',
    unit: 's',
  });
  const waits = meter.createHistogram('dogged.wait.duration', {
    description: 'Time attempts waited for a cooldown or the rate limit before being sent.',
    unit: 's',
  });
  const circuits = new Map<string, number>();
  const observeCircuits = (result: { observe(value: number, attributes: Attributes): void }) => {
    for (const [origin, state] of circuits) result.observe(state, serverAttributes(origin));
  };
  breakerState.addCallback(observeCircuits);

  // The API's no-op meter (no SDK: its instruments never record, even if one registers later)
  // makes the attempt durations nothing to measure: undici's request events are not watched.
  const noopHistogram = api.createNoopMeter().createHistogram('').constructor;
  const stopWatching =
    duration instanceof noopHistogram
      ? () => {}
      : watchUndiciRequests({
          ended: ({ request, durationMs, status, error }) => {
            const r = request as { origin?: unknown; method?: unknown };
            const attributes: Attributes = {
              'http.request.method': String(r.method ?? '_OTHER'),
              ...serverAttributes(String(r.origin)),
            };
            if (status !== undefined) attributes['http.response.status_code'] = status;
            if (error !== undefined) attributes['error.type'] = errorType(error);
            else if (status !== undefined && status >= 500)
              attributes['error.type'] = String(status);
            duration.record(durationMs / 1000, attributes);
          },
        });
  const handlers: [string, (message: unknown) => void][] = [
    [
      'dogged:retry',
      (m) => {
        const event = m as RetryEvent;
        const attributes: Attributes = {
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
    [
      'dogged:budget:rejected',
      (m) => budgetRejections.add(1, serverAttributes((m as BudgetRejectedMessage).origin)),
    ],
    [
      'dogged:breaker:state',
      (m) => {
        const { origin, to } = m as BreakerStateMessage;
        circuits.set(origin, BREAKER_STATES[to]);
        breakerTransitions.add(1, { ...serverAttributes(origin), 'dogged.breaker.to': to });
      },
    ],
    [
      'dogged:cooldown',
      (m) => {
        const { origin, ms } = m as CooldownMessage;
        cooldowns.record(ms / 1000, serverAttributes(origin));
      },
    ],
    [
      'dogged:wait',
      (m) => {
        const { origin, reason, ms } = m as WaitMessage;
        waits.record(ms / 1000, { ...serverAttributes(origin), 'dogged.wait.reason': reason });
      },
    ],
  ];
  let traces: TraceHandlers | undefined;
  if (options.traces !== false) {
    const tracerProvider = options.tracerProvider ?? api.trace.getTracerProvider();
    traces = traceHandlers(api, {
      tracer: tracerProvider.getTracer(options.tracerName ?? 'dogged'),
      propagate: options.propagate !== false,
      provider: tracerProvider,
    });
    handlers.push(traces.start);
  }
  for (const [name, fn] of handlers) subscribe(name, fn);
  let enabled = true;
  return {
    disable(): void {
      if (!enabled) return;
      enabled = false;
      stopWatching();
      for (const [name, fn] of handlers) unsubscribe(name, fn);
      traces?.stop();
      breakerState.removeCallback(observeCircuits);
    },
  };
}
