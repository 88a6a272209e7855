import { createServer } from 'node:net';
import { Session, type SessionOptions } from '../../src/http/index.js';
import type { Logger } from '../../src/retry/index.js';
import { seededRandom } from '../../src/retry/index.js';
import { type ChaosArrival, type ChaosServer, FakeClock } from '../../src/testing/index.js';

/**
 * A session for tests where real sleeping is not the point: a FakeClock that resolves every
 * sleep at once (while recording it), urllib3's deterministic backoff (0, 100, 200 ms...) and
 * no logger, whatever DOGGED_LOG says.
 */
export function fastSession(options: SessionOptions = {}): { session: Session; clock: FakeClock } {
  const clock = new FakeClock({ autoAdvance: true });
  const session = new Session({
    clock,
    logger: false,
    retry: { backoffFactor: 50, random: seededRandom(1) },
    ...options,
  });
  return { session, clock };
}

/** A loopback port nothing listens on: bound, noted, closed. Connecting to it is refused. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('unexpected address');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return address.port;
}

/** The arrivals the chaos server logged for one path (all of them without `path`). */
export function arrivals(chaos: ChaosServer, path?: string): ChaosArrival[] {
  const log = chaos.log();
  return path === undefined ? log : log.filter((a) => a.path === path);
}

/** The rejection of `promise`; fails the test when it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}

/** A console-shaped logger that keeps every line, by level. */
export function recordingLogger(): Logger & { lines: { level: string; message: string }[] } {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (message: string) => {
    lines.push({ level, message });
  };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
