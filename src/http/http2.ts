import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { Agent, type buildConnector, Client, type Dispatcher, errors, Pool } from 'undici';
import { showValue } from '../retry/validate.js';
import {
  ConnectionResetError,
  type DoggedError,
  IncompleteBodyError,
  type RequestPhase,
} from './errors.js';

/** Checks the `http2` option. */
export function checkHttp2(where: string, value: unknown): boolean {
  if (typeof value !== 'boolean')
    throw new TypeError(`${where} must be true or false, got ${showValue(value)}`);
  return value;
}

/** What classifying a failure knows about the attempt. */
interface Http2FailureContext {
  method?: string | undefined;
  url?: string | undefined;
  attempts?: number | undefined;
  phase?: RequestPhase | undefined;
}

/**
 * An HTTP/2 stream failure in dogged's taxonomy, or undefined when `error` is not one. A stream
 * the server refused (`REFUSED_STREAM`: RFC 9113 says it processed nothing) is safe to retry for
 * every method, as a connection that was never made: a `ConnectionResetError` of the `connect`
 * phase. Any other stream reset is its HTTP/1.1 counterpart: a connection reset before the
 * response, or a body cut short after it began.
 */
export function classifyHttp2(
  error: unknown,
  context: Http2FailureContext,
): DoggedError | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== 'ERR_HTTP2_STREAM_ERROR') return undefined;
  const message = error instanceof Error ? error.message : String(error);
  const base = {
    cause: error,
    ...(context.method !== undefined && { method: context.method }),
    ...(context.url !== undefined && { url: context.url }),
    ...(context.attempts !== undefined && { attempts: context.attempts }),
  };
  if (/REFUSED_STREAM/.test(message))
    return new ConnectionResetError(
      `the server refused the HTTP/2 stream before processing it (REFUSED_STREAM): ${message}`,
      Object.assign({ phase: 'connect' as const }, base),
    );
  if (context.phase === 'body')
    return new IncompleteBodyError(`the HTTP/2 stream was reset mid-body: ${message}`, base);
  return new ConnectionResetError(`the HTTP/2 stream was reset: ${message}`, base);
}

/** Statuses whose responses never carry a body, whatever their Content-Length says. */
const NO_BODY = new Set([204, 304]);

/** True when a response to `head` (a HEAD) with `statusCode` carries no body. */
function bodiless(head: boolean, statusCode: number): boolean {
  return head || statusCode < 200 || NO_BODY.has(statusCode);
}

/** A Content-Length as a number, or undefined when it is not one. */
function lengthOf(value: unknown): number | undefined {
  return typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : undefined;
}

/**
 * The Content-Length of raw headers (name, value, name, value...: Buffers or strings, as undici
 * hands them to a handler of its legacy API), or undefined when there is no valid one, or more
 * than one.
 */
function rawDeclaredLength(raw: readonly (Buffer | string)[]): number | undefined {
  let found: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as Buffer | string;
    if (name.length !== 14) continue;
    if (
      (typeof name === 'string' ? name : name.toString('latin1')).toLowerCase() !== 'content-length'
    )
      continue;
    if (found !== undefined) return undefined;
    const value = raw[i + 1];
    found =
      typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString('latin1') : '';
  }
  return lengthOf(found);
}

function cutError(received: number, declared: number): Error {
  return new errors.ResponseContentLengthMismatchError(
    `the HTTP/2 stream ended after ${received} of the ${declared} bytes its Content-Length announced (reset mid-body)`,
  );
}

/**
 * A handler of undici's legacy API (`onConnect`, `onHeaders`, ... : what `dispatcher.request()`
 * dispatches) as undici calls it, with the callbacks it may call; `onBodySent` and
 * `onRequestSent` are called only when the handler has them.
 */
