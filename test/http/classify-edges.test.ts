import { describe, expect, it } from 'vitest';
import { markProxyFailure } from '../../src/http/classify.js';
import {
  ConnectError,
  ConnectionResetError,
  ConnectTimeoutError,
  classifyError,
  type DoggedError,
  HeadersTooLargeError,
  IncompleteBodyError,
  NameResolutionError,
  ProxyAuthError,
  ProxyError,
  ReadTimeoutError,
  TLSError,
} from '../../src/http/index.js';

const raw = (code: string, message = `raw ${code}`) => Object.assign(new Error(message), { code });

/** The class, message and the fields that matter of what `classifyError` returned. */
function shape(error: unknown) {
  const e = error as DoggedError & {
    reusedSocket?: boolean;
    proxy?: string;
    proxyStatus?: number;
  };
  return {
    name: e.constructor.name,
    message: e.message,
    phase: e.phase,
    method: e.method,
    url: e.url,
    attempts: e.attempts,
    ...('reusedSocket' in e && { reusedSocket: e.reusedSocket }),
    ...(e instanceof ProxyError && { proxy: e.proxy, proxyStatus: e.proxyStatus }),
  };
}

describe('classifyError: every branch, with its exact message', () => {
  it.each([
    ['ENOTFOUND', NameResolutionError, 'could not resolve the host name: raw ENOTFOUND', 'connect'],
    [
      'EAI_NONAME',
      NameResolutionError,
      'could not resolve the host name: raw EAI_NONAME',
      'connect',
    ],
    ['EAI_FAIL', NameResolutionError, 'could not resolve the host name: raw EAI_FAIL', 'connect'],
    [
      'EAI_NODATA',
      NameResolutionError,
      'could not resolve the host name: raw EAI_NODATA',
      'connect',
    ],
    ['EHOSTDOWN', ConnectError, 'could not connect: raw EHOSTDOWN', 'connect'],
    ['ENETDOWN', ConnectError, 'could not connect: raw ENETDOWN', 'connect'],
    ['EADDRNOTAVAIL', ConnectError, 'could not connect: raw EADDRNOTAVAIL', 'connect'],
    ['EADDRINUSE', ConnectError, 'could not connect: raw EADDRINUSE', 'connect'],
    ['ESOCKETTIMEDOUT', ConnectTimeoutError, 'connect timed out: raw ESOCKETTIMEDOUT', 'connect'],
    [
      'UND_ERR_HEADERS_TIMEOUT',
      ReadTimeoutError,
      'no response head within the read timeout',
      'headers',
    ],
    [
      'UND_ERR_BODY_TIMEOUT',
      ReadTimeoutError,
      'the response body stalled past the read timeout',
      'body',
    ],
    [
      'UND_ERR_HEADERS_OVERFLOW',
      HeadersTooLargeError,
      'the response head is larger than the client accepts (a header flood): raw UND_ERR_HEADERS_OVERFLOW',
      'headers',
    ],
    [
      'HPE_HEADER_OVERFLOW',
      HeadersTooLargeError,
      'the response head is larger than the client accepts (a header flood): raw HPE_HEADER_OVERFLOW',
      'headers',
    ],
    [
      'ECONNABORTED',
      ConnectionResetError,
      'the connection dropped before a complete response: raw ECONNABORTED',
      'headers',
    ],
    [
      'ENETRESET',
      ConnectionResetError,
      'the connection dropped before a complete response: raw ENETRESET',
      'headers',
    ],
    [
      'UND_ERR_CLOSED_BY_PEER',
      ConnectionResetError,
      'the connection dropped before a complete response: raw UND_ERR_CLOSED_BY_PEER',
      'headers',
    ],
    [
      'ERR_STREAM_PREMATURE_CLOSE',
      ConnectionResetError,
      'the connection dropped before a complete response: raw ERR_STREAM_PREMATURE_CLOSE',
      'headers',
    ],
    [
      'HPE_INVALID_CONSTANT',
      ConnectionResetError,
      'the connection dropped before a complete response: raw HPE_INVALID_CONSTANT',
      'headers',
    ],
    [
      'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
      IncompleteBodyError,
      'the response body was cut short: raw UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
      'body',
    ],
    ['EPROTO', TLSError, 'TLS failed: raw EPROTO', 'connect'],
    ['CERT_HAS_EXPIRED', TLSError, 'TLS failed: raw CERT_HAS_EXPIRED', 'connect'],
    ['HOSTNAME_MISMATCH', TLSError, 'TLS failed: raw HOSTNAME_MISMATCH', 'connect'],
    [
      'ERR_TLS_CERT_ALTNAME_INVALID',
      TLSError,
      'TLS failed: raw ERR_TLS_CERT_ALTNAME_INVALID',
      'connect',
    ],
    [
      'ERR_SSL_WRONG_VERSION_NUMBER',
      TLSError,
      'TLS failed: raw ERR_SSL_WRONG_VERSION_NUMBER',
      'connect',
    ],
    ['CERT_SIGNATURE_FAILURE', TLSError, 'TLS failed: raw CERT_SIGNATURE_FAILURE', 'connect'],
  ] as const)('%s becomes %s', (code, Class, message, phase) => {
    const error = classifyError(raw(code)) as DoggedError;
    expect(error).toBeInstanceOf(Class);
    expect(error.constructor).toBe(Class);
    expect(error.message).toBe(message);
    expect(error.phase).toBe(phase);
    expect((error.cause as { code: string }).code).toBe(code);
  });

  it('without a context, no method, url or attempts are made up', () => {
    expect(shape(classifyError(raw('ECONNREFUSED')))).toEqual({
      name: 'ConnectError',
      message: 'could not connect: raw ECONNREFUSED',
      phase: 'connect',
      method: undefined,
      url: undefined,
      attempts: 1,
    });
  });

  it('carries the method, url and attempts of the context', () => {
    const error = classifyError(raw('ECONNREFUSED'), {
      method: 'PUT',
      url: 'http://127.0.0.1:9/a',
      attempts: 3,
    }) as DoggedError;
    expect(error.method).toBe('PUT');
    expect(error.url).toBe('http://127.0.0.1:9/a');
    expect(error.attempts).toBe(3);
  });

  it('a connect timeout while reading the body is a read timeout of the body', () => {
    for (const code of ['ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ESOCKETTIMEDOUT']) {
      const error = classifyError(raw(code), { phase: 'body' }) as DoggedError;
      expect(error).toBeInstanceOf(ReadTimeoutError);
      expect(error.message).toBe('the response body stalled past the read timeout');
      expect(error.phase).toBe('body');
    }
    // The headers phase is not the body: still a connect timeout.
    expect(classifyError(raw('ETIMEDOUT'), { phase: 'headers' })).toBeInstanceOf(
      ConnectTimeoutError,
    );
    // A body timeout stays one whatever the phase.
    expect(
      (classifyError(raw('UND_ERR_BODY_TIMEOUT'), { phase: 'headers' }) as DoggedError).phase,
    ).toBe('body');
    // A headers timeout in the body phase keeps the headers phase.
    expect(
      (classifyError(raw('UND_ERR_HEADERS_TIMEOUT'), { phase: 'body' }) as DoggedError).phase,
    ).toBe('headers');
  });

  it('a drop in the body phase is an incomplete body, parser errors included', () => {
    for (const code of ['EPIPE', 'ECONNABORTED', 'HPE_INVALID_CHUNK_SIZE']) {
      const error = classifyError(raw(code), { phase: 'body' }) as DoggedError;
      expect(error.constructor).toBe(IncompleteBodyError);
      expect(error.message).toBe(`the response body was cut short: raw ${code}`);
      expect(error.phase).toBe('body');
    }
  });

  it('a dropped connection says whether the socket was reused, false by default', () => {
    const reused = classifyError(raw('ECONNRESET'), { reusedSocket: true }) as ConnectionResetError;
    expect(reused.reusedSocket).toBe(true);
    const fresh = classifyError(raw('ECONNRESET'), { reusedSocket: false }) as ConnectionResetError;
    expect(fresh.reusedSocket).toBe(false);
    const unknown = classifyError(raw('ECONNRESET')) as ConnectionResetError;
    expect(unknown.reusedSocket).toBe(false);
    expect(Object.hasOwn(unknown, 'reusedSocket')).toBe(true);
  });

  it('codes that are not network failures are returned as they are', () => {
    for (const code of ['EACCES', 'ERR_TLSX', 'CER_X', 'HP_X', 'ERR_SSLX', 'ETIMEDOUTX']) {
      const error = raw(code);
      expect(classifyError(error)).toBe(error);
      expect(classifyError(error, { phase: 'body' })).toBe(error);
    }
  });

  it('a non-string code is no code', () => {
    const error = Object.assign(new Error('numeric'), { code: 104 });
    expect(classifyError(error)).toBe(error);
  });

  it('null, undefined and strings go through untouched', () => {
    expect(classifyError(null)).toBeNull();
    expect(classifyError(undefined)).toBeUndefined();
    expect(classifyError('ECONNRESET')).toBe('ECONNRESET');
  });

  it('the message of a thrown non-Error is its string form', () => {
    const thrown = { code: 'ECONNREFUSED', toString: () => 'plain object' };
    expect((classifyError(thrown) as DoggedError).message).toBe('could not connect: plain object');
  });

  it('a DoggedError is returned as it is, even with a network code', () => {
    const error = Object.assign(new ConnectError('mine'), { cause: raw('EPROTO') });
    expect(classifyError(error)).toBe(error);
  });

  it('both spellings of undici abort codes are aborts', () => {
    expect(classifyError(raw('UND_ERR_ABORT'))).toBeUndefined();
    expect(classifyError(raw('UND_ERR_ABORTED'))).toBeUndefined();
    expect(classifyError(raw('ABORT_ERR'))).toBeUndefined();
  });

  it("only a TypeError('fetch failed') with a cause is unwrapped", () => {
    const noCause = new TypeError('fetch failed');
    expect(classifyError(noCause)).toBe(noCause);
    const otherMessage = new TypeError('fetch broke', { cause: raw('ECONNREFUSED') });
    expect(classifyError(otherMessage)).toBe(otherMessage);
    const notTypeError = new Error('fetch failed', { cause: raw('ECONNREFUSED') });
    expect(classifyError(notTypeError)).toBe(notTypeError);
    const unwrapped = classifyError(new TypeError('fetch failed', { cause: raw('EPIPE') }), {
      phase: 'body',
      method: 'GET',
    }) as DoggedError;
    expect(unwrapped).toBeInstanceOf(IncompleteBodyError);
    expect(unwrapped.method).toBe('GET');
  });

  it('an HTTP/2 stream error is classified by the HTTP/2 rules', () => {
    const error = classifyError(
      raw('ERR_HTTP2_STREAM_ERROR', 'Stream closed with error code NGHTTP2_INTERNAL_ERROR'),
      {
        phase: 'body',
      },
    );
    expect(error).toBeInstanceOf(IncompleteBodyError);
  });
});

