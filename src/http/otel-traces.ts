/**
 * OpenTelemetry spans for dogged's Session, as a subscriber of the request lifecycle channels of
 * `observe.ts` (`dogged:request:*`, `dogged:attempt:*`, ...). Loaded by
 * {@link enableOpenTelemetry} only; the Exchange publishes nothing while no one listens.
 *
 * Shape: one INTERNAL span per logical request (its name is the method), a child of the context
 * active when the request started, and one CLIENT span per attempt under it, following the HTTP
 * client semantic conventions. Retry decisions, budget refusals, breaker transitions, cooldowns
 * and waits are events of the logical span.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type * as Api from '@opentelemetry/api';
import type {
  AttemptEndMessage,
  AttemptStartMessage,
  BreakerStateMessage,
  BudgetRejectedMessage,
  CooldownMessage,
  RequestEndMessage,
  RequestRetryMessage,
  RequestStartMessage,
  WaitMessage,
} from './observe.js';

type OtelApi = typeof Api;
type Attributes = Record<string, string | number>;

/** `error.type` of a thrown value: its code, else its name (`_OTHER` for a non-error). */
export function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code) return code;
  return error instanceof Error ? error.name : '_OTHER';
}

/**
 * The failure behind a final error: the last attempt's, for a `MaxRetryError` (retries ran out)
 * whose reason is an error; else the error itself.
 */
function underlying(error: unknown): { failure: unknown; exhausted: boolean } {
  const reason = (error as { code?: unknown; reason?: unknown } | null)?.reason;
  if (
    (error as { code?: unknown } | null)?.code === 'ERR_DOGGED_MAX_RETRIES' &&
    reason instanceof Error
  )
    return { failure: reason, exhausted: true };
  return { failure: error, exhausted: false };
}

/** `server.address` and `server.port` of an origin (`http://host:port`), cached. */
const servers = new Map<string, Attributes>();
export function serverAttributes(origin: string): Attributes {
  let known = servers.get(origin);
  if (known) return known;
  known = {};
  try {
    const url = new URL(origin);
    known['server.address'] = url.hostname.replace(/^\[(.*)\]$/, '$1');
    known['server.port'] = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  } catch {
    // Not a URL: no server attributes.
  }
  if (servers.size >= 1000) servers.clear();
  servers.set(origin, known);
  return known;
}

/** Epoch milliseconds with sub-millisecond precision (an OTel `TimeInput`). */
function now(): number {
  return performance.timeOrigin + performance.now();
}

interface AttemptState {
  readonly span: Api.Span;
  /** When a failed attempt ended: its span ends once the failure is classified. */
  failedAt: number;
  error: unknown;
}

interface RequestState {
  readonly span: Api.Span;
  /** The context attempts are children of (the logical span's). */
  readonly context: Api.Context;
  readonly origin: string;
  readonly recording: boolean;
  pending: AttemptState | undefined;
}

/** Options of {@link traceHandlers}. */
export interface TraceSettings {
  readonly tracer: Api.Tracer;
  /** Inject the trace context into each attempt when a propagator is registered. */
  readonly propagate: boolean;
  /**
   * The provider `tracer` came from: when it is the API's `ProxyTracerProvider` and no SDK has
   * given it a delegate yet, its spans are no-ops, and a request makes none (nor builds its
   * attributes) unless there is a context to propagate.
   */
  readonly provider?: Api.TracerProvider;
}

type Handler = [string, (message: unknown) => void];

/** What {@link traceHandlers} returns. */
export interface TraceHandlers {
  /** `dogged:request:start`'s handler: for the caller to subscribe and unsubscribe. */
  readonly start: Handler;
  /** Unsubscribes the handlers of the later events, if they are subscribed. */
  stop(): void;
}

/**
 * The diagnostics_channel handlers that make the spans. The caller subscribes the first
 * event's; the handlers of the later events (attempts, retries, the end...) subscribe
 * themselves while a request is traced, and unsubscribe at the first untraced request that
 * starts with none in flight: with no SDK, or every span sampled out, a request publishes only
 * its start (the Exchange builds no other message while a channel has no subscriber).
 */
