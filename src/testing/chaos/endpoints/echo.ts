import type { ChaosContext } from '../context.js';
import type { Route } from '../route.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** NUL and the C0 controls other than tab, LF, VT, FF, CR: text never contains them. */
function hasBinaryControl(body: Buffer): boolean {
  return body.some((byte) => byte < 0x09 || (byte > 0x0d && byte < 0x20));
}

function describeBody(body: Buffer, contentType: string | undefined): Record<string, unknown> {
  let text: string | undefined;
  try {
    text = hasBinaryControl(body) ? undefined : utf8.decode(body);
  } catch {
    text = undefined;
  }
  const described: Record<string, unknown> =
    text === undefined
      ? { body: body.toString('base64'), bodyEncoding: 'base64' }
      : { body: text, bodyEncoding: 'utf8' };
  described.bodyBytes = body.length;
  if (text !== undefined && contentType?.toLowerCase().includes('json')) {
    try {
      described.json = JSON.parse(text);
    } catch {
      // Not JSON after all: the raw text above is what the client wants to see.
    }
  }
  return described;
}

function queryObject(search: URLSearchParams): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name of new Set(search.keys())) {
    const values = search.getAll(name);
    out[name] = values.length === 1 ? (values[0] ?? '') : values;
  }
  return out;
}

/** The JSON `/echo` answers with: everything the server saw of the request. */
export function echoPayload(ctx: ChaosContext): Record<string, unknown> {
  const rawHeaders: [string, string][] = [];
  for (let i = 0; i + 1 < ctx.req.rawHeaders.length; i += 2) {
    rawHeaders.push([ctx.req.rawHeaders[i] ?? '', ctx.req.rawHeaders[i + 1] ?? '']);
  }
  return {
    method: ctx.method,
    path: ctx.path,
    target: ctx.target,
    query: queryObject(ctx.query.search),
    httpVersion: ctx.req.httpVersion,
    headers: ctx.req.headers,
    rawHeaders,
    ...describeBody(ctx.body, ctx.req.headers['content-type']),
    client: ctx.client,
    connectionId: ctx.connectionId,
    listener: ctx.listener,
  };
}

/** `/echo`: reflects the request. */
export const echoRoute: Route = {
  path: '/echo',
  summary:
    'Answers 200 with JSON describing the request: method, path, query, headers, body (base64 when binary), client address, connection id and listener. Any method, any query.',
  anyQuery: true,
  example: '/echo?x=1',
  handle(ctx) {
    ctx.json(200, echoPayload(ctx));
  },
};
