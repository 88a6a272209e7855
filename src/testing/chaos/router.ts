import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { type LongTimer, setLongTimeout } from '../../retry/timer.js';
import type { ChaosArrival, ChaosListenerName } from './arrival-log.js';
import type { ChaosContext } from './context.js';
import { ChaosRequestError, QueryReader } from './params.js';
import { sendJson } from './respond.js';
import { KEY_PARAM, matchPath, type Route } from './route.js';
import { type ChaosState, stateKey } from './state.js';

/** What every request handler shares: the state and facts about the running server. */
export interface ChaosRuntime {
  readonly routes: readonly Route[];
  readonly state: ChaosState;
  readonly seed: number;
  readonly maxBodyBytes: number;
  readonly origins: Record<ChaosListenerName, string>;
  readonly connectionIds: WeakMap<Socket, number>;
  now(): number;
  onArrival?: ((arrival: ChaosArrival) => void) | undefined;
}

const ignore = (): void => {};

function decodeSegments(pathname: string): string[] {
  try {
    return pathname.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    throw new ChaosRequestError(
      400,
      'bad_path',
      `the path ${pathname} is not valid percent-encoding`,
    );
  }
}

/** The request target as a URL; origin-form targets are never read as protocol-relative. */
function parseTarget(target: string): URL {
  try {
    return target.startsWith('/')
      ? new URL(`http://chaos.invalid${target}`)
      : new URL(target, 'http://chaos.invalid');
  } catch {
    throw new ChaosRequestError(400, 'bad_target', `cannot parse the request target ${target}`);
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.resume();
        reject(
          new ChaosRequestError(413, 'body_too_large', `the request body exceeds ${limit} bytes`),
        );
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onClose = (): void => {
      cleanup();
      reject(new ChaosRequestError(400, 'aborted', 'the client closed the request'));
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('close', onClose);
  });
}

function methodAllowed(route: Route, method: string): boolean {
  if (!route.methods) return true;
  return route.methods.includes(method) || (method === 'HEAD' && route.methods.includes('GET'));
}

function checkQueryNames(route: Route, search: URLSearchParams): void {
  if (route.anyQuery) return;
  const known = new Set([KEY_PARAM.name, ...(route.query ?? []).map((p) => p.name)]);
  for (const name of search.keys()) {
    if (!known.has(name)) {
      const accepted = [...known].sort().join(', ');
      throw new ChaosRequestError(
        400,
        'unknown_parameter',
        `${route.path} does not take a parameter named ${JSON.stringify(name)}; it accepts: ${accepted}`,
        name,
      );
    }
  }
}

function findRoute(
  routes: readonly Route[],
  segments: readonly string[],
): { route: Route; params: Record<string, string> } | undefined {
  for (const route of routes) {
    const params = matchPath(route.path, segments);
    if (params) return { route, params };
  }
  return undefined;
}

function keyOf(
  req: IncomingMessage,
  params: Record<string, string>,
  search: URLSearchParams,
): string | null {
  const header = req.headers['idempotency-key'];
  return params.key ?? search.get('key') ?? (typeof header === 'string' ? header : null);
}

/**
 * The node:http request listener of one chaos listener: logs the arrival, matches the route,
 * validates the query, reads the body and runs the handler. Any failure becomes a JSON error
 * response (or, once bytes were sent, a closed connection); nothing escapes to crash the
 * process.
 */
export function createRequestListener(
  runtime: ChaosRuntime,
  listener: ChaosListenerName,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    req.on('error', ignore);
    res.on('error', ignore);
    handle(runtime, listener, req, res).catch((error: unknown) => {
      if (error instanceof ChaosRequestError) {
        const closing = error.status === 413 ? { connection: 'close' } : {};
        sendJson(res, error.status, error.toJSON(), closing);
        return;
      }
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const message = error instanceof Error ? error.message : String(error);
      sendJson(res, 500, { error: 'internal_error', message });
    });
  };
}

/** Where a request is going, as far as it could be worked out before any validation. */
interface Arrival {
  readonly method: string;
  readonly target: string;
  readonly url: URL;
  readonly path: string;
  readonly found: { route: Route; params: Record<string, string> } | undefined;
  /** A percent-encoding error in the path, thrown only after the arrival is logged. */
  readonly pathError: unknown;
}

