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

/**
 * The signal of the attempt being dispatched, set around the synchronous
 * `dispatcher.request()` call (and, for a streamed body, around the microtask in which undici
 * starts it): the first connect that dispatch opens claims it. Not an AsyncLocalStorage: that
 * installs promise hooks that tax every promise of the process, and undici opens the connection
 * within the dispatch itself.
 */
let current: AttemptSignal | undefined;

/**
 * What an attempt's signal must offer: an `AbortSignal`, or a lighter object with the same
 * members (undici takes either as a request's `signal`).
 */
export interface SignalLike {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * The signal of one attempt as {@link requestWithin} takes it: its abort listeners are called
 * with the abort reason, and it carries the connect ticket (`claimed`: the first connection its
 * dispatch opens is tied to it). The attempt's `AttemptDeadline` is one.
 */
export interface AttemptSignal extends SignalLike {
  /** A connection opened for this attempt is already tied to it. */
  claimed: boolean;
  addEventListener(type: 'abort', listener: (reason: unknown) => void): void;
  removeEventListener(type: 'abort', listener: (reason: unknown) => void): void;
}

/** A connector as undici's `connect` option takes it. */
export type Connector = buildConnector.connector;

const ignore = (): void => {};

/**
 * Wraps `connector` so that the socket it opens for an attempt is destroyed when that attempt's
 * signal aborts before the connection is established (TCP connected, and the TLS handshake
 * done for https). undici calls the connector synchronously from the dispatch of the request
 * that needs the connection (a request with a streamed body: from the microtask undici queues
 * during the dispatch), so the attempt is the one being dispatched then; a connection opened
 * later for another reason (a reconnect) is not tied to any attempt.
 */
export function abortableConnector(connector: Connector): Connector {
  return (options, callback) => {
    const signal = current;
    if (!signal || signal.claimed || signal.aborted) {
      connector(options, callback);
      return;
    }
    signal.claimed = true;
    let socket: Socket | undefined;
    const onAbort = (): void => {
      socket?.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort);
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
 * `dispatcher.request(options)` with `signal` as its signal, that settles as soon as `signal`
 * aborts (with its reason), even while undici is still connecting: the socket being opened for
 * it is destroyed by {@link abortableConnector}, and a response that arrives anyway is
 * discarded. `options` must not carry a signal of its own; it is given `signal`.
 * {@link dispatchWithin} with the head as it is and the failure as the rejection.
 */
export function requestWithin(
  dispatcher: Dispatcher,
  options: Dispatcher.RequestOptions,
  signal: AttemptSignal,
): Promise<Dispatcher.ResponseData> {
  return dispatchWithin(dispatcher, options, signal, AS_IT_IS);
}

/** The head as it is, the failure as a rejection. */
const AS_IT_IS: AttemptOutcome<Dispatcher.ResponseData> = Object.freeze({
  head: (raw: Dispatcher.ResponseData) => raw,
  failed: (error: unknown) => Promise.reject(error),
});

/**
 * What {@link dispatchWithin} makes of an attempt: of its response head, or of its failure
 * (undici's error, or the signal's reason when it aborted first). `failed` must not throw; a
 * throw of `head` rejects the attempt's promise.
 */
export interface AttemptOutcome<T> {
  head(raw: Dispatcher.ResponseData): T | PromiseLike<T>;
  failed(error: unknown): T | PromiseLike<T>;
}

/**
 * `dispatcher.request(options)` under `signal` (see {@link requestWithin}) whose one promise
 * settles with what `outcome` makes of the head or of the failure: an attempt whose answer needs
 * nothing more is one promise, with no reaction of its own between undici's callback and the
 * caller. One callback per attempt, and the signal is the connect ticket.
 */
export function dispatchWithin<T>(
  dispatcher: Dispatcher,
  options: Dispatcher.RequestOptions,
  signal: AttemptSignal,
  outcome: AttemptOutcome<T>,
): Promise<T> {
  return new Promise<T>((resolve) => {
    if (signal.aborted) {
      resolve(outcome.failed(signal.reason));
      return;
    }
    const failed = settleFailure(resolve, outcome);
    signal.addEventListener('abort', failed);
    try {
      dispatchUnder(dispatcher, options, signal, (error, response) => {
        if (signal.aborted) {
          if (!error) discard(response);
          return;
        }
        signal.removeEventListener('abort', failed);
        if (error) failed(error);
        else resolve(headOf(outcome, response));
      });
    } catch (error) {
      signal.removeEventListener('abort', failed);
      failed(error);
    }
  });
}

/**
 * The listener that settles {@link dispatchWithin}'s promise with what `outcome` makes of a
 * failure. Made here, not as an arrow assigned to a name in the caller: a keepNames transpiler
 * (tsx) names every such function at a call each time one is made.
 */
function settleFailure<T>(
  resolve: (value: T | PromiseLike<T>) => void,
  outcome: AttemptOutcome<T>,
): (error: unknown) => void {
  return (error) => resolve(outcome.failed(error));
}

/**
 * What `outcome` makes of the head; a throw becomes the rejection, not a throw out of undici's
 * callback (undici would rethrow it as an uncaught exception).
 */
function headOf<T>(
  outcome: AttemptOutcome<T>,
  response: Dispatcher.ResponseData,
): T | PromiseLike<T> {
  try {
    return outcome.head(response);
  } catch (error) {
    return Promise.reject(error);
  }
}

/** A response that arrived after its attempt was aborted: its body is destroyed unread. */
function discard(response: Dispatcher.ResponseData): void {
  response.body.on('error', ignore).destroy();
}

/**
 * `dispatcher.request(options, callback)` (the callback form: no promise of undici's) with
 * `signal` as the request's signal and, around the dispatch, as the attempt whose connect it is
 * ({@link abortableConnector}).
 */
function dispatchUnder(
  dispatcher: Dispatcher,
  options: Dispatcher.RequestOptions,
  signal: AttemptSignal,
  callback: (error: Error | null, response: Dispatcher.ResponseData) => void,
): void {
  const previous = current;
  // undici starts a request with a streamed body in a microtask queued by the dispatch:
  // bracket that one too (microtasks run in order).
  const deferred = !isInlineBody(options.body);
  if (deferred) queueMicrotask(() => (current = signal));
  current = signal;
  options.signal = signal as unknown as AbortSignal;
  try {
    dispatcher.request(options, callback);
  } finally {
    current = previous;
    if (deferred)
      queueMicrotask(() => {
        if (current === signal) current = previous;
      });
  }
}

/** A body undici sends as it is, without waiting a microtask for a stream to start. */
function isInlineBody(body: Dispatcher.RequestOptions['body']): boolean {
  return (
    body === null || body === undefined || typeof body === 'string' || body instanceof Uint8Array
  );
}
