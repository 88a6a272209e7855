import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Journal, seededRandom } from '../../src/index.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { runCli, startCli, tempDir, waitFor } from './batch-support.js';

/**
 * "Outcomes are committed at least every 50 ms, so a crash loses nothing": counted, not assumed.
 * A line whose outcome was lost by a kill is fetched again by the next run, so the server's
 * arrivals tell how much work each kill threw away. The unique line numbers of the journal
 * cannot tell that (the schema's primary key guarantees them whatever is lost).
 */

let chaos: ChaosServer;
let dir: string;
let cleanup: () => void;
beforeAll(async () => {
  chaos = await startChaosServer({ logLimit: 100_000 });
  ({ dir, cleanup } = tempDir());
});
afterAll(async () => {
  await chaos.close();
  cleanup();
});

const LINES = 800;
const CONCURRENCY = 4;
const KILLS = 5;
/**
 * Requests a kill may cost: those in flight (the concurrency), those answered but not yet
 * committed (at 20 ms a request, 4 at a time, 50 ms is 10 lines; a late timer on a busy machine
 * a few more). Each run is killed only after at least 80 arrivals, so a runner that held its
 * outcomes back would lose far more.
 */
const LOST_PER_KILL = CONCURRENCY + 26;

function finalLines(db: string): number {
  const journal = Journal.open(db, { readonly: true });
  try {
    const counts = journal.counts();
    return counts.done + counts.failed;
  } finally {
    journal.close();
  }
}

describe('kill -9 loses at most the work in flight and the last 50 ms', () => {
  it('counts the server arrivals and the committed lines across kills', async () => {
    const input = join(dir, 'urls.txt');
    const urls = Array.from({ length: LINES }, (_, i) => `${chaos.url}/delay/20?key=d${i}`);
    writeFileSync(input, `${urls.join('\n')}\n`);
    const db = join(dir, 'run.sqlite');
    const flags = ['--concurrency', String(CONCURRENCY), '--per-host', String(CONCURRENCY), '-q'];
    const delayArrivals = () => chaos.log().filter((a) => a.path.startsWith('/delay/')).length;
    const random = seededRandom(3);

    let committedBefore = 0;
    for (let round = 0; round < KILLS; round++) {
      const from = delayArrivals();
      const run = startCli(['batch', input, '--db', db, ...flags]);
      const threshold = 80 + Math.floor(random() * 60);
      await waitFor(() => delayArrivals() - from >= threshold, 'arrivals', 60_000, 2);
      run.child.kill('SIGKILL');
      expect(await run.exited).toBe(-1);
      const sent = delayArrivals() - from;
      const committed = finalLines(db);
      // What this run sent, minus what the kill may lose, is in the journal.
      expect(committed - committedBefore).toBeGreaterThanOrEqual(sent - LOST_PER_KILL);
      committedBefore = committed;
    }

    const resumed = await runCli(['batch', input, '--db', db, ...flags]);
    expect(resumed.code).toBe(0);
    expect(finalLines(db)).toBe(LINES);

    const perKey = new Map<string, number>();
    for (const a of chaos.log())
      if (a.key !== null) perKey.set(a.key, (perKey.get(a.key) ?? 0) + 1);
    expect(perKey.size).toBe(LINES);
    const sentTwice = [...perKey.values()].reduce((n, c) => n + (c - 1), 0);
    expect(sentTwice).toBeLessThanOrEqual(KILLS * LOST_PER_KILL);
  }, 180_000);
});
