import { describe, expect, it } from 'vitest';
import { BrokenCircuitError } from '../../src/retry/breaker-error.js';
import {
  clip,
  clipLongValues,
  describeError,
  describeOutcome,
  describeValue,
  formatDuration,
  truncate,
} from '../../src/retry/describe.js';
import { RetryError, TryAgain } from '../../src/retry/errors.js';
import { Emitter } from '../../src/retry/events.js';
import { formatRetryLine, logBeforeSleep } from '../../src/retry/log.js';
import { isAbortError, isTransientError } from '../../src/retry/transient.js';
import { attemptState as at, failed, succeeded } from './helpers.js';

describe('formatDuration', () => {
  it.each([
    [0, '0 ms'],
    [999.4, '999 ms'],
    [999.6, '1000 ms'],
    [1000, '1 s'],
    [1500, '1.5 s'],
    [1234, '1.23 s'],
    [9999, '10 s'],
    [10_000, '10 s'],
    [12_340, '12.3 s'],
    [59_999, '60 s'],
    [60_000, '1 min'],
    [61_000, '1 min 1 s'],
    [90_400, '1 min 30 s'],
    [3_600_000, '60 min'],
    [Number.POSITIVE_INFINITY, 'forever'],
    [Number.NaN, 'forever'],
  ])('%d ms is %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

describe('describeError and describeOutcome', () => {
  it('an Error shows its name, its code when it differs, and its message', () => {
    expect(describeError(new Error('boom'))).toBe('Error: boom');
    expect(describeError(Object.assign(new Error('x'), { code: 'EPIPE' }))).toBe('Error EPIPE: x');
    const named = Object.assign(new Error('y'), { name: 'Same', code: 'Same' });
    expect(describeError(named)).toBe('Same: y');
    expect(describeError(Object.assign(new Error('z'), { code: 7 }))).toBe('Error: z');
    expect(describeError(new TypeError(''))).toBe('TypeError');
  });

  it('non-Error values say so', () => {
    expect(describeError(undefined)).toBe('undefined (a non-Error value)');
    expect(describeError(null)).toBe('null (a non-Error value)');
    expect(describeError('oops')).toBe('a string "oops" (a non-Error value)');
    expect(describeError(42)).toBe('42 (a non-Error number)');
    expect(describeError({ a: 1 })).toBe('{"a":1} (a non-Error object)');
    expect(describeError(10n)).toBe('10n (a non-Error bigint)');
    expect(describeError(Symbol('s'))).toBe('Symbol(s) (a non-Error symbol)');
    function named() {}
    expect(describeError(named)).toBe('[function named] (a non-Error function)');
    expect(describeError(() => {})).toBe('[function] (a non-Error function)');
    const long = 'x'.repeat(300);
    expect(describeError(long)).toBe(
      `a string ${JSON.stringify(`${'x'.repeat(197)}...`)} (a non-Error value)`,
    );
  });

  it('unserialisable values fall back to String, then to the tag', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(describeValue(circular)).toBe('[object Object]');
    const hostile = Object.create(null) as object;
    Object.defineProperty(hostile, 'toJSON', {
      value: () => {
        throw new Error('no');
      },
    });
    expect(describeValue(hostile)).toBe('[object Object]');
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue({ v: 'x'.repeat(300) })).toHaveLength(200);
  });

  it('describeOutcome', () => {
    expect(describeOutcome(undefined)).toBe('has not finished');
    expect(describeOutcome(succeeded({ ok: 1 }))).toBe('returned {"ok":1}');
    expect(describeOutcome(failed(new Error('bad')))).toBe('threw Error: bad');
  });
});

describe('clip, clipLongValues and truncate', () => {
  it('clip cuts past max and says how long it was', () => {
    expect(clip('abc', 3)).toBe('abc');
    expect(clip('abcd', 3)).toBe('abc… (4 chars)');
    expect(clip('x'.repeat(200))).toBe('x'.repeat(200));
    expect(clip('x'.repeat(201))).toBe(`${'x'.repeat(200)}… (201 chars)`);
  });

  it('clipLongValues clips only the long runs of a long message', () => {
    expect(clipLongValues('abc', 3)).toBe('abc');
    expect(clipLongValues('short', 3)).toBe('sho… (5 chars)');
    expect(clipLongValues('a bbbb cc', 3)).toBe('a bbb… (4 chars) cc');
    expect(clipLongValues('aaa bbb', 3)).toBe('aaa bbb');
    const message = `see ${'u'.repeat(250)} now`;
    expect(clipLongValues(message)).toBe(`see ${'u'.repeat(200)}… (250 chars) now`);
    expect(clipLongValues('x'.repeat(200))).toBe('x'.repeat(200));
    expect(clipLongValues('a bbbb cccc', 3)).toBe('a bbb… (4 chars) ccc… (4 chars)'); // every run
  });

  it('truncate ends with ... within max', () => {
    expect(truncate('abcdef', 6)).toBe('abcdef');
    expect(truncate('abcdefg', 6)).toBe('abc...');
  });
});

describe('RetryError, TryAgain and BrokenCircuitError', () => {
  it('RetryError says who gave up, after how many attempts and how long, and why', () => {
    const one = new RetryError(at(1, { elapsedMs: 0, outcome: failed(new Error('x')) }));
    expect(one.message).toBe(
      'retry gave up after 1 attempt in 0 ms: the last attempt threw Error: x',
    );
    expect(one.cause).toBeInstanceOf(Error);
    expect(one.attempts).toBe(1);
    expect([one.name, one.code, one.retriable]).toEqual([
      'RetryError',
      'ERR_DOGGED_RETRY_EXHAUSTED',
      false,
    ]);
    const named = new RetryError({
      ...at(3, { elapsedMs: 1500, outcome: succeeded(5) }),
      name: 'poll',
    });
    expect(named.message).toBe(
      'retry "poll" gave up after 3 attempts in 1.5 s: the last attempt returned 5, which the retry condition rejected',
    );
    expect(named.cause).toBeUndefined();
    expect(Object.hasOwn(named, 'cause')).toBe(false);
    const unfinished = new RetryError(at(2));
    expect(unfinished.message).toBe(
      'retry gave up after 2 attempts in 0 ms: the last attempt has not finished',
    );
  });

  it('TryAgain has a default message and is retriable', () => {
    const t = new TryAgain();
    expect([t.message, t.name, t.code, t.retriable]).toEqual([
      'the attempt asked to be tried again',
      'TryAgain',
      'ERR_DOGGED_TRY_AGAIN',
      true,
    ]);
    expect(new TryAgain('later', { cause: 1 }).cause).toBe(1);
  });

  it('BrokenCircuitError describes an open and a full half-open circuit', () => {
    const open = new BrokenCircuitError(
      { allowed: false, state: 'open', retryAtMs: 5000, retryAfterMs: 2500, lastFailure: 'f' },
      'api',
    );
    expect(open.message).toBe(
      'circuit "api" is open after repeated failures; failing fast. It lets a probe request through in 2.5 s',
    );
    expect([open.state, open.retryAtMs, open.retryAfterMs, open.circuit, open.cause]).toEqual([
      'open',
      5000,
      2500,
      'api',
      'f',
    ]);
    expect([open.name, open.code, open.retriable]).toEqual([
      'BrokenCircuitError',
      'ERR_DOGGED_CIRCUIT_OPEN',
      false,
    ]);
    const half = new BrokenCircuitError({
      allowed: false,
      state: 'half-open',
      retryAtMs: 1,
      retryAfterMs: 10,
      lastFailure: undefined,
    });
    expect(half.message).toBe(
      'the circuit is half-open and every probe slot is taken; failing fast. A slot frees in 10 ms at the latest',
    );
    expect(Object.hasOwn(half, 'cause')).toBe(false);
    expect(half.circuit).toBeUndefined();
  });
});

describe('log lines', () => {
  it('formatRetryLine names the run, the delay and the outcome', () => {
    expect(formatRetryLine(at(2, { upcomingDelayMs: 1500, outcome: failed(new Error('x')) }))).toBe(
      'retrying in 1.5 s: attempt 2 threw Error: x',
    );
    expect(formatRetryLine({ ...at(1), name: 'sync' })).toBe(
      'retrying "sync" in 0 ms: attempt 1 has not finished',
    );
  });

  it('logBeforeSleep logs at warn by default, or the level given', () => {
    const lines: string[] = [];
    const logger = {
      error: (m: string) => lines.push(`error ${m}`),
      warn: (m: string) => lines.push(`warn ${m}`),
      info: (m: string) => lines.push(`info ${m}`),
      debug: (m: string) => lines.push(`debug ${m}`),
    };
    logBeforeSleep(logger)(at(1, { upcomingDelayMs: 5 }));
    logBeforeSleep(logger, { level: 'debug' })(at(1, { upcomingDelayMs: 5 }));
    expect(lines).toEqual([
      'warn retrying in 5 ms: attempt 1 has not finished',
      'debug retrying in 5 ms: attempt 1 has not finished',
    ]);
    const functionLogger = Object.assign(() => {}, { warn: () => {} });
    expect(() => logBeforeSleep(functionLogger as never)).toThrow(/logger must have a warn/);
    expect(() => logBeforeSleep({ warn: () => {} } as never, { level: 'info' })).toThrow(
      'logBeforeSleep(logger): logger must have a info(message) method',
    );
    expect(() => logBeforeSleep(null as never)).toThrow(
      'logBeforeSleep(logger): logger must have a warn(message) method',
    );
    expect(() => logBeforeSleep('x' as never)).toThrow(TypeError);
  });
});

describe('Emitter', () => {
  it('calls each subscription, disposes one at a time, and rethrows listener errors', () => {
    const e = new Emitter<number>();
    const seen: number[] = [];
    const listener = (n: number) => seen.push(n);
    const a = e.subscribe(listener);
    const b = e.subscribe(listener);
    e.emit(1);
    a.dispose();
    e.emit(2);
    b[Symbol.dispose]();
    e.emit(3);
    expect(seen).toEqual([1, 1, 2]);
    const boom = new Error('one');
    const s1 = e.subscribe(() => {
      throw boom;
    });
    expect(() => e.emit(4)).toThrow(boom);
    const s2 = e.subscribe(() => {
      throw new Error('two');
    });
    let thrown: unknown;
    try {
      e.emit(5);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AggregateError);
    expect((thrown as AggregateError).message).toBe('several event listeners threw');
    expect((thrown as AggregateError).errors).toHaveLength(2);
    s1.dispose();
    s2.dispose();
    expect(() => e.emit(6)).not.toThrow();
    expect(() => e.subscribe(5 as never)).toThrow(
      'an event listener must be a function, got number',
    );
  });

  it('a listener that subscribes another during an emit does not run it in that emit', () => {
    const e = new Emitter<string>();
    const seen: string[] = [];
    e.subscribe(() => {
      e.subscribe((v) => seen.push(`late ${v}`));
    });
    e.emit('a');
    expect(seen).toEqual([]);
  });
});

describe('isAbortError and isTransientError', () => {
  it('aborts by name, code or a DOMException TimeoutError', () => {
    expect(isAbortError({ name: 'AbortError' })).toBe(true);
    expect(isAbortError({ code: 'ABORT_ERR' })).toBe(true);
    expect(isAbortError(new DOMException('t', 'TimeoutError'))).toBe(true);
    expect(isAbortError({ name: 'TimeoutError' })).toBe(false);
    expect(isAbortError('AbortError')).toBe(false);
    expect(isAbortError(null)).toBe(false);
  });

  it('transient by flag, code or cause; never programming errors or aborts', () => {
    const code = (c: string) => Object.assign(new Error(c), { code: c });
    expect(isTransientError(code('ECONNRESET'))).toBe(true);
    expect(isTransientError(code('EWHATEVER'))).toBe(false);
    expect(isTransientError({ retriable: true })).toBe(true);
    expect(isTransientError({ retriable: false, code: 'ECONNRESET' })).toBe(false);
    expect(isTransientError({ retriable: 'yes', code: 'ECONNRESET' })).toBe(true);
    expect(isTransientError(Object.assign(code('ECONNRESET'), { name: 'AbortError' }))).toBe(false);
    expect(isTransientError(new RangeError('x', { cause: code('ECONNRESET') }))).toBe(false);
    expect(isTransientError(new TypeError('fetch failed', { cause: code('ECONNRESET') }))).toBe(
      true,
    );
    expect(isTransientError(new TypeError('fetch failed', { cause: code('EX') }))).toBe(false);
    expect(isTransientError(new TypeError('other', { cause: code('ECONNRESET') }))).toBe(false);
    expect(isTransientError(new Error('wrap', { cause: code('ETIMEDOUT') }))).toBe(true);
    expect(isTransientError(new Error('wrap', { cause: 'ETIMEDOUT' }))).toBe(false);
    // Causes are followed five levels deep, no further.
    let deep: unknown = code('EPIPE');
    for (let i = 0; i < 5; i++) deep = new Error(`level ${i}`, { cause: deep });
    expect(isTransientError(deep)).toBe(true);
    expect(isTransientError(new Error('one more', { cause: deep }))).toBe(false);
    expect(isTransientError(null)).toBe(false);
    expect(isTransientError('ECONNRESET')).toBe(false);
  });
});
