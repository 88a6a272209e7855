import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../src/retry/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { permit, refusal } from './helpers.js';

/** A breaker on a fresh fake clock that opens after one failure. */
function setup(
  options: { halfOpenAfterMs?: number; maxHalfOpenAfterMs?: number; halfOpenProbes?: number } = {},
  now = 0,
) {
  const clock = new FakeClock({ now });
  const breaker = new CircuitBreaker({ threshold: 1, ...options, clock });
  return { clock, breaker };
}

/** Opens the breaker with one failure and lets its delay run out: half-open. */
async function halfOpen(breaker: CircuitBreaker, clock: FakeClock, delayMs: number) {
  permit(breaker).failure(new Error('down'));
  await clock.advance(delayMs);
  expect(breaker.state).toBe('half-open');
}

describe('CircuitBreaker: several probes', () => {
  it('a refusal while probes are out says: until the oldest probe is lost', async () => {
    const { clock, breaker } = setup({ halfOpenAfterMs: 1000, halfOpenProbes: 2 });
    await halfOpen(breaker, clock, 1000); // t = 1000
    permit(breaker);
    await clock.advance(300);
    permit(breaker); // t = 1300
    expect(refusal(breaker)).toMatchObject({ state: 'half-open', retryAtMs: 2000 });
  });

  it('the oldest probe out decides when the circuit opens again for a lost probe', async () => {
    const { clock, breaker } = setup({ halfOpenAfterMs: 1000, halfOpenProbes: 2 });
    const opened: number[] = [];
    breaker.onOpen((change) => opened.push(change.atMs));
    await halfOpen(breaker, clock, 1000);
    permit(breaker);
    await clock.advance(300);
    permit(breaker);
    await clock.advance(700); // t = 2000: the first probe's time is up
    expect(breaker.state).toBe('open');
    expect(opened).toEqual([0, 2000]);
  });

  it('with a zero delay a probe still gets until time moves on', async () => {
    const { clock, breaker } = setup({ halfOpenAfterMs: 0, maxHalfOpenAfterMs: 0 });
    const lost: number[] = [];
    breaker.onOpen((change) => {
      if (change.reason === 'probe-lost') lost.push(change.atMs);
    });
    permit(breaker).failure(new Error('down'));
    expect(breaker.state).toBe('half-open');
    permit(breaker);
    expect(breaker.state).toBe('half-open');
    expect(lost).toEqual([]);
    await clock.advance(1);
    expect(breaker.state).toBe('half-open'); // lost, open, and half-open again at once
    expect(lost).toEqual([0]);
  });
});

describe('CircuitBreaker: listeners, names and messages', () => {
  it('two listeners that throw make one AggregateError', () => {
    const { breaker } = setup();
    const first = new Error('first');
    const second = new Error('second');
    breaker.onStateChange(() => {
      throw first;
    });
    breaker.onOpen(() => {
      throw second;
    });
    const p = permit(breaker);
    let thrown: unknown;
    try {
      p.failure(new Error('down'));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AggregateError);
    expect((thrown as AggregateError).message).toBe('several circuit listeners threw');
    expect((thrown as AggregateError).errors).toEqual([first, second]);
  });

  it('name is the name option', () => {
    expect(new CircuitBreaker({ name: 'inventory' }).name).toBe('inventory');
    expect(new CircuitBreaker().name).toBeUndefined();
  });

  it('execute() names itself when fn is not a function', async () => {
    const { breaker } = setup();
    // @ts-expect-error: not a function
    await expect(breaker.execute('soon')).rejects.toThrow(/^CircuitBreaker\.execute\(fn\) must be/);
  });
});

describe('CircuitBreaker: toJSON and fromJSON', () => {
  it('a closed breaker is never some time from half-open, whatever the clock reads', () => {
    const { breaker } = setup({}, -5000);
    expect(breaker.toJSON().halfOpenInMs).toBe(0);
  });

  it('names fromJSON in the error of a bad halfOpenAfterMs', () => {
    const json = { version: 1, mode: 'consecutive', state: 'closed', halfOpenInMs: 0 };
    expect(() =>
      CircuitBreaker.fromJSON({ ...json, halfOpenAfterMs: -1, consecutiveFailures: 0 } as never),
    ).toThrow(/^CircuitBreaker\.fromJSON\(json\): halfOpenAfterMs must be/);
  });

  it('the count of consecutive failures comes back only for a closed breaker in consecutive mode', () => {
    const base = { version: 1, halfOpenAfterMs: 1000, halfOpenInMs: 0, consecutiveFailures: 3 };
    const clock = new FakeClock();
    const closed = CircuitBreaker.fromJSON(
      { ...base, mode: 'consecutive', state: 'closed' } as never,
      { clock, threshold: 5 },
    );
    expect(closed.toJSON().consecutiveFailures).toBe(3);
    const halfOpen = CircuitBreaker.fromJSON(
      { ...base, mode: 'consecutive', state: 'half-open' } as never,
      { clock, threshold: 5 },
    );
    expect(halfOpen.toJSON().consecutiveFailures).toBe(0);
    const ratio = CircuitBreaker.fromJSON({ ...base, mode: 'ratio', state: 'closed' } as never, {
      clock,
      mode: 'ratio',
    });
    expect(ratio.toJSON().consecutiveFailures).toBe(0);
  });
});
