import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AttemptTimeoutError,
  ConnectTimeoutError,
  Session,
  TotalTimeoutError,
} from '../../src/index.js';
import { runCli } from '../batch/batch-support.js';
import { type HostileServer, startSilent } from './hostile-servers.js';

/** Accepts TCP and never answers the TLS ClientHello: the handshake hangs until the connect timeout (10 s). */
let silent: HostileServer;
beforeAll(async () => {
  silent = await startSilent();
});
afterAll(async () => {
  await silent.close();
});

/** Runs `call`, returns what it threw and how long it took. */
async function timed(call: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  const error = await call().then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, ms: performance.now() - started };
}

describe('an attempt stuck in the TLS handshake', () => {
  it('ends at once when its AbortSignal aborts, and the half-open socket is closed', async () => {
    await using session = new Session({ retry: false });
    const closedBefore = silent.closed();
    const reason = new Error('the user gave up');
    const { error, ms } = await timed(() =>
      session.get(silent.url, {
        signal: (() => {
          const controller = new AbortController();
          setTimeout(() => controller.abort(reason), 300);
          return controller.signal;
        })(),
      }),
    );
    expect(error).toBe(reason);
    expect(error).not.toBeInstanceOf(ConnectTimeoutError);
    // 300 ms to the abort, then "within 50 ms"; generous for a loaded machine.
    expect(ms).toBeLessThan(2000);
    await expect.poll(() => silent.closed() - closedBefore, { timeout: 1000 }).toBe(1);
  });

  it('ends at the total deadline with TotalTimeoutError, not a connect timeout', async () => {
    await using session = new Session({ retry: false, timeout: { total: 300 } });
    const { error, ms } = await timed(() => session.get(silent.url));
    expect(error).toBeInstanceOf(TotalTimeoutError);
    expect(ms).toBeLessThan(2000);
  });

  it('ends at the attempt deadline with AttemptTimeoutError', async () => {
    await using session = new Session({ retry: false, timeout: { attempt: 300 } });
    const { error, ms } = await timed(() => session.get(silent.url));
    expect(error).toBeInstanceOf(AttemptTimeoutError);
    expect((error as AttemptTimeoutError).phase).toBe('headers');
    expect(ms).toBeLessThan(2000);
  });

  it('dogged get --max-time 1s exits 28 in about a second, not after the 10 s connect timeout', async () => {
    // The CLI's own start-up (tsx compiles it) is measured apart, with the same modules loaded:
    // a refused connection exits at once.
    const closed = await startSilent();
    await closed.close();
    let started = performance.now();
    expect((await runCli(['get', `http://127.0.0.1:${closed.port}/`, '--retries', '0'])).code).toBe(
      7,
    );
    const startup = performance.now() - started;
    started = performance.now();
    const { code, stderr } = await runCli(['get', silent.url, '--max-time', '1s']);
    const elapsed = performance.now() - started;
    expect(code).toBe(28);
    expect(stderr).toMatch(/total timeout of 1 s/);
    // 1 s, plus noise on a loaded machine; the old code took the 10 s connect timeout.
    expect(elapsed - startup).toBeLessThan(4000);
  });
});
