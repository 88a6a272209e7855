import { describe, expect, it } from 'vitest';
import { hashLine, parseInputLine } from '../../src/batch/input-line.js';

describe('input lines', () => {
  it('reads a bare URL as a GET request keyed by its host and port', () => {
    const parsed = parseInputLine('  http://127.0.0.1:8080/a?b=1  ');
    expect(parsed).toEqual({
      kind: 'request',
      request: {
        url: 'http://127.0.0.1:8080/a?b=1',
        host: '127.0.0.1:8080',
        method: 'GET',
        headers: {},
        body: undefined,
        key: undefined,
      },
    });
  });

  it('skips blank lines and # comments', () => {
    expect(parseInputLine('')).toEqual({ kind: 'skip' });
    expect(parseInputLine('   ')).toEqual({ kind: 'skip' });
    expect(parseInputLine('# a comment')).toEqual({ kind: 'skip' });
  });

  it('marks a line that is not a URL as invalid, saying why', () => {
    const parsed = parseInputLine('not a url');
    expect(parsed.kind).toBe('invalid');
    expect(parsed.kind === 'invalid' && parsed.reason).toMatch(/not an absolute URL/);
    const ftp = parseInputLine('ftp://127.0.0.1/file');
    expect(ftp.kind === 'invalid' && ftp.reason).toMatch(/only http and https/);
  });

  it('reads a JSON line with method, headers, body and key', () => {
    const parsed = parseInputLine(
      '{"url":"http://127.0.0.1:1/x","method":"post","headers":{"X-A":"1"},"body":"hi","key":"k1"}',
    );
    expect(parsed).toMatchObject({
      kind: 'request',
      request: { method: 'POST', headers: { 'x-a': '1' }, body: 'hi', key: 'k1' },
    });
  });

  it('sends a json field as JSON with its content type', () => {
    const parsed = parseInputLine('{"url":"http://127.0.0.1:1/x","method":"PUT","json":{"a":1}}');
    expect(parsed).toMatchObject({
      request: { body: '{"a":1}', headers: { 'content-type': 'application/json' } },
    });
  });

  it('gives a line with idempotencyKey: true one key, chosen when the line is read', () => {
    const parsed = parseInputLine(
      '{"url":"http://127.0.0.1:1/x","method":"POST","idempotencyKey":true}',
    );
    expect(parsed.kind === 'request' && parsed.request.headers['idempotency-key']).toMatch(
      /^[0-9a-f-]{36}$/,
    );
  });

  it('rejects a JSON line with an unknown field, keeping its key', () => {
    const parsed = parseInputLine('{"url":"http://127.0.0.1:1/x","key":"k9","retries":3}');
    expect(parsed).toMatchObject({ kind: 'invalid', key: 'k9' });
    expect(parsed.kind === 'invalid' && parsed.reason).toMatch(/unknown field "retries"/);
  });

  it('rejects malformed JSON and JSON without a url', () => {
    expect(parseInputLine('{"url": ').kind).toBe('invalid');
    expect(parseInputLine('{"method":"GET"}').kind).toBe('invalid');
  });

  it('fingerprints lines stably', () => {
    expect(hashLine('http://127.0.0.1/a')).toBe(hashLine('http://127.0.0.1/a'));
    expect(hashLine('http://127.0.0.1/a')).not.toBe(hashLine('http://127.0.0.1/b'));
    expect(hashLine('x')).toMatch(/^[0-9a-f]{16}$/);
  });
});
