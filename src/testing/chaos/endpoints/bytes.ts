import { fillChaosBytes, MAX_CHAOS_BYTES } from '../bytes.js';
import type { ChaosContext } from '../context.js';
import { parseInteger } from '../params.js';
import { ifMatchPasses, ifRangePasses, type RangeDecision, resolveRange } from '../range.js';
import { closeConnection, writeFlushed, writeWithBackpressure } from '../respond.js';
import type { ParamSpec, Route } from '../route.js';

const CHUNK_BYTES = 64 * 1024;
const ETAG_MODES = ['strong', 'weak', 'none'] as const;

const BYTES_QUERY: readonly ParamSpec[] = [
  { name: 'seed', description: "Which byte stream; the server's --seed when omitted." },
  { name: 'etag', description: 'strong, weak or none.', default: 'strong' },
  {
    name: 'cut',
    description:
      'Drop the connection (FIN) after this many body bytes of the response. With `key`: only the first response for that key is cut.',
  },
  { name: 'key', description: 'Makes `cut` happen once per key (to test resumption).' },
];

function header(ctx: ChaosContext, name: string): string | undefined {
  const value = ctx.req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

async function streamBody(
  ctx: ChaosContext,
  seed: number,
  start: number,
  count: number,
  cutAfter: number | undefined,
): Promise<void> {
  const { res } = ctx;
  const limit = cutAfter ?? count;
  let sent = 0;
  while (sent < limit) {
    const size = Math.min(CHUNK_BYTES, limit - sent);
    const chunk = Buffer.allocUnsafe(size);
    fillChaosBytes(chunk, seed, start + sent);
    sent += size;
    const last = sent >= limit;
    const written =
      last && cutAfter !== undefined
        ? await writeFlushed(res, chunk)
        : await writeWithBackpressure(res, chunk);
    if (!written) return;
  }
  if (cutAfter === undefined) res.end();
  else closeConnection(ctx.socket);
}

async function serveBytes(ctx: ChaosContext, honoursRange: boolean): Promise<void> {
  const size = parseInteger('n', ctx.pathParams.n ?? '', { min: 0, max: MAX_CHAOS_BYTES });
  const seed = ctx.query.integer('seed', ctx.seed, { min: 0, max: 0xffff_ffff });
  const etagMode = ctx.query.oneOf('etag', ETAG_MODES, 'strong');
  const cut = ctx.query.optionalInteger('cut', { min: 0 });
  const key = ctx.query.string('key');
  const opaque = `"chaos-${seed}-${size}"`;
  const etag = etagMode === 'strong' ? opaque : etagMode === 'weak' ? `W/${opaque}` : undefined;
  const headers: Record<string, string | number> = {
    'content-type': 'application/octet-stream',
    'accept-ranges': honoursRange ? 'bytes' : 'none',
    ...(etag === undefined ? {} : { etag }),
  };

  let range: RangeDecision = { kind: 'full' };
  if (honoursRange) {
    const ifMatch = header(ctx, 'if-match');
    if (ifMatch !== undefined && !ifMatchPasses(ifMatch, etag)) {
      ctx.json(
        412,
        {
          error: 'precondition_failed',
          message: `If-Match ${ifMatch} does not strongly match the current ETag ${etag ?? '(none)'}`,
        },
        headers,
      );
      return;
    }
    range = resolveRange(header(ctx, 'range'), size);
    const ifRange = header(ctx, 'if-range');
    if (range.kind !== 'full' && ifRange !== undefined && !ifRangePasses(ifRange, etag)) {
      range = { kind: 'full' };
    }
  }
  if (range.kind === 'unsatisfiable') {
    ctx.json(
      416,
      { error: 'range_not_satisfiable', message: `the resource has ${size} bytes` },
      { ...headers, 'content-range': `bytes */${size}` },
    );
    return;
  }
  const start = range.kind === 'partial' ? range.start : 0;
  const count = range.kind === 'partial' ? range.end - range.start + 1 : size;
  if (range.kind === 'partial') headers['content-range'] = `bytes ${start}-${range.end}/${size}`;
  headers['content-length'] = count;

  const wantsCut = cut !== undefined && cut < count && ctx.method !== 'HEAD';
  const cutAfter = wantsCut && (key === undefined || ctx.state.claimCut(key)) ? cut : undefined;
  ctx.res.writeHead(range.kind === 'partial' ? 206 : 200, headers);
  if (ctx.method === 'HEAD') {
    ctx.res.end();
    return;
  }
  ctx.res.flushHeaders();
  await streamBody(ctx, seed, start, count, cutAfter);
}

/** `/bytes/:n`: deterministic bytes with Range, If-Range and If-Match support. */
export const bytesRoute: Route = {
  path: '/bytes/:n',
  summary:
    'n deterministic bytes (see chaosBytes()). Honours one Range (206 + Content-Range; 416 when out of range), If-Range, and If-Match with strong comparison (412 on mismatch).',
  pathParams: [{ name: 'n', description: 'Size in bytes, up to 1 GiB.' }],
  query: BYTES_QUERY,
  example: '/bytes/1024?seed=7&cut=300&key=dl-1',
  handle: (ctx) => serveBytes(ctx, true),
};

/** `/bytes-norange/:n`: the same bytes from a server that ignores Range. */
export const bytesNoRangeRoute: Route = {
  path: '/bytes-norange/:n',
  summary:
    'The same bytes as /bytes/:n from a naive server: Range, If-Range and If-Match are ignored (always 200 with the whole body; Accept-Ranges: none).',
  pathParams: [{ name: 'n', description: 'Size in bytes, up to 1 GiB.' }],
  query: BYTES_QUERY,
  example: '/bytes-norange/1024',
  handle: (ctx) => serveBytes(ctx, false),
};