describe('classifyError: failures of the proxy', () => {
  const proxy = 'http://127.0.0.1:3128';
  const tunnel = (status: number) =>
    Object.assign(new Error(`Proxy response (${status}) !== 200 when HTTP Tunneling`), {
      code: 'UND_ERR_ABORTED',
      name: 'AbortError',
    });

  it('a 407 answer to CONNECT is a ProxyAuthError, before the abort check', () => {
    expect(
      shape(classifyError(tunnel(407), { proxy, method: 'GET', url: 'http://t/x', attempts: 2 })),
    ).toEqual({
      name: 'ProxyAuthError',
      message: `proxy ${proxy} refused the credentials (answered CONNECT with 407); check the user and password in the proxy URL`,
      phase: 'connect',
      method: 'GET',
      url: 'http://t/x',
      attempts: 2,
      proxy,
      proxyStatus: 407,
    });
  });

  it('a 401 answer is a ProxyAuthError too; without a known proxy it is "the proxy"', () => {
    expect(shape(classifyError(tunnel(401)))).toEqual({
      name: 'ProxyAuthError',
      message:
        'the proxy refused the credentials (answered CONNECT with 401); check the user and password in the proxy URL',
      phase: 'connect',
      method: undefined,
      url: undefined,
      attempts: 1,
      proxy: undefined,
      proxyStatus: 401,
    });
  });

  it('another answer to CONNECT is a ProxyError with its status', () => {
    const error = classifyError(tunnel(502), { proxy }) as ProxyError;
    expect(error.constructor).toBe(ProxyError);
    expect(error.message).toBe(
      `proxy ${proxy} could not open a tunnel to the target (answered CONNECT with 502)`,
    );
    expect(error.proxyStatus).toBe(502);
    expect(error.retriable).toBe(true);
    expect(error.cause).toBeInstanceOf(Error);
  });

  it("undici's 407 from an invalid-argument error is a ProxyAuthError; other messages are not", () => {
    const refused = raw('UND_ERR_INVALID_ARG', 'Proxy Authentication Required (407)');
    const error = classifyError(refused, { proxy }) as ProxyAuthError;
    expect(error).toBeInstanceOf(ProxyAuthError);
    expect(error.proxyStatus).toBe(407);
    const other = raw('UND_ERR_INVALID_ARG', 'invalid method');
    expect(classifyError(other, { proxy })).toBe(other);
    const sameWordsOtherCode = raw('EWEIRD', 'Proxy Authentication Required (407)');
    expect(classifyError(sameWordsOtherCode, { proxy })).toBe(sameWordsOtherCode);
  });

  it('a marked failure is described by its code', () => {
    const cases: [unknown, string][] = [
      [raw('ECONNREFUSED', 'refused'), `could not connect to proxy ${proxy}: refused`],
      [raw('ENOTFOUND', 'no such host'), `could not connect to proxy ${proxy}: no such host`],
      [raw('UND_ERR_CONNECT_TIMEOUT', 'slow'), `proxy ${proxy} could not be reached in time: slow`],
      [
        raw('UND_ERR_HEADERS_TIMEOUT', 'no head'),
        `proxy ${proxy} did not answer CONNECT within the connect timeout`,
      ],
      [raw('ECONNRESET', 'reset'), `proxy ${proxy} failed: reset`],
      [new Error('no code'), `proxy ${proxy} failed: no code`],
    ];
    for (const [error, message] of cases) {
      const classified = classifyError(markProxyFailure(error), { proxy }) as ProxyError;
      expect(classified.constructor).toBe(ProxyError);
      expect(classified.message).toBe(message);
      expect(classified.proxyStatus).toBeUndefined();
      expect(classified.proxy).toBe(proxy);
      expect(classified.phase).toBe('connect');
    }
  });

  it('a marked failure with a non-string code is a plain proxy failure', () => {
    const error = Object.assign(new Error('odd'), { code: 61 });
    expect((classifyError(markProxyFailure(error)) as ProxyError).message).toBe(
      'the proxy failed: odd',
    );
  });

  it('a TLS failure towards the proxy is a ProxyError without marking', () => {
    const error = classifyError(raw('UND_ERR_PRX_TLS', 'bad cert'), { proxy }) as ProxyError;
    expect(error.constructor).toBe(ProxyError);
    expect(error.message).toBe(`proxy ${proxy} failed: bad cert`);
  });

  it('markProxyFailure returns what it was given and marks only extensible objects', () => {
    const error = raw('ECONNREFUSED');
    expect(markProxyFailure(error)).toBe(error);
    expect(classifyError(error)).toBeInstanceOf(ProxyError);
    // The mark is hidden: not enumerable, so it does not show up in logs.
    expect(Object.keys(error)).toEqual(['code']);

    const frozen = Object.freeze(raw('ECONNREFUSED'));
    expect(markProxyFailure(frozen)).toBe(frozen);
    expect((classifyError(frozen) as DoggedError).constructor).toBe(ConnectError);

    expect(markProxyFailure(null)).toBeNull();
    expect(markProxyFailure('text')).toBe('text');
    expect(markProxyFailure(undefined)).toBeUndefined();
  });

  it('markProxyFailure leaves a function unmarked (only objects are errors to mark)', () => {
    const fn = Object.assign(() => undefined, { code: 'ECONNREFUSED' });
    expect(markProxyFailure(fn)).toBe(fn);
    expect(Object.getOwnPropertySymbols(fn)).toEqual([]);
  });

  it('a dogged error is returned as it is, even when marked as a proxy failure', () => {
    const error = new ConnectError('could not connect: refused', { method: 'GET' });
    markProxyFailure(error);
    expect(classifyError(error, { proxy })).toBe(error);
  });

  it('an unmarked error is not a proxy failure, even with the proxy in the context', () => {
    expect((classifyError(raw('ECONNREFUSED'), { proxy }) as DoggedError).constructor).toBe(
      ConnectError,
    );
  });
});
