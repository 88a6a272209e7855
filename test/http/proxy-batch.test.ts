import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { exportRecords, Journal, ProxyPool, runBatch } from '../../src/index.js';
import type { ChaosServer } from '../../src/testing/index.js';
import { runCli, tempDir, writeLines } from '../batch/batch-support.js';
import { type Sandbox, sandbox } from '../batch/distributed/distributed-support.js';
import { available, needs } from '../support/needs.js';
import { flag, type ProxyFleet, useProxyFleetAndChaos } from './proxy-support.js';

// The suite needs tinyproxy, and `test` below Redis and PostgreSQL too: skipped without them,
// failing at once on CI (support/needs.ts).
const describe = needs('tinyproxy');
const test = needs.it('redis', 'postgres');

let fleet: ProxyFleet;
let chaos: ChaosServer;
useProxyFleetAndChaos((f, c) => {
  fleet = f;
  chaos = c;
});
let dir: string;
let cleanup: () => void;
let box: Sandbox;
beforeAll(async () => {
  if (available('redis', 'postgres')) box = await sandbox(15);
});
afterAll(async () => {
  await box?.cleanup();
});
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

/** `/ban` answers 200 to the first 5 requests of a client address, then 403. */
const banned = (key: string): string => `${chaos.url}/ban?after=5&window=60000&key=${key}`;

/** Nine `/ban` URLs, keyed `<prefix>0` to `<prefix>8`. */
const nineBanned = (prefix: string): string[] =>
  Array.from({ length: 9 }, (_, i) => banned(`${prefix}${i}`));

/** Proxy A's address is already banned by the site; B and C have room for 5 requests each. */
async function banA(): Promise<void> {
  await flag(fleet.a, banned('flag'), 6);
}

describe('batch jobs through proxies', () => {
  it('runBatch({ proxies }) benches a banned proxy and finishes every line through the others', async () => {
    await banA();
    const db = join(dir, 'run.sqlite');
    const pool = new ProxyPool([fleet.a.url, fleet.b.url, fleet.c.url]);
    const result = await runBatch({
      db,
      input: nineBanned('l'),
      proxies: pool,
      concurrency: 1,
      retry: { total: 0 },
    });
    expect(result.counts).toMatchObject({ done: 9, failed: 0 });
    const journal = Journal.open(db, { readonly: true });
    try {
      // Each line took one attempt: the rotation after A's 403 is not an attempt.
      expect([...exportRecords(journal)].map((r) => r.attempts)).toEqual(Array(9).fill(1));
    } finally {
      journal.close();
    }
    expect(pool.statistics[fleet.a.publicUrl]).toMatchObject({ state: 'benched', bans: 1 });
  });

  it('an unknown kind of proxies is a clear TypeError before anything runs', async () => {
    await expect(
      runBatch({
        db: join(dir, 'bad.sqlite'),
        input: [banned('x')],
        proxies: 'http://127.0.0.1:3128' as unknown as string[],
      }),
    ).rejects.toThrow(/proxies/);
  });

  it('dogged batch --proxies FILE rotates away from a banned proxy: exit 0, every line done', async () => {
    await banA();
    const proxies = writeLines(dir, 'proxies.txt', [
      '# the fleet',
      fleet.a.url,
      fleet.b.url,
      '',
      fleet.c.url,
    ]);
    const urls = writeLines(dir, 'urls.txt', nineBanned('c'));
    const db = join(dir, 'cli.sqlite');
    const { code, stdout } = await runCli([
      'batch',
      urls,
      '--db',
      db,
      '--proxies',
      proxies,
      '--concurrency',
      '1',
      '--retries',
      '0',
      '-q',
    ]);
    expect(stdout).toMatch(/9 lines in .*: 9 done, 0 failed/);
    expect(code).toBe(0);
  });

  test('dogged batch --queue --store --job --proxies: the distributed worker rotates too', async () => {
    await banA();
    const proxies = writeLines(dir, 'proxies.txt', [fleet.a.url, fleet.b.url, fleet.c.url]);
    const urls = writeLines(dir, 'urls.txt', nineBanned('q'));
    const { code, stdout } = await runCli([
      'batch',
      urls,
      '--queue',
      box.queue,
      '--store',
      box.store,
      '--job',
      'proxied',
      '--proxies',
      proxies,
      '--concurrency',
      '1',
      '--retries',
      '0',
      '-q',
    ]);
    expect(stdout).toMatch(/job proxied: 9 lines in .*: 9 done, 0 failed/);
    expect(code).toBe(0);
  });

  it('dogged get --proxy A --proxy B answers through B when the site has banned A', async () => {
    await banA();
    const { code, stdout } = await runCli([
      'get',
      banned('get'),
      '--proxy',
      fleet.a.url,
      '--proxy',
      fleet.b.url,
      '--retries',
      '0',
    ]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ client: fleet.b.bind });
  });
});