interface LegacyHandler {
  onConnect(abort: (error?: Error) => void, context?: unknown): void;
  onResponseStarted?(): void;
  onHeaders(
    statusCode: number,
    headers: (Buffer | string)[],
    resume: () => void,
    statusText: string,
  ): boolean;
  onData(chunk: Buffer): boolean;
  onComplete(trailers: (Buffer | string)[] | null): void;
  onError(error: Error): void;
  onUpgrade(statusCode: number, headers: (Buffer | string)[] | null, socket: Duplex): void;
  onBodySent?(chunk: unknown): void;
  onRequestSent?(): void;
}

/**
 * {@link declaredLengthHandler} for a handler of undici's legacy API: passes every callback on
 * as it came (the raw headers are not parsed into an object and back, as undici's adapters
 * between the two APIs would), but ends a body that stopped short of its Content-Length with
 * undici's own `ResponseContentLengthMismatchError` instead of a normal end.
 */
class LegacyDeclaredLength implements LegacyHandler {
  readonly #handler: LegacyHandler;
  readonly #head: boolean;
  #declared: number | undefined;
  #received = 0;

  constructor(handler: LegacyHandler, head: boolean) {
    this.#handler = handler;
    this.#head = head;
  }

  onConnect(abort: (error?: Error) => void, context?: unknown): void {
    this.#handler.onConnect(abort, context);
  }

  onResponseStarted(): void {
    this.#handler.onResponseStarted?.();
  }

  onHeaders(
    statusCode: number,
    headers: (Buffer | string)[],
    resume: () => void,
    statusText: string,
  ): boolean {
    this.#declared = bodiless(this.#head, statusCode) ? undefined : rawDeclaredLength(headers);
    this.#received = 0;
    return this.#handler.onHeaders(statusCode, headers, resume, statusText);
  }

  onData(chunk: Buffer): boolean {
    this.#received += chunk.length;
    return this.#handler.onData(chunk);
  }

  onComplete(trailers: (Buffer | string)[] | null): void {
    const declared = this.#declared;
    if (declared !== undefined && this.#received < declared) {
      this.#handler.onError(cutError(this.#received, declared));
      return;
    }
    this.#handler.onComplete(trailers);
  }

  onError(error: Error): void {
    this.#handler.onError(error);
  }

  onUpgrade(statusCode: number, headers: (Buffer | string)[] | null, socket: Duplex): void {
    this.#handler.onUpgrade(statusCode, headers, socket);
  }

  onBodySent(chunk: unknown): void {
    this.#handler.onBodySent?.(chunk);
  }

  onRequestSent(): void {
    this.#handler.onRequestSent?.();
  }
}

/** {@link LegacyDeclaredLength} for a handler of undici's new API (`onRequestStart`, ...). */
class DeclaredLength implements Dispatcher.DispatchHandler {
  readonly #handler: Dispatcher.DispatchHandler;
  readonly #head: boolean;
  #declared: number | undefined;
  #received = 0;

  constructor(handler: Dispatcher.DispatchHandler, head: boolean) {
    this.#handler = handler;
    this.#head = head;
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.#handler.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    socket: Duplex,
  ): void {
    this.#handler.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    this.#declared = bodiless(this.#head, statusCode)
      ? undefined
      : lengthOf(headers['content-length']);
    this.#received = 0;
    this.#handler.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#received += chunk.length;
    this.#handler.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    const declared = this.#declared;
    if (declared !== undefined && this.#received < declared) {
      this.#handler.onResponseError?.(controller, cutError(this.#received, declared));
      return;
    }
    this.#handler.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    this.#handler.onResponseError?.(controller, error);
  }
}

/**
 * `handler`, but a response whose body stopped short of its Content-Length ends with undici's
 * own `ResponseContentLengthMismatchError` instead of a normal end. The wrapper speaks the same
 * API as `handler` (undici's new one when it has `onRequestStart`, else the legacy one that
 * `dispatcher.request()` uses), so undici adapts nothing per response.
 */
