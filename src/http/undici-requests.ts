import { subscribe, unsubscribe } from 'node:diagnostics_channel';

/** One undici request (an attempt) that ended, as its diagnostics events told it. */
export interface UndiciRequestEnd {
  /** undici's request object (`origin`, `method`, `path`...). */
  readonly request: object;
  /** From its creation to its trailers or its error, in ms. */
  readonly durationMs: number;
  /** The response status, when a response head came. */
  readonly status: number | undefined;
  /** The error it ended with (undefined when it ended with its trailers). */
  readonly error: unknown;
}

/** What {@link watchUndiciRequests} calls. */
export interface UndiciRequestWatcher {
  /** A request was created (it counts as in flight until `ended`). */
  started?(request: object): void;
  ended(end: UndiciRequestEnd): void;
}

/**
 * Follows every undici request of the process through undici's own `diagnostics_channel`
 * events (`undici:request:create`, `:headers`, `:trailers`, `:error`): the metrics of the
 * batch runner and the OpenTelemetry bridge both measure attempts this way. Returns the
 * function that stops watching.
 */
export function watchUndiciRequests(watcher: UndiciRequestWatcher): () => void {
  // The state of a request in flight, kept on undici's request object under a symbol of this
  // watcher's own: a WeakMap's set, gets and delete cost about 0.4 µs a request more (each
  // hashes the key), and the property goes with the request as the entry would.
  const key = Symbol('dogged.undiciRequest');
  type Tracked = { [key]?: { readonly start: number; status: number | undefined } | undefined };
  const end = (request: object, error: unknown): void => {
    const pending = (request as Tracked)[key];
    if (!pending) return;
    (request as Tracked)[key] = undefined;
    watcher.ended({
      request,
      durationMs: performance.now() - pending.start,
      status: pending.status,
      error,
    });
  };
  const handlers: [string, (message: unknown) => void][] = [
    [
      'undici:request:create',
      (m) => {
        const { request } = m as { request: object };
        (request as Tracked)[key] = { start: performance.now(), status: undefined };
        watcher.started?.(request);
      },
    ],
    [
      'undici:request:headers',
      (m) => {
        const { request, response } = m as { request: object; response: { statusCode: number } };
        const pending = (request as Tracked)[key];
        if (pending) pending.status = response.statusCode;
      },
    ],
    ['undici:request:trailers', (m) => end((m as { request: object }).request, undefined)],
    [
      'undici:request:error',
      (m) => {
        const { request, error } = m as { request: object; error: unknown };
        end(request, error ?? new Error('request failed'));
      },
    ],
  ];
  for (const [name, fn] of handlers) subscribe(name, fn);
  let watching = true;
  return () => {
    if (!watching) return;
    watching = false;
    for (const [name, fn] of handlers) unsubscribe(name, fn);
  };
}
