import { describe, expect, it } from 'vitest';
import { isLoopbackHost } from '../../src/testing/chaos/loopback.js';
import {
  ChaosRequestError,
  parseDecimal,
  parseInteger,
  QueryReader,
} from '../../src/testing/chaos/params.js';
import { ifMatchPasses, ifRangePasses, resolveRange } from '../../src/testing/chaos/range.js';
import { SlidingWindowCounter } from '../../src/testing/chaos/sliding-window.js';
import { TokenBucket } from '../../src/testing/chaos/token-bucket.js';

describe('TokenBucket', () => {
  it('starts full and refuses once empty, saying how long until the next token', () => {
    const bucket = new TokenBucket(2, 2, 0);
    expect(bucket.take(0).allowed).toBe(true);
    expect(bucket.take(0)).toEqual({ allowed: true, remaining: 0, retryAfterMs: 500 });
    expect(bucket.take(100)).toEqual({ allowed: false, remaining: 0, retryAfterMs: 400 });
  });

  it('never holds more than burst tokens', () => {
    const bucket = new TokenBucket(10, 2, 0);
    expect(bucket.take(60_000).remaining).toBe(1);
  });
});

describe('SlidingWindowCounter', () => {
  it('counts the events of the last windowMs, this one included', () => {
    const counter = new SlidingWindowCounter(1000);
    expect(counter.hit(0)).toBe(1);
    expect(counter.hit(500)).toBe(2);
    expect(counter.hit(999)).toBe(3);
    expect(counter.hit(1000)).toBe(3); // the event at 0 has left
    expect(counter.msUntilOldestExpires(1000)).toBe(500);
  });
});

describe('resolveRange', () => {
  it.each([
    [undefined, { kind: 'full' }],
    ['bytes=0-9', { kind: 'partial', start: 0, end: 9 }],
    ['bytes=90-', { kind: 'partial', start: 90, end: 99 }],
    ['bytes=-5', { kind: 'partial', start: 95, end: 99 }],
    ['bytes=-500', { kind: 'partial', start: 0, end: 99 }],
    ['bytes=50-5000', { kind: 'partial', start: 50, end: 99 }],
    ['bytes=100-', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=9-3', { kind: 'full' }],
    ['bytes=0-1,4-5', { kind: 'full' }],
    ['items=0-1', { kind: 'full' }],
    ['bytes=-', { kind: 'full' }],
  ])('%s of 100 bytes -> %j', (header, expected) => {
    expect(resolveRange(header, 100)).toEqual(expected);
  });

  it('finds every range of an empty body unsatisfiable', () => {
    expect(resolveRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(resolveRange('bytes=-1', 0)).toEqual({ kind: 'unsatisfiable' });
  });
});

describe('If-Match and If-Range', () => {
  it('If-Match matches a listed strong tag, or *', () => {
    expect(ifMatchPasses('"a", "b"', '"b"')).toBe(true);
    expect(ifMatchPasses('*', undefined)).toBe(true);
    expect(ifMatchPasses('"a"', '"b"')).toBe(false);
  });

  it('If-Match never matches with weak tags on either side', () => {
    expect(ifMatchPasses('W/"a"', '"a"')).toBe(false);
    expect(ifMatchPasses('"a"', 'W/"a"')).toBe(false);
    expect(ifMatchPasses('"a"', undefined)).toBe(false);
  });

  it('If-Range passes only on an exact strong match', () => {
    expect(ifRangePasses('"a"', '"a"')).toBe(true);
    expect(ifRangePasses('W/"a"', 'W/"a"')).toBe(false);
    expect(ifRangePasses('Wed, 21 Oct 2015 07:28:00 GMT', '"a"')).toBe(false);
  });
});

describe('isLoopbackHost', () => {
  it.each(['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1'])(
    '%s is loopback',
    (host) => expect(isLoopbackHost(host)).toBe(true),
  );
  it.each([
    '0.0.0.0',
    '::',
    '10.0.0.1',
    '192.168.1.1',
    'example.com',
    '128.0.0.1',
    '::ffff:10.0.0.1',
  ])('%s is not loopback', (host) => expect(isLoopbackHost(host)).toBe(false));
});

describe('parameter parsing', () => {
  it('parses integers strictly and names the parameter when it cannot', () => {
    expect(parseInteger('n', '42')).toBe(42);
    for (const raw of ['4.2', '', '1e3', '0x10', 'abc']) {
      expect(() => parseInteger('n', raw)).toThrow(ChaosRequestError);
    }
    try {
      parseInteger('fail', 'x');
    } catch (error) {
      expect(error).toMatchObject({ status: 400, parameter: 'fail' });
    }
  });

  it('enforces bounds', () => {
    expect(() => parseInteger('n', '5', { max: 4 })).toThrow(/at most 4/);
    expect(() => parseDecimal('p', '-0.1', { min: 0 })).toThrow(/at least 0/);
    expect(parseDecimal('p', '.5')).toBe(0.5);
  });

  it('reads booleans and enumerations', () => {
    const query = new QueryReader(new URLSearchParams('a=true&b=0&c&mode=Reset'));
    expect(query.boolean('a', false)).toBe(true);
    expect(query.boolean('b', true)).toBe(false);
    expect(query.boolean('c', false)).toBe(true);
    expect(query.boolean('missing', true)).toBe(true);
    expect(query.oneOf('mode', ['status', 'reset'] as const, 'status')).toBe('reset');
  });
});