export function declaredLengthHandler(
  handler: Dispatcher.DispatchHandler,
  method: string,
): Dispatcher.DispatchHandler {
  const head = method.toUpperCase() === 'HEAD';
  return handler.onRequestStart
    ? new DeclaredLength(handler, head)
    : (new LegacyDeclaredLength(
        handler as unknown as LegacyHandler,
        head,
      ) as unknown as Dispatcher.DispatchHandler);
}

/**
 * An undici `Agent` for HTTP/2 connections. Requests of an idempotent method share one
 * connection per origin that speaks h2 ({@link MultiplexPool}); the others get one each (see
 * {@link Http2Agent.dispatch}). And a body that ends before its Content-Length is a cut
 * body (`UND_ERR_RES_CONTENT_LENGTH_MISMATCH`, an `IncompleteBodyError`), never a short
 * success. undici checks the length over HTTP/1.1 but, over HTTP/2, may take the end of a
 * stream the server reset mid-body (RST_STREAM, as nginx does when its upstream goes away) for
 * a normal end: the reset's error can arrive after the stream's end of data. Not an interceptor
 * (`compose`): a composed dispatch wraps every handler of the legacy API, as
 * `dispatcher.request()` makes them, into the new one and back, parsing each response's headers
 * twice more.
 */
export class Http2Agent extends Agent {
  /** One request per connection, as undici's own Agent does: for the other methods. */
  readonly #single: Agent;

  constructor(options: Agent.Options = {}) {
    super(
      Object.assign(
        {
          factory: (origin: URL | string, poolOptions: Pool.Options) =>
            new MultiplexPool(origin, poolOptions),
        },
        options,
      ),
    );
    this.#single = new Agent(options);
  }

  /**
   * Requests of an idempotent method ({@link MULTIPLEXED}) share the origin's h2 connection;
   * the others (a POST, a PATCH) get a connection each, as undici's own Agent gives every
   * request. undici 7 fails every request in flight on a connection that receives a GOAWAY,
   * streams the server had accepted and goes on to answer included, so on a shared connection a
   * GOAWAY (nginx sends one every `keepalive_requests`) would fail every POST in flight, none of
   * which dogged may send again. A GET so failed is retried.
   *
   * The shared ones are dispatched as `idempotent` for undici, which otherwise holds a request
   * it does not take for idempotent (all but GET and HEAD, to undici) until the connection has
   * no other stream in flight. Whether an attempt is sent again is dogged's decision; undici
   * retries nothing.
   */
  override dispatch(options: Agent.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const wrapped = declaredLengthHandler(handler, options.method);
    if (!MULTIPLEXED.has(options.method)) return this.#single.dispatch(options, wrapped);
    if (options.idempotent === undefined) options.idempotent = true;
    return super.dispatch(options, wrapped);
  }

  // Both agents close (or are destroyed) together. undici's own promise forms call the callback
  // forms, which these override: each calls its parent's callback form.
  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | undefined {
    if (!callback) return new Promise<void>((resolve) => this.close(resolve));
    const done = both(callback);
    super.close(done);
    this.#single.close(done);
    return undefined;
  }

