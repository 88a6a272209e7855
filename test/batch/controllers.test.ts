import { describe, expect, it, vi } from 'vitest';

/** The module afresh: its pool of idle controllers is empty. */
async function pool(): Promise<typeof import('../../src/batch/controllers.js')> {
  vi.resetModules();
  return import('../../src/batch/controllers.js');
}

describe('the pool of abort controllers that runs and jobs reuse', () => {
  it('hands a controller given back to the next run, once', async () => {
    const { takeController, releaseController } = await pool();
    const first = takeController();
    releaseController(first);
    // Given back twice by mistake, it is still handed out once.
    releaseController(first);
    expect(takeController()).toBe(first);
    expect(takeController()).not.toBe(first);
  });

  it('keeps no controller that aborted', async () => {
    const { takeController, releaseController } = await pool();
    const stopped = takeController();
    stopped.abort();
    releaseController(stopped);
    const next = takeController();
    expect(next).not.toBe(stopped);
    expect(next.signal.aborted).toBe(false);
  });

  it('keeps no controller something still listens to, until it stops listening', async () => {
    const { takeController, releaseController } = await pool();
    const held = takeController();
    const listener = (): void => {};
    held.signal.addEventListener('abort', listener);
    releaseController(held);
    expect(takeController()).not.toBe(held);
    held.signal.removeEventListener('abort', listener);
    releaseController(held);
    expect(takeController()).toBe(held);
  });

  it('keeps at most 16', async () => {
    const { takeController, releaseController } = await pool();
    const given = Array.from({ length: 20 }, () => takeController());
    expect(new Set(given).size).toBe(20);
    for (const controller of given) releaseController(controller);
    const taken = Array.from({ length: 20 }, () => takeController());
    expect(taken.filter((c) => given.includes(c))).toHaveLength(16);
  });
});