function locate(runtime: ChaosRuntime, req: IncomingMessage): Arrival {
  const method = (req.method ?? 'GET').toUpperCase();
  const target = req.url ?? '/';
  const url = parseTarget(target);
  let segments: string[] = [];
  let pathError: unknown;
  try {
    segments = decodeSegments(url.pathname);
  } catch (error) {
    pathError = error;
  }
  const found = pathError === undefined ? findRoute(runtime.routes, segments) : undefined;
  return { method, target, url, path: `/${segments.join('/')}`, found, pathError };
}

/** The key as the log keeps it: a key over 256 characters as its `sha256:` digest. */
function logKey(key: string | null): string | null {
  return key === null ? null : stateKey(key);
}

function record(
  runtime: ChaosRuntime,
  listener: ChaosListenerName,
  req: IncomingMessage,
  arrival: Arrival,
): void {
  if (arrival.found?.route.isControl) return;
  const entry = runtime.state.log.record({
    timeMs: runtime.now(),
    method: arrival.method,
    path: arrival.path,
    target: arrival.target,
    clientAddress: req.socket.remoteAddress ?? '',
    clientPort: req.socket.remotePort ?? 0,
    connectionId: runtime.connectionIds.get(req.socket) ?? 0,
    listener,
    key: logKey(keyOf(req, arrival.found?.params ?? {}, arrival.url.searchParams)),
  });
  runtime.onArrival?.(entry);
}

/** Throws the 404 / 405 / 400 a request deserves before its handler may run. */
function admit(
  arrival: Arrival,
  res: ServerResponse,
): { route: Route; params: Record<string, string> } {
  if (arrival.pathError !== undefined) throw arrival.pathError;
  if (!arrival.found) {
    throw new ChaosRequestError(
      404,
      'not_found',
      `no chaos endpoint at ${arrival.path}; GET / lists them all`,
    );
  }
  const { route } = arrival.found;
  if (!methodAllowed(route, arrival.method)) {
    const allowed = route.methods ?? [];
    res.setHeader('allow', allowed.join(', '));
    throw new ChaosRequestError(
      405,
      'method_not_allowed',
      `${route.path} accepts ${allowed.join(', ')}, not ${arrival.method}`,
    );
  }
  checkQueryNames(route, arrival.url.searchParams);
  return arrival.found;
}

/** Timers of one response, all cleared when it closes (finished, or the client went away). */
function responseTimers(res: ServerResponse): ChaosContext['later'] {
  const timers = new Set<LongTimer>();
  res.once('close', () => {
    for (const timer of timers) timer.clear();
    timers.clear();
  });
  return (ms, fn) => {
    if (res.destroyed) return;
    // A delay from the query (`/delay/3000000000`) is honoured, not fired after 1 ms.
    const timer = setLongTimeout(() => {
      timers.delete(timer);
      Promise.resolve()
        .then(fn)
        .catch(() => res.destroy());
    }, ms);
    // Pending faults never keep a closed server's process alive.
    timer.unref();
    timers.add(timer);
  };
}

async function handle(
  runtime: ChaosRuntime,
  listener: ChaosListenerName,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const arrival = locate(runtime, req);
  record(runtime, listener, req, arrival);
  const { route, params } = admit(arrival, res);
  const body = await readBody(req, runtime.maxBodyBytes);
  const ctx: ChaosContext = {
    req,
    res,
    socket: req.socket,
    method: arrival.method,
    path: arrival.path,
    target: arrival.target,
    pathParams: params,
    query: new QueryReader(arrival.url.searchParams),
    body,
    client: { address: req.socket.remoteAddress ?? '', port: req.socket.remotePort ?? 0 },
    connectionId: runtime.connectionIds.get(req.socket) ?? 0,
    listener,
    origins: runtime.origins,
    state: runtime.state,
    seed: runtime.seed,
    routes: runtime.routes,
    now: runtime.now,
    later: responseTimers(res),
    json(status, payload, headers) {
      sendJson(res, status, payload, headers);
    },
  };
  await route.handle(ctx);
}
