import { describe, expect, it } from 'vitest';
import {
  ConnectError,
  ConnectionResetError,
  ConnectTimeoutError,
  classifyError,
  DoggedError,
  HTTPStatusError,
  IncompleteBodyError,
  NameResolutionError,
  ReadTimeoutError,
  RetryAfterTooLongError,
  redactUrl,
  TLSError,
} from '../../src/http/index.js';
import { isTransientError } from '../../src/retry/index.js';

const raw = (code: string, message = `raw ${code}`) => Object.assign(new Error(message), { code });
const ctx = { method: 'GET', url: 'http://127.0.0.1:1/x' };

describe('the error taxonomy', () => {
  it.each([
    ['ECONNREFUSED', ConnectError, 'connect'],
    ['EHOSTUNREACH', ConnectError, 'connect'],
    ['ENETUNREACH', ConnectError, 'connect'],
    ['ENOTFOUND', NameResolutionError, 'connect'],
    ['EAI_AGAIN', NameResolutionError, 'connect'],
    ['UND_ERR_CONNECT_TIMEOUT', ConnectTimeoutError, 'connect'],
    ['ETIMEDOUT', ConnectTimeoutError, 'connect'],
    ['UND_ERR_HEADERS_TIMEOUT', ReadTimeoutError, 'headers'],
    ['UND_ERR_BODY_TIMEOUT', ReadTimeoutError, 'body'],
    ['ECONNRESET', ConnectionResetError, 'headers'],
    ['EPIPE', ConnectionResetError, 'headers'],
    ['UND_ERR_SOCKET', ConnectionResetError, 'headers'],
    ['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', IncompleteBodyError, 'body'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', TLSError, 'connect'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', TLSError, 'connect'],
  ] as const)('%s becomes %s (%s phase)', (code, Class, phase) => {
    const error = classifyError(raw(code), ctx) as DoggedError;
    expect(error).toBeInstanceOf(Class);
    expect(error.phase).toBe(phase);
    expect(error.method).toBe('GET');
    expect(error.url).toBe('http://127.0.0.1:1/x');
    expect((error.cause as { code: string }).code).toBe(code);
    expect(error.retriable).toBe(Class !== TLSError);
    expect(error.mayHaveReachedServer).toBe(phase !== 'connect');
  });

  it('a drop while reading the body is an IncompleteBodyError', () => {
    expect(classifyError(raw('ECONNRESET'), { ...ctx, phase: 'body' })).toBeInstanceOf(
      IncompleteBodyError,
    );
    expect(classifyError(raw('UND_ERR_SOCKET'), { ...ctx, phase: 'body' })).toBeInstanceOf(
      IncompleteBodyError,
    );
  });

  it('leaves aborts and programming errors alone', () => {
    expect(classifyError(AbortSignal.abort().reason)).toBeUndefined();
    expect(classifyError(raw('UND_ERR_ABORTED'))).toBeUndefined();
    const bug = new TypeError('x is not a function');
    expect(classifyError(bug)).toBe(bug);
    const unknown = raw('EWEIRD');
    expect(classifyError(unknown)).toBe(unknown);
  });

  it("unwraps fetch's TypeError('fetch failed')", () => {
    expect(
      classifyError(new TypeError('fetch failed', { cause: raw('ECONNREFUSED') })),
    ).toBeInstanceOf(ConnectError);
  });

  it('errors are constructible by users, and the engine treats them as transient', () => {
    const e = new ReadTimeoutError('simulated slow server', {
      method: 'GET',
      url: 'http://u:p@127.0.0.1/x',
      cause: raw('X'),
    });
    expect(e.url).toBe('http://***@127.0.0.1/x');
    expect(e.code).toBe('ERR_DOGGED_READ_TIMEOUT');
    expect(e.attempts).toBe(1);
    expect(e).toBeInstanceOf(DoggedError);
    expect(isTransientError(e)).toBe(true);
    expect(isTransientError(new TLSError('bad cert'))).toBe(false);
    expect(new HTTPStatusError('x', { status: 503 }).retriable).toBe(true);
    expect(new HTTPStatusError('x', { status: 404 }).retriable).toBe(false);
    expect(new ConnectionResetError('x')).toBeInstanceOf(ConnectError);
  });

  it('RetryAfterTooLongError says what to do', () => {
    const e = new RetryAfterTooLongError({ retryAfterMs: 3_600_000, maxRetryAfterMs: 120_000 });
    expect(e.message).toBe(
      'Retry-After of 60 min exceeds maxRetryAfter 2 min; raise maxRetryAfter or schedule the request later',
    );
    expect(e.retriable).toBe(false);
  });

  it('redactUrl replaces credentials only, with ***@', () => {
    expect(redactUrl('http://user:secret@127.0.0.1:8080/a?b=1')).toBe(
      'http://***@127.0.0.1:8080/a?b=1',
    );
    expect(redactUrl('http://127.0.0.1/a@b')).toBe('http://127.0.0.1/a@b');
    expect(redactUrl(undefined)).toBeUndefined();
  });
});
