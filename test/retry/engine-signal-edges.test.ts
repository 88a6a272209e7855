import { describe, expect, it } from 'vitest';
import { retry } from '../../src/retry/index.js';

describe('the engine: signals', () => {
  it('an abort during the synchronous part of an attempt rejects at once, though its promise never settles', async () => {
    const controller = new AbortController();
    const reason = new Error('stop');
    const run = retry(
      () => {
        controller.abort(reason);
        return new Promise<never>(() => {});
      },
      { signal: controller.signal },
    );
    await expect(run).rejects.toBe(reason);
  });
});
