import { describe, expect, it } from 'vitest';
import { primeRedactor, redactedArgs, redactor } from '../../src/cli/redaction.js';
import {
  DoggedError,
  InvalidURLError,
  ProxyPool,
  Redactor,
  redactHeaders,
  redactText,
  redactUrl,
  Session,
} from '../../src/index.js';

/** Every string here must disappear from whatever is shown. */
const PASSWORDS = ['Pa55#w0rd', 'Pa55/w0rd', 'Pa55?w0rd', 'Pa55@w0rd', '12#w0rd'];

describe('redactUrl: URL credentials become ***@', () => {
  it('replaces the credentials of URLs that parse, and keeps the rest', () => {
    expect(redactUrl('http://user:secret@127.0.0.1:8080/a?b=1')).toBe(
      'http://***@127.0.0.1:8080/a?b=1',
    );
    expect(redactUrl('redis://:secret@127.0.0.1:6379/0')).toBe('redis://***@127.0.0.1:6379/0');
    expect(redactUrl('https://token@example.com/')).toBe('https://***@example.com/');
    expect(redactUrl(new URL('http://u:p@h/'))).toBe('http://***@h/');
    expect(redactUrl('http://127.0.0.1/a@b')).toBe('http://127.0.0.1/a@b');
    expect(redactUrl('http://127.0.0.1/?to=a@b.example')).toBe('http://127.0.0.1/?to=a@b.example');
    expect(redactUrl(undefined)).toBeUndefined();
  });

  it('cuts strings that only look like URLs at their last @ (passwords with / # ? @)', () => {
    expect(redactUrl('redis://:Pa55#w0rd@127.0.0.1:6379')).toBe('redis://***@127.0.0.1:6379');
    expect(redactUrl('postgres://u:Pa55/w0rd@127.0.0.1/test')).toBe(
      'postgres://***@127.0.0.1/test',
    );
    expect(redactUrl('http://u:Pa55?w0rd@127.0.0.1:3128')).toBe('http://***@127.0.0.1:3128');
    // Parses as host u, port 12, fragment "w0rd@host": the digits were a password all along.
    expect(redactUrl('redis://u:12#w0rd@127.0.0.1:6379')).toBe('redis://***@127.0.0.1:6379');
    expect(redactUrl('u:Pa55/w0rd@127.0.0.1:3128')).toBe('***@127.0.0.1:3128');
    for (const password of PASSWORDS)
      for (const url of [
        `redis://:${password}@127.0.0.1:6379`,
        `http://user:${password}@127.0.0.1:3128`,
        `postgres://postgres:${password}@127.0.0.1:5432/test`,
      ])
        expect(redactUrl(url)).not.toContain(password);
  });
});

describe('redactText and Redactor', () => {
  it('redacts every URL in a text, parseable or not, and secret header values', () => {
    const text = redactText(
      'GET http://u:S3cret@127.0.0.1/a failed; --queue "redis://:Pa55#w0rd@10.0.0.5:6379" refused; Authorization: Bearer T0ken',
    );
    expect(text).toBe(
      'GET http://***@127.0.0.1/a failed; --queue "redis://***@10.0.0.5:6379" refused; Authorization: ***',
    );
    expect(redactText('{"url":"http://h/","headers":{"Cookie":"sid=abc","x":"1"}}')).toBe(
      '{"url":"http://h/","headers":{"Cookie":"***","x":"1"}}',
    );
    expect(redactText('proxy-authorization=Basic dXNlcjpwYXNz')).toBe('proxy-authorization=***');
    expect(redactText('the cookies option, set-cookie headers')).toBe(
      'the cookies option, set-cookie headers',
    );
  });

  it('scrubs the literal secrets it was told, in any shape, and marked headers', () => {
    const r = new Redactor({ secretHeaders: ['X-Api-Key'] });
    r.addUrl('redis://:my pass word@10.0.0.5:6379');
    r.addHeader('x-api-key', 'k3y-V4lue-123');
    r.addHeader('authorization', 'Bearer abcdef123456');
    r.addHeader('accept', 'text/plain-and-more');
    expect(r.text('auth failed for "my pass word" and k3y-V4lue-123 and abcdef123456')).toBe(
      'auth failed for "***" and *** and ***',
    );
    expect(r.text('X-Api-Key: anything')).toBe('X-Api-Key: ***');
    expect(r.text('text/plain-and-more')).toBe('text/plain-and-more');
    expect(r.url('http://127.0.0.1/my%20pass%20word')).toBe('http://127.0.0.1/***');
    expect(() => r.addSecretHeader('bad name')).toThrow(/a secret header must be a header name/);
  });

  it('redacts header values: the default four and marked ones, lists included', () => {
    expect(
      redactHeaders(
        {
          authorization: 'Bearer x',
          'Set-Cookie': ['a=1', 'b=2'],
          'x-token': 't',
          'content-type': 'text/plain',
        },
        ['X-Token'],
      ),
    ).toEqual({
      authorization: '***',
      'Set-Cookie': ['***', '***'],
      'x-token': '***',
      'content-type': 'text/plain',
    });
  });

  it('primes the command line redactor from the arguments, and redacts the resume hint', () => {
    const args = [
      'batch',
      'in.txt',
      '--queue=redis://:Pa55#w0rd@10.0.0.5:6379',
      '--secret-header',
      'X-Custom',
      '-H',
      'X-Custom: cust0m-S3cret',
      '--header=Authorization: Bearer hdr-S3cret',
      '-H',
      'Accept: text/plain',
    ];
    primeRedactor(args);
    expect(redactor.text('got Pa55#w0rd, cust0m-S3cret, hdr-S3cret')).toBe('got ***, ***, ***');
    const shown = redactedArgs(args).join(' ');
    for (const secret of ['Pa55#w0rd', 'cust0m-S3cret', 'hdr-S3cret'])
      expect(shown).not.toContain(secret);
    expect(shown).toContain('-H X-Custom: ***');
    expect(shown).toContain('--header=Authorization: ***');
    expect(shown).toContain('Accept: text/plain');
  });
});

describe('library errors never echo credentials', () => {
  it('InvalidURLError, ProxyPool errors and any DoggedError message', async () => {
    await using session = new Session({ logger: false, retry: false });
    // (12#w0rd@ is left out: it is a valid URL to a host named "user", port 12.)
    for (const password of PASSWORDS.filter((p) => !p.startsWith('12'))) {
      const error = await session.get(`http://user:${password}@127.0.0.1:1/`).catch((e) => e);
      expect(String(error.message)).not.toContain(password);
      expect(JSON.stringify(error.url ?? '')).not.toContain(password);
      let poolError: unknown;
      try {
        new ProxyPool([`http://user:${password}@127.0.0.1:3128/x`]);
      } catch (e) {
        poolError = e;
      }
      expect(poolError).toBeInstanceOf(TypeError);
      expect((poolError as Error).message).not.toContain(password);
    }
    const invalid = await session.get('http://u:Pa55/w0rd@127.0.0.1:1/').catch((e) => e);
    expect(invalid).toBeInstanceOf(InvalidURLError);
    expect(invalid.message).toContain('http://***@127.0.0.1:1/');
    expect(new DoggedError('GET redis://:Pa55#w0rd@h:1 failed').message).toBe(
      'GET redis://***@h:1 failed',
    );
  });
});
