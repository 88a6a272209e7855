import type { AttemptOutcome } from '../../src/batch/outcome.js';

/** An attempt's outcome as the runners record it: a final 200 with a small body, or as `overrides` say. */
export function attemptOutcome(overrides: Partial<AttemptOutcome> = {}): AttemptOutcome {
  return {
    state: 'done',
    attempts: 2,
    nextAttemptAt: 0,
    history: [],
    status: 200,
    errorCode: null,
    errorMessage: null,
    reason: 'ok',
    responseHeaders: { 'content-type': 'text/plain' },
    body: Buffer.from('hello'),
    bodySize: 5,
    bodyPath: null,
    finishedAt: 5000,
    ttfbMs: 1.5,
    durationMs: 2.5,
    ...overrides,
  };
}