  override destroy(): Promise<void>;
  override destroy(error: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(error: Error | null, callback: () => void): void;
  override destroy(
    first?: Error | null | (() => void),
    second?: () => void,
  ): Promise<void> | undefined {
    const error = typeof first === 'function' ? null : (first ?? null);
    const callback = typeof first === 'function' ? first : second;
    if (!callback) return new Promise<void>((resolve) => this.destroy(error, resolve));
    const done = both(callback);
    super.destroy(error, done);
    this.#single.destroy(error, done);
    return undefined;
  }
}

/** A callback that calls `callback` on its second call. */
function both(callback: () => void): () => void {
  let left = 2;
  return () => {
    if (--left === 0) callback();
  };
}

/** The idempotent methods of RFC 9110: the requests an {@link Http2Agent} multiplexes. */
const MULTIPLEXED = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * `clientTtl` of the Pools below: never reached by a connection's age (2^40 ms is 35 years),
 * only by a retired client's ttl of 1 (see {@link MultiplexPool}).
 */
const NEVER = 2 ** 40;

/** How undici words the error of a connection that received a GOAWAY. */
const GOAWAY = /GOAWAY/;

/** The clients whose connection negotiated h2 (by ALPN). */
const speaksH2 = new WeakSet<Client>();

/**
 * A Client whose number of requests in flight follows the protocol its connection negotiated.
 * undici's `pipelining` is 1 whatever the protocol unless set; unset, each protocol's own
 * default applies: 1 over HTTP/1.1 (and while the connection is being made), unbounded over h2.
 * Its connections that negotiate h2 are noted in {@link speaksH2}.
 */
function multiplexedClient(origin: URL | string, options: Client.Options): Client {
  const connect = options.connect as Connector;
  // The connector runs once the client exists (undici connects on its first request).
  const client: Client = new Client(
    origin,
    Object.assign({}, options, {
      connect: (opts: ConnectOptions, callback: ConnectCallback) =>
        connect(opts, (error, socket) => {
          if (socket) {
            if ((socket as { alpnProtocol?: unknown }).alpnProtocol === 'h2') speaksH2.add(client);
            else speaksH2.delete(client);
          }
          callback(error, socket);
        }),
    }),
  );
  (client as unknown as { pipelining: number | null }).pipelining = null;
  return client;
}

type ConnectOptions = Parameters<buildConnector.connector>[0];
type ConnectCallback = (error: Error | null, socket: Duplex | null) => void;
type Connector = (options: ConnectOptions, callback: ConnectCallback) => void;

/**
 * Takes `client` out of its Pool's rotation: it finishes the requests it carries, then closes.
 * Its ttl of 1 is, to undici's Pool, a client past its `clientTtl`: never dispatched to again.
 */
function retire(client: Dispatcher): void {
  (client as unknown as { ttl: number }).ttl = 1;
  client.close().catch(() => {});
}

/**
 * The Pool of one origin for {@link Http2Agent}: every request on one HTTP/2 connection, as a
 * browser or got does, and one request per connection over HTTP/1.1.
 * - undici's Pool hands a request to its first client that is not busy, and a client whose
 *   connection speaks h2 is never busy: it takes every request.
 * - A burst of requests before the first connection is up opens a connection for each (the
 *   protocol is not known yet, and a client is busy while it connects). Each that negotiates h2
 *   while another h2 connection of the origin is up is retired.
 * - When a connection of the origin receives a GOAWAY (as a server sends on a reload or a
 *   shutdown, or after its `keepalive_requests`), every other connection of the origin is
 *   retired: they most likely go to the same server process, which refuses new streams
 *   (`REFUSED_STREAM`) once its GOAWAY is on the way. undici fails the requests the GOAWAY
 *   caught, and dogged retries them: on a fresh connection, not on one about to go away. A
 *   connection that goes away otherwise (an idle timeout, a close) retires nothing.
 */
class MultiplexPool extends Pool {
  /** Its clients whose connection is up, not retired. */
  readonly #connected = new Set<Dispatcher>();

  constructor(origin: URL | string, options: Pool.Options) {
    super(origin, Object.assign({}, options, { clientTtl: NEVER, factory: multiplexedClient }));
    // Listeners of the Pool's own events, registered after the Pool's own (which stamps each
    // client's ttl on connect, and would overwrite a retirement).
    this.on('connect', (_origin, targets) => {
      const client = targets[1];
      if (!client) return;
      if (speaksH2.has(client as Client) && this.#anyH2()) retire(client);
      else this.#connected.add(client);
    });
    this.on('disconnect', (_origin, targets, error) => {
      const client = targets[1];
      if (client) this.#connected.delete(client);
      if (!GOAWAY.test(error?.message ?? '')) return;
      for (const other of this.#connected) retire(other);
      this.#connected.clear();
    });
  }

  #anyH2(): boolean {
    for (const client of this.#connected) if (speaksH2.has(client as Client)) return true;
    return false;
  }
}
