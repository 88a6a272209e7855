import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Job } from 'bullmq';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BodyStore } from '../../../src/batch/bodies.js';
import { parseStoreUrl } from '../../../src/batch/distributed/connections.js';
import type { FleetGate } from '../../../src/batch/distributed/fleet-gate.js';
import { type JobConfig, policyFromSpec } from '../../../src/batch/distributed/job-config.js';
import { HostTurns, LineSlots, LineStarts } from '../../../src/batch/distributed/line-slots.js';
import {
  type ChunkData,
  type LineContext,
  processChunk,
} from '../../../src/batch/distributed/processor.js';
import type { ResultWriter } from '../../../src/batch/distributed/result-writer.js';
import type { JobCounters } from '../../../src/batch/distributed/stats.js';
import { PgStore } from '../../../src/batch/distributed/store.js';
import type { EncodedWrite } from '../../../src/batch/distributed/store-chunks.js';
import { Session } from '../../../src/http/session.js';
import { available, needs } from '../../support/needs.js';
import { PG_URL } from './distributed-support.js';

// One run of a chunk, driven directly (no BullMQ, no Redis): the store's lines are real
// (PostgreSQL, a schema of its own), the requests go to a server on loopback, and the fleet's
// gate and the batched writer are stand-ins that admit every attempt and take every outcome.
const describe = needs('postgres');

const schema = `dogged_test_${randomBytes(4).toString('hex')}`;
let store: PgStore;
let admin: pg.Pool;
let server: Server;
let host: string;
/** The paths the server was asked for, in the order the requests arrived. */
const arrivals: string[] = [];

beforeAll(async () => {
  if (!available('postgres')) return;
  store = await PgStore.open(parseStoreUrl(`${PG_URL}?schema=${schema}`));
  admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
  server = createServer((req, res) => {
    arrivals.push(req.url ?? '');
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await store?.close();
  await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin?.end();
  await new Promise((resolve) => server?.close(resolve));
});

const config = {
  version: 1,
  job: 'unused',
  perHost: 1,
  rate: null,
  retry: {},
  maxRetryAfter: 60_000,
  timeout: null,
  headers: {},
  bodies: 'none',
  budget: false,
  cooldown: false,
  input: null,
  createdAt: '2026-12-05T00:00:00.000Z',
} as const satisfies JobConfig;

/**
 * What a worker shares between its chunks, with `window` lines of a host started at once and
 * one slot: the gate admits every attempt, the writer takes every outcome (`written` gets them).
 */
function context(job: string, session: Session, written: EncodedWrite[]): LineContext {
  const gate = {
    admit: () => ({ ok: true, release: () => {} }),
    pace: { answered: () => {} },
    refundRetry: async () => {},
  } as unknown as FleetGate;
  const writer = {
    hasRoom: () => true,
    room: async () => {},
    write: async (write: EncodedWrite) => {
      written.push(write);
      return true;
    },
  } as unknown as ResultWriter;
  return {
    job,
    config: { ...config, job },
    policy: policyFromSpec(config.retry),
    store,
    gate,
    counters: { finishedMany: async () => {} } as unknown as JobCounters,
    session,
    bodies: new BodyStore('none'),
    writer,
    slots: new LineSlots(1),
    turns: new HostTurns(),
    starts: new LineStarts(1),
    workerId: 'box:1',
    attemptsSignal: new AbortController().signal,
    load: { inFlight: 0, retrying: 0 },
  };
}

describe('a run of a chunk', () => {
  it("starts the host's next line while a line waits in-process to be due", async () => {
    const job = `chunk-run-${randomBytes(3).toString('hex')}`;
    await store.insertLines(
      job,
      [1, 2].map((line) => ({
        kind: 'request' as const,
        hash: `h${line}`,
        line,
        method: 'GET',
        url: `http://${host}/${line}`,
        host,
      })),
    );
    // Line 1 is held until 700 ms from now (as a host's hold or a chunk run again early leaves
    // it): due within HOLD_MS, so the run waits for it in-process. Line 2 is due at once.
    const dueAt = Date.now() + 700;
    await admin.query(
      `UPDATE ${schema}.requests SET next_attempt_at = $2 WHERE job = $1 AND line = 1`,
      [job, dueAt],
    );
    const session = new Session({ retry: false, logger: false });
    const written: EncodedWrite[] = [];
    arrivals.length = 0;
    try {
      const chunk = { data: { from: 1, to: 2 }, stalledCounter: 0, priority: 0 };
      const outcome = await processChunk(
        context(job, session, written),
        chunk as unknown as Job<ChunkData>,
        'token',
      );
      expect(outcome).toEqual({ finished: 2, left: 0 });
      // One line of the host at a time: line 1 takes the place first, in line order. Its wait
      // gives the place up, so line 2 is sent before line 1 is due, not after line 1's answer.
      expect(arrivals).toEqual(['/2', '/1']);
      expect(written.map((w) => w.line)).toEqual([2, 1]);
      expect(Date.now()).toBeGreaterThanOrEqual(dueAt);
    } finally {
      await session.close();
    }
  });
});
