import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ChaosListenerName } from './arrival-log.js';
import type { QueryReader } from './params.js';
import type { Route } from './route.js';
import type { ChaosState } from './state.js';

/** Everything an endpoint handler gets for one request. */
export interface ChaosContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly socket: Socket;
  readonly method: string;
  /** The decoded path, without the query string. */
  readonly path: string;
  /** The request target as sent. */
  readonly target: string;
  readonly pathParams: Readonly<Record<string, string>>;
  readonly query: QueryReader;
  /** The whole request body (read before the handler runs). */
  readonly body: Buffer;
  readonly client: { readonly address: string; readonly port: number };
  readonly connectionId: number;
  readonly listener: ChaosListenerName;
  /** `http://host:port` of each listener, for absolute and cross-origin redirects. */
  readonly origins: Readonly<Record<ChaosListenerName, string>>;
  readonly state: ChaosState;
  /** The server's default seed. */
  readonly seed: number;
  readonly routes: readonly Route[];
  /** Monotonic milliseconds since the server started. */
  now(): number;
  /** Runs `fn` after `ms` unless the response closes first (the timer is then cleared). */
  later(ms: number, fn: () => void | Promise<void>): void;
  /** Sends a JSON response (nothing when the response already started or closed). */
  json(status: number, body: unknown, headers?: OutgoingHttpHeaders): void;
}
