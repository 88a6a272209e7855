import { isAbortError } from '../retry/transient.js';
import {
  ConnectError,
  ConnectionResetError,
  ConnectTimeoutError,
  DoggedError,
  IncompleteBodyError,
  NameResolutionError,
  ReadTimeoutError,
  type RequestPhase,
  TLSError,
} from './errors.js';

/** What the caller knows about the failed request. */
export interface FailureContext {
  method?: string;
  url?: string;
  /** Known phase; `body` when the failure happened while reading the response body. */
  phase?: RequestPhase;
  attempts?: number;
  reusedSocket?: boolean;
}

const NAME_RESOLUTION = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA']);
const CONNECT = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'EADDRINUSE',
]);
const CONNECT_TIMEOUT = new Set(['UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT', 'ESOCKETTIMEDOUT']);
const DROPPED = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ENETRESET',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED_BY_PEER',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);
const TLS_CODES = new Set([
  'EPROTO',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Maps a raw Node or undici failure to dogged's taxonomy. Returns `undefined` for aborts (the
 * caller rethrows the signal's reason) and the error itself when it is not a network failure
 * (a programming error is never dressed up as a retriable one).
 */
export function classifyError(error: unknown, context: FailureContext = {}): unknown {
  if (error instanceof DoggedError) return error;
  if (
    isAbortError(error) ||
    codeOf(error) === 'UND_ERR_ABORTED' ||
    codeOf(error) === 'UND_ERR_ABORT'
  )
    return undefined;
  const code = codeOf(error);
  if (code === undefined) {
    // undici's fetch wraps network failures in `TypeError: fetch failed`.
    const cause = (error as { cause?: unknown } | null)?.cause;
    if (error instanceof TypeError && error.message === 'fetch failed' && cause !== undefined)
      return classifyError(cause, context);
    return error;
  }
  const base = {
    cause: error,
    ...(context.method !== undefined && { method: context.method }),
    ...(context.url !== undefined && { url: context.url }),
    ...(context.attempts !== undefined && { attempts: context.attempts }),
  };
  const inBody = context.phase === 'body';

  if (NAME_RESOLUTION.has(code))
    return new NameResolutionError(`could not resolve the host name: ${messageOf(error)}`, base);
  if (CONNECT.has(code)) return new ConnectError(`could not connect: ${messageOf(error)}`, base);
  if (CONNECT_TIMEOUT.has(code) && !inBody)
    return new ConnectTimeoutError(`connect timed out: ${messageOf(error)}`, base);
  if (code === 'UND_ERR_HEADERS_TIMEOUT') {
    return new ReadTimeoutError(`no response head within the read timeout`, {
      ...base,
      phase: 'headers',
    });
  }
  if (code === 'UND_ERR_BODY_TIMEOUT' || (inBody && CONNECT_TIMEOUT.has(code))) {
    return new ReadTimeoutError(`the response body stalled past the read timeout`, {
      ...base,
      phase: 'body',
    });
  }
  if (DROPPED.has(code) || code.startsWith('HPE_')) {
    if (inBody || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
      return new IncompleteBodyError(`the response body was cut short: ${messageOf(error)}`, base);
    }
    return new ConnectionResetError(
      `the connection dropped before a complete response: ${messageOf(error)}`,
      {
        ...base,
        ...(context.reusedSocket !== undefined && { reusedSocket: context.reusedSocket }),
      },
    );
  }
  if (
    TLS_CODES.has(code) ||
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_SSL_') ||
    code.startsWith('CERT_')
  ) {
    return new TLSError(`TLS failed: ${messageOf(error)}`, base);
  }
  return error;
}
