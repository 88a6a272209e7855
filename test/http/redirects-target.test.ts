import { describe, expect, it } from 'vitest';
import { NO_BODY, type PreparedBody } from '../../src/http/body.js';
import { InvalidResponseError } from '../../src/http/errors.js';
import { REDIRECT_STATUSES, redirectTarget, type Target } from '../../src/http/redirect.js';

const BODY: PreparedBody = Object.freeze({
  next: () => 'payload',
  replayable: true,
  consumed: () => false,
  contentType: 'text/plain',
});

const BODY_HEADERS = {
  'content-type': 'text/plain',
  'content-length': '7',
  'content-encoding': 'gzip',
  'content-language': 'en',
  'content-location': '/doc',
  'transfer-encoding': 'chunked',
};

function target(method: string, headers: Record<string, string> = {}): Target {
  return {
    method,
    origin: 'http://127.0.0.1:8080',
    path: '/from?q=1',
    url: 'http://127.0.0.1:8080/from?q=1',
    headers: { accept: '*/*', ...headers },
    body: method === 'GET' || method === 'HEAD' ? NO_BODY : BODY,
  };
}

const KEEP = ['authorization', 'cookie', 'proxy-authorization'];

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('did not throw');
}

describe('redirectTarget', () => {
  it('the redirect statuses', () => {
    expect([...REDIRECT_STATUSES]).toEqual([301, 302, 303, 307, 308]);
  });

  it('a relative Location resolves against the current URL; the query is kept', () => {
    expect(redirectTarget(target('GET'), 302, 'next?a=2', KEEP)).toEqual({
      method: 'GET',
      origin: 'http://127.0.0.1:8080',
      path: '/next?a=2',
      url: 'http://127.0.0.1:8080/next?a=2',
      headers: { accept: '*/*' },
      body: NO_BODY,
    });
    expect(redirectTarget(target('GET'), 302, '?b=3', KEEP)?.path).toBe('/from?b=3');
    // The fragment is not part of the path.
    expect(redirectTarget(target('GET'), 302, '/x#frag', KEEP)?.path).toBe('/x');
  });

  it('303 turns any method but HEAD into a GET without a body or its headers', () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const next = redirectTarget(target(method, BODY_HEADERS), 303, '/done', KEEP);
      expect(next?.method, method).toBe('GET');
      expect(next?.body).toBe(NO_BODY);
      expect(next?.headers).toEqual({ accept: '*/*' });
    }
    const head = redirectTarget(target('HEAD', { 'content-type': 'x/y' }), 303, '/done', KEEP);
    expect(head?.method).toBe('HEAD');
    expect(head?.headers).toEqual({ accept: '*/*', 'content-type': 'x/y' });
  });

  it('301 and 302 turn a POST into a GET, and keep other methods with their body', () => {
    for (const status of [301, 302]) {
      const post = redirectTarget(target('POST', BODY_HEADERS), status, '/p', KEEP);
      expect(post?.method).toBe('GET');
      expect(post?.body).toBe(NO_BODY);
      expect(post?.headers).toEqual({ accept: '*/*' });
      const put = redirectTarget(target('PUT', BODY_HEADERS), status, '/p', KEEP);
      expect(put?.method).toBe('PUT');
      expect(put?.body).toBe(BODY);
      expect(put?.headers).toEqual({ accept: '*/*', ...BODY_HEADERS });
    }
  });

  it('307 and 308 keep the method, the body and its headers', () => {
    for (const status of [307, 308]) {
      const next = redirectTarget(target('POST', BODY_HEADERS), status, '/p', KEEP);
      expect(next?.method).toBe('POST');
      expect(next?.body).toBe(BODY);
      expect(next?.headers).toEqual({ accept: '*/*', ...BODY_HEADERS });
    }
  });

  it('the headers are a copy: the current target is left as it was', () => {
    const current = target('POST', { ...BODY_HEADERS, authorization: 'Bearer t' });
    const before = structuredClone(current.headers);
    redirectTarget(current, 303, 'http://other.example/', KEEP);
    expect(current.headers).toEqual(before);
  });

  it('another origin drops the listed headers, whatever their case in the list', () => {
    const current = target('GET', { authorization: 'Bearer t', cookie: 'a=1', 'x-key': 'k' });
    const next = redirectTarget(current, 302, 'https://127.0.0.1:8080/p', [
      'Authorization',
      'COOKIE',
    ]);
    expect(next?.origin).toBe('https://127.0.0.1:8080');
    expect(next?.headers).toEqual({ accept: '*/*', 'x-key': 'k' });
    const port = redirectTarget(current, 302, 'http://127.0.0.1:8081/p', KEEP);
    expect(port?.headers).toEqual({ accept: '*/*', 'x-key': 'k' });
    // The same origin keeps them all.
    const same = redirectTarget(current, 302, 'http://127.0.0.1:8080/p', KEEP);
    expect(same?.headers).toEqual({
      accept: '*/*',
      authorization: 'Bearer t',
      cookie: 'a=1',
      'x-key': 'k',
    });
  });

  it('credentials in the Location become Basic auth and stay out of the URL', () => {
    const next = redirectTarget(target('GET'), 302, 'http://us%20er:p%40ss@127.0.0.1:8080/a', KEEP);
    expect(next?.headers.authorization).toBe(
      `Basic ${Buffer.from('us er:p@ss').toString('base64')}`,
    );
    expect(next?.url).toBe('http://***@127.0.0.1:8080/a');
    expect(next?.path).toBe('/a');
    // They replace an Authorization header even on another origin.
    const cross = redirectTarget(
      target('GET', { authorization: 'Bearer old' }),
      302,
      'http://u:p@127.0.0.2/a',
      KEEP,
    );
    expect(cross?.headers.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
  });

  it('a Location that is not an http(s) URL gives no target', () => {
    expect(redirectTarget(target('GET'), 302, 'ftp://127.0.0.1/f', KEEP)).toBeUndefined();
    expect(redirectTarget(target('GET'), 302, 'javascript:alert(1)', KEEP)).toBeUndefined();
    expect(redirectTarget(target('GET'), 302, 'http://[zz', KEEP)).toBeUndefined();
    expect(redirectTarget(target('GET'), 302, 'https://127.0.0.1/s', KEEP)?.origin).toBe(
      'https://127.0.0.1',
    );
  });

  it('a host name DNS cannot resolve is an InvalidResponseError that names the request', () => {
    const location = `http://${'a'.repeat(64)}.example/`;
    const error = thrownBy(() =>
      redirectTarget(target('GET'), 301, location, KEEP),
    ) as InvalidResponseError;
    expect(error).toBeInstanceOf(InvalidResponseError);
    expect(error.message).toBe(
      `GET http://127.0.0.1:8080/from?q=1 was redirected (301) to a Location that cannot be fetched: its host name has a label of 64 characters (DNS allows 63); the Location was ${JSON.stringify(location)}`,
    );
    expect(error.method).toBe('GET');
    expect(error.url).toBe('http://127.0.0.1:8080/from?q=1');
  });

  it('credentials that are not valid percent-encoding are an InvalidResponseError', () => {
    const error = thrownBy(() =>
      redirectTarget(target('PUT'), 307, 'http://u:%zz@127.0.0.1/a', KEEP),
    ) as InvalidResponseError;
    expect(error).toBeInstanceOf(InvalidResponseError);
    expect(error.message).toBe(
      'PUT http://127.0.0.1:8080/from?q=1 was redirected (307) to a Location that cannot be fetched: its user name or password is not valid percent-encoding; the Location was "http://***@127.0.0.1/a"',
    );
  });

  it('a long Location is clipped in the message', () => {
    const location = `http://${'a'.repeat(300)}/`;
    const error = thrownBy(() =>
      redirectTarget(target('GET'), 302, location, KEEP),
    ) as InvalidResponseError;
    expect(error.message).toContain('(308 chars)');
  });
});
