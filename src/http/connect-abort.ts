import { AsyncLocalStorage } from 'node:async_hooks';
import type { Socket } from 'node:net';
import { buildConnector, type Dispatcher } from 'undici';

/**
 * undici settles a request only once its connection is up: while the TCP connect or the TLS
 * handshake is pending, an abort of the request's signal is only noted, and the call returns
 * when the connect timeout fires. Two pieces make an abort (the caller's signal, the total
 * deadline, the attempt deadline) end the attempt at once instead:
 * - {@link requestWithin} settles the attempt with the signal's reason as soon as it aborts;
 * - {@link abortableConnector} destroys the socket that the aborted attempt was opening, so no
 *   half-open connection outlives it until the connect timeout.
 */

/** The signal of the attempt whose dispatch is running; claimed by the first connect it opens. */
interface ConnectTicket {
  readonly signal: AbortSignal;
  claimed: boolean;
}

const scope = new AsyncLocalStorage<ConnectTicket>();

/** A connector as undici's `connect` option takes it. */
export type Connector = buildConnector.connector;

const ignore = (): void => {};

/**
 * Wraps `connector` so that the socket it opens for an attempt is destroyed when that attempt's
 * signal aborts before the connection is established (TCP connected, and the TLS handshake
 * done for https). undici calls the connector synchronously from the dispatch of the request
 * that needs the connection, so the attempt is known from the dispatch's async context; a
 * connection opened later for another reason (a reconnect) is not tied to any attempt.
 */
export function abortableConnector(connector: Connector): Connector {
  return (options, callback) => {
    const ticket = scope.getStore();
    if (!ticket || ticket.claimed || ticket.signal.aborted) {
      connector(options, callback);
      return;
    }
    ticket.claimed = true;
    const { signal } = ticket;
    let socket: Socket | undefined;
    const onAbort = (): void => {
      socket?.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    // undici's connector returns the socket it opens (its type says void).
    const opened = (connector as (...args: Parameters<Connector>) => unknown)(
      options,
      (...args) => {
        signal.removeEventListener('abort', onAbort);
        socket = undefined;
        callback(...args);
      },
    );
    if (opened && typeof (opened as Socket).destroy === 'function') socket = opened as Socket;
  };
}

/** undici's connector with these options, made abortable ({@link abortableConnector}). */
export function connectorFor(options: buildConnector.BuildOptions): Connector {
  return abortableConnector(buildConnector(options));
}

/**
 * `dispatcher.request(options)` that settles as soon as `signal` aborts (with its reason), even
 * while undici is still connecting: the socket being opened for it is destroyed by
 * {@link abortableConnector}, and a response that arrives anyway is discarded.
 */
export function requestWithin(
  dispatcher: Dispatcher,
  options: Dispatcher.RequestOptions,
  signal: AbortSignal | undefined,
): Promise<Dispatcher.ResponseData> {
  if (!signal) return dispatcher.request(options);
  if (signal.aborted) return Promise.reject(signal.reason);
  const pending = scope.run({ signal, claimed: false }, () =>
    dispatcher.request({ ...options, signal }),
  );
  return new Promise<Dispatcher.ResponseData>((resolve, reject) => {
    const onAbort = (): void => {
      reject(signal.reason);
      pending.then((late) => late.body.on('error', ignore).destroy(), ignore);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(
      (response) => {
        signal.removeEventListener('abort', onAbort);
        resolve(response);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