export function traceHandlers(api: OtelApi, settings: TraceSettings): TraceHandlers {
  const { tracer, propagate } = settings;
  const { SpanKind, SpanStatusCode } = api;
  const requests = new Map<object, RequestState>();
  /** Requests in flight by origin, for breaker and cooldown events (which name an origin). */
  const byOrigin = new Map<string, Set<RequestState>>();
  const propagating = (): boolean => propagate && api.propagation.fields().length > 0;
  // A ProxyTracerProvider without a delegate hands out this one (the API's no-op provider); an
  // SDK registered later becomes its delegate, so it is checked on each request.
  const proxy =
    settings.provider instanceof api.ProxyTracerProvider ? settings.provider : undefined;
  const noopProvider = proxy && new api.ProxyTracerProvider().getDelegate();
  const noSdk = (): boolean => proxy !== undefined && proxy.getDelegate() === noopProvider;

  /** Ends a failed attempt's span, with `error.type` of the classified failure when known. */
  const settle = (state: RequestState, classified: unknown): void => {
    const attempt = state.pending;
    if (!attempt) return;
    state.pending = undefined;
    const type = errorType(classified ?? attempt.error);
    attempt.span.setAttribute('error.type', type);
    attempt.span.setStatus({ code: SpanStatusCode.ERROR });
    attempt.span.end(attempt.failedAt || now());
  };

  const forget = (request: object, state: RequestState): void => {
    requests.delete(request);
    const peers = byOrigin.get(state.origin);
    peers?.delete(state);
    if (peers?.size === 0) byOrigin.delete(state.origin);
  };

  const onOrigin = (origin: string, name: string, attributes: Attributes): void => {
    const peers = byOrigin.get(origin);
    if (!peers) return;
    for (const state of peers) if (state.recording) state.span.addEvent(name, attributes);
  };

  let following = false;
  const unfollow = (): void => {
    if (!following) return;
    following = false;
    for (const [name, fn] of later) unsubscribe(name, fn);
  };
  const follow = (): void => {
    if (following) return;
    following = true;
    for (const [name, fn] of later) subscribe(name, fn);
  };
  /** A request starts that is not traced: no later event matters unless others are in flight. */
  const untraced = (): void => {
    if (requests.size === 0) unfollow();
  };

  const start: Handler = [
    'dogged:request:start',
    (m) => {
      const { request, method, url, origin } = m as RequestStartMessage;
      // No SDK: the span would not record, and nothing to propagate: nothing to do.
      if (noSdk() && !propagating()) return untraced();
      const parent = api.context.active();
      const span = tracer.startSpan(
        method,
        {
          kind: SpanKind.INTERNAL,
          attributes: {
            'http.request.method': method,
            'url.full': url,
            ...serverAttributes(origin),
          },
        },
        parent,
      );
      const recording = span.isRecording();
      // Sampled out and nothing to propagate: nothing to track.
      if (!recording && !propagating()) return untraced();
      follow();
      const state: RequestState = {
        span,
        context: api.trace.setSpan(parent, span),
        origin,
        recording,
        pending: undefined,
      };
      requests.set(request, state);
      let peers = byOrigin.get(origin);
      if (!peers) {
        peers = new Set();
        byOrigin.set(origin, peers);
      }
      peers.add(state);
    },
  ];

  const later: Handler[] = [
    [
      'dogged:attempt:start',
      (m) => {
        const message = m as AttemptStartMessage;
        const state = requests.get(message.request);
        if (!state) return;
        settle(state, undefined);
        let context = state.context;
        if (state.recording) {
          const attributes: Attributes = {
            'http.request.method': message.method,
            'url.full': message.url,
            ...serverAttributes(message.origin),
          };
          if (message.attempt > 1) attributes['http.request.resend_count'] = message.attempt - 1;
          const span = tracer.startSpan(
            message.method,
            { kind: SpanKind.CLIENT, attributes },
            state.context,
          );
          state.pending = { span, failedAt: 0, error: undefined };
          context = api.trace.setSpan(state.context, span);
        }
        if (propagating()) {
          const carrier: Record<string, string> = {};
          api.propagation.inject(context, carrier);
          if (Object.keys(carrier).length > 0) message.headers = { ...message.headers, ...carrier };
        }
      },
    ],
    [
      'dogged:attempt:end',
      (m) => {
        const { request, status, error } = m as AttemptEndMessage;
        const attempt = requests.get(request)?.pending;
        if (!attempt) return;
        if (status === undefined) {
          // No response: the span ends when the failure is classified (retry or final error).
          attempt.failedAt = now();
          attempt.error = error;
          return;
        }
        const state = requests.get(request) as RequestState;
        state.pending = undefined;
        attempt.span.setAttribute('http.response.status_code', status);
        if (status >= 400) {
          attempt.span.setAttribute('error.type', String(status));
          attempt.span.setStatus({ code: SpanStatusCode.ERROR });
        }
        attempt.span.end();
      },
    ],
    [
      'dogged:request:retry',
      (m) => {
        const { request, event } = m as RequestRetryMessage;
        const state = requests.get(request);
        if (!state?.recording) return;
        settle(state, event.error);
        const attributes: Attributes = {
          'dogged.retry.attempt': event.attempt,
          'dogged.retry.delay_ms': event.delayMs,
          'dogged.retry.source': event.delaySource,
          'dogged.retry.reason':
            event.error !== undefined ? errorType(event.error) : String(event.status),
        };
        if (event.status !== undefined) attributes['http.response.status_code'] = event.status;
        if (event.error !== undefined) attributes['error.type'] = errorType(event.error);
        state.span.addEvent('dogged.retry', attributes);
      },
    ],
    [
      'dogged:budget:rejected',
      (m) => {
        const { request, origin } = m as BudgetRejectedMessage;
        const state = requests.get(request);
        if (state?.recording)
          state.span.addEvent('dogged.budget.exhausted', serverAttributes(origin));
      },
    ],
    [
      'dogged:breaker:state',
      (m) => {
        const { origin, from, to, reason } = m as BreakerStateMessage;
        onOrigin(origin, 'dogged.breaker.transition', {
          'dogged.breaker.from': from,
          'dogged.breaker.to': to,
          'dogged.breaker.reason': reason,
        });
      },
    ],
    [
      'dogged:cooldown',
      (m) => {
        const { origin, ms } = m as CooldownMessage;
        onOrigin(origin, 'dogged.cooldown', { 'dogged.cooldown.duration_ms': ms });
      },
    ],
    [
      'dogged:wait',
      (m) => {
        const { request, reason, ms } = m as WaitMessage;
        const state = request === undefined ? undefined : requests.get(request);
        if (state?.recording)
          state.span.addEvent('dogged.wait', {
            'dogged.wait.reason': reason,
            'dogged.wait_ms': ms,
          });
      },
    ],
    [
      'dogged:request:end',
      (m) => {
        const { request, status, error, attempts } = m as RequestEndMessage;
        const state = requests.get(request);
        if (!state) return;
        forget(request, state);
        const { failure, exhausted } = underlying(error);
        settle(state, failure);
        const span = state.span;
        if (!state.recording) return;
        span.setAttribute('dogged.attempts', attempts);
        if (status !== undefined) span.setAttribute('http.response.status_code', status);
        if (error !== undefined) {
          span.setAttribute('error.type', errorType(failure));
          if (exhausted) span.setAttribute('dogged.retries_exhausted', true);
          span.setStatus({ code: SpanStatusCode.ERROR });
        } else if (status !== undefined && status >= 400) {
          span.setAttribute('error.type', String(status));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
        span.end();
      },
    ],
  ];

  return { start, stop: unfollow };
}
