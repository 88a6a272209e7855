import { describe, expect, it } from 'vitest';
import { Retrying, wait } from '../../src/retry/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { netError } from './helpers.js';

describe('Retrying.run: edges', () => {
  it('a run of something that is not a function rejects with a TypeError naming it', async () => {
    // @ts-expect-error: not a function
    const error = await new Retrying().run(5).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TypeError);
    expect((error as TypeError).message).toMatch(
      /^the function to retry must be a function, got 5/,
    );
  });

  it('a per-call signal is combined with the signal of the Retrying: either aborts the run', async () => {
    const clock = new FakeClock();
    const shared = new AbortController();
    const r = new Retrying({ clock, wait: wait.fixed(10_000), signal: shared.signal });
    const perCall = new AbortController();
    const first = r.run(() => Promise.reject(netError('ECONNRESET')), { signal: perCall.signal });
    await clock.advance(1);
    perCall.abort(new Error('per call'));
    await expect(first).rejects.toThrow('per call');
    const second = r.run(() => Promise.reject(netError('ECONNRESET')), {
      signal: new AbortController().signal,
    });
    await clock.advance(1);
    shared.abort(new Error('shared'));
    await expect(second).rejects.toThrow('shared');
  });
});
