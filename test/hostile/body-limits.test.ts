import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobKeys } from '../../src/batch/distributed/keys.js';
import { parseSize } from '../../src/cli/parse.js';
import { BodyTooLargeError, runBatch, Session } from '../../src/index.js';
import { runCli, tempDir } from '../batch/batch-support.js';
import { type Sandbox, sandbox } from '../batch/distributed/distributed-support.js';
import { needs } from '../support/needs.js';
import { type HostileServer, startBigBody } from './hostile-servers.js';
import { type BuiltCli, buildCli, runMeasured } from './hostile-support.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** The bound for a body over --max-body; the old code took 2.1 GiB for get -o, 3.1 GiB for a batch. */
const RSS_LIMIT_MIB = 150;
/**
 * The bound for a whole 1 GiB body streamed through (`get -o`, `--bodies none`, `--bodies dir:`):
 * flat, not the body (the issue asks that these never hold a whole body). Measured at 119–152 MiB
 * on a 2-core Debian machine (2026-12-04): the CLI is ~75 MiB before its first request and ~115
 * after it (undici's parser), and V8 collects the dead 64 KiB read buffers only once some 64 MB
 * of them have piled up, so 150 was met only most of the time.
 */
const STREAM_RSS_LIMIT_MIB = 200;

let chunked: HostileServer; // 1 GiB, no Content-Length
let announced: HostileServer; // 1 GiB with its Content-Length
let small: HostileServer; // 101 MiB, chunked: just past the default limit of a buffered read
let cli: BuiltCli;
beforeAll(async () => {
  chunked = await startBigBody(GiB);
  announced = await startBigBody(GiB, { announce: true });
  small = await startBigBody(101 * MiB);
  cli = await buildCli();
});
afterAll(async () => {
  cli.remove();
  await Promise.all([chunked.close(), announced.close(), small.close()]);
});

describe('parseSize (--max-body)', () => {
  it('reads decimal and binary units, and refuses what is not a size', () => {
    expect(parseSize('10MB')).toBe(10_000_000);
    expect(parseSize('500k')).toBe(500_000);
    expect(parseSize('1GiB')).toBe(GiB);
    expect(parseSize('1.5kib')).toBe(1536);
    expect(parseSize('2048')).toBe(2048);
    expect(() => parseSize('10 apples')).toThrow(/not a size.*powers of 1000.*powers of 1024/);
    expect(() => parseSize('0')).toThrow(/at least 1 byte/);
  });
});

describe('a body over maxBodySize', () => {
  it('fails before a byte is read when its Content-Length is over the limit, and is not retried', async () => {
    await using session = new Session({ maxBodySize: 10 * MiB, retry: 3 });
    const before = announced.requests();
    const response = await session.get(`${announced.url}/big`);
    const error = await response.text().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BodyTooLargeError);
    expect(error).toMatchObject({
      code: 'ERR_DOGGED_BODY_TOO_LARGE',
      retriable: false,
      limit: 10 * MiB,
      received: 0,
      contentLength: GiB,
    });
    expect((error as Error).message).toMatch(/announces 1,073,741,824 bytes \(1 GiB\)/);
    expect(announced.requests() - before).toBe(1);
  });

  it('stops reading as soon as the bytes pass the limit and closes the connection', async () => {
    await using session = new Session({ maxBodySize: 10 * MiB });
    const sentBefore = chunked.bytesSent();
    const started = performance.now();
    const response = await session.get(`${chunked.url}/big`);
    const error = await response.bytes().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BodyTooLargeError);
    const { received } = error as BodyTooLargeError;
    // At most one chunk beyond the limit was held.
    expect(received).toBeGreaterThan(10 * MiB);
    expect(received).toBeLessThan(10 * MiB + 256 * 1024);
    expect(performance.now() - started).toBeLessThan(2000);
    // The connection is closed: the server stops sending, far from its 1 GiB.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const sent = chunked.bytesSent() - sentBefore;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(chunked.bytesSent() - sentBefore).toBe(sent);
    expect(sent).toBeLessThan(64 * MiB);
  });

  it('applies to a body read as a stream once maxBodySize is set (per request too)', async () => {
    await using session = new Session();
    const response = await session.get(`${chunked.url}/stream`, { maxBodySize: MiB });
    let read = 0;
    const error = await (async () => {
      for await (const chunk of response.body) read += (chunk as Buffer).length;
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BodyTooLargeError);
    expect(read).toBeLessThanOrEqual(MiB);
  });

  it('limits a body read whole to 100 MiB when maxBodySize is not set', async () => {
    await using session = new Session();
    const response = await session.get(`${small.url}/default`);
    const error = await response.arrayBuffer().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BodyTooLargeError);
    expect((error as BodyTooLargeError).limit).toBe(100 * MiB);
  });

  it('refuses a maxBodySize that is not a positive whole number of bytes', () => {
    expect(() => new Session({ maxBodySize: 0 })).toThrow(/maxBodySize must be a positive whole/);
    expect(() => new Session({ maxBodySize: 1.5 })).toThrow(/maxBodySize/);
    expect(() => new Session({ maxBodySize: Number.POSITIVE_INFINITY })).not.toThrow();
  });
});

describe.skipIf(process.platform !== 'linux')('memory stays flat with a 1 GiB body', () => {
  it('dogged get --max-body 10MB exits 63 at once; get -o streams 1 GiB to the file', async () => {
    const { dir, cleanup } = tempDir('dogged-hostile-');
    try {
      const limited = await runMeasured(cli, ['get', `${chunked.url}/x`, '--max-body', '10MB']);
      expect(limited.code).toBe(63);
      expect(limited.stderr).toMatch(/over the limit of 10,000,000 bytes/);
      expect(limited.elapsedMs).toBeLessThan(5000);

      const out = join(dir, 'big.bin');
      const whole = await runMeasured(cli, ['get', `${announced.url}/x`, '-o', out]);
      expect(whole.stderr).toBe('');
      expect(whole.code).toBe(0);
      expect(statSync(out).size).toBe(GiB);
      expect(whole.maxRssMiB).toBeLessThan(STREAM_RSS_LIMIT_MIB);
    } finally {
      cleanup();
    }
  }, 60_000);

  it('dogged batch --max-body 10MB: the line fails as body-too-large in under 2 s, with flat memory, and a second run ends normally', async () => {
    const { dir, cleanup } = tempDir('dogged-hostile-');
    try {
      const input = join(dir, 'urls.txt');
      const db = join(dir, 'run.sqlite');
      writeFileSync(input, `${chunked.url}/one\n`);
      const args = ['batch', input, '--db', db, '--max-body', '10MB', '-q'];
      const first = await runMeasured(cli, args);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(10); // finished, with a failed line
      expect(first.stdout).toMatch(/1 lines? in .*: 0 done, 1 failed/);
      expect(first.maxRssMiB).toBeLessThan(RSS_LIMIT_MIB);
      const journal = new Database(db, { readonly: true });
      const row = journal
        .prepare('SELECT state, reason, error_code, duration_ms, attempts FROM requests')
        .get() as Record<string, unknown>;
      journal.close();
      expect(row).toMatchObject({
        state: 'failed',
        reason: 'body-too-large',
        error_code: 'ERR_DOGGED_BODY_TOO_LARGE',
        attempts: 1,
      });
      expect(row.duration_ms as number).toBeLessThan(2000);

      const second = await runMeasured(cli, args);
      expect(second.stderr).toBe('');
      expect(second.code).toBe(10);
      expect(second.stdout).toMatch(/0 done, 1 failed/);
    } finally {
      cleanup();
    }
  }, 60_000);

  it('--bodies none and --bodies dir: stream a 1 GiB body with flat memory', async () => {
    const { dir, cleanup } = tempDir('dogged-hostile-');
    try {
      const input = join(dir, 'urls.txt');
      writeFileSync(input, `${announced.url}/one\n`);
      const batch = (db: string, bodies: string) =>
        runMeasured(cli, ['batch', input, '--db', join(dir, db), '--bodies', bodies, '-q']);
      const none = await batch('none.sqlite', 'none');
      expect(none.stderr).toBe('');
      expect(none.code).toBe(0);
      expect(none.maxRssMiB).toBeLessThan(STREAM_RSS_LIMIT_MIB);

      const out = join(dir, 'bodies');
      const files = await batch('dir.sqlite', `dir:${out}`);
      expect(files.stderr).toBe('');
      expect(files.code).toBe(0);
      expect(statSync(join(out, '1.body')).size).toBe(GiB);
      expect(files.maxRssMiB).toBeLessThan(STREAM_RSS_LIMIT_MIB);
      const journal = new Database(join(dir, 'none.sqlite'), { readonly: true });
      expect(journal.prepare('SELECT body_size FROM requests').get()).toEqual({ body_size: GiB });
      journal.close();
    } finally {
      cleanup();
    }
  }, 90_000);
});

describe('a batch line over --max-body', () => {
  it('fails with reason body-too-large in the local runner, not retried', async () => {
    const { dir, cleanup } = tempDir('dogged-hostile-');
    try {
      const before = chunked.requests();
      const result = await runBatch({
        db: join(dir, 'run.sqlite'),
        input: [`${chunked.url}/lib`],
        maxBodySize: MiB,
        retry: { total: 3 },
      });
      expect(result.counts).toMatchObject({ done: 0, failed: 1 });
      expect(chunked.requests() - before).toBe(1);
      expect(result.summary.failures).toEqual([
        {
          reason: 'body-too-large',
          status: 200,
          errorCode: 'ERR_DOGGED_BODY_TOO_LARGE',
          count: 1,
        },
      ]);
    } finally {
      cleanup();
    }
  });

  it("refuses a limit bodies 'db' cannot keep", async () => {
    const { dir, cleanup } = tempDir('dogged-hostile-');
    try {
      await expect(
        runBatch({ db: join(dir, 'run.sqlite'), input: [], maxBodySize: 2 * GiB }),
      ).rejects.toThrow(/more than bodies 'db' can keep/);
    } finally {
      cleanup();
    }
  });
});

needs('redis', 'postgres')('a distributed batch line over --max-body', () => {
  let box: Sandbox;
  beforeAll(async () => {
    box = await sandbox(8);
  });
  afterAll(async () => {
    await box?.cleanup();
  });

  it('fails with reason body-too-large too: the limit travels in the job to every worker', async () => {
    const { dir, cleanup } = tempDir('dogged-hostile-');
    try {
      const input = join(dir, 'urls.txt');
      writeFileSync(input, `${chunked.url}/fleet\n`);
      const before = chunked.requests();
      const target = ['--queue', box.queue, '--store', box.store, '--job', 'big'];
      const { code, stderr } = await runCli(['batch', input, ...target, '--max-body', '1MB', '-q']);
      expect(stderr).toBe('');
      expect(code).toBe(10);
      expect(chunked.requests() - before).toBe(1);
      const { rows } = await box.pg.query(
        `SELECT state, reason, error_code FROM ${box.schema}.requests WHERE job = 'big'`,
      );
      expect(rows).toEqual([
        { state: 'failed', reason: 'body-too-large', error_code: 'ERR_DOGGED_BODY_TOO_LARGE' },
      ]);
      const config = JSON.parse((await box.redis.get(jobKeys('big').config)) ?? '{}');
      expect(config).toMatchObject({ maxBodySize: 1_000_000, bodies: 'db' });
    } finally {
      cleanup();
    }
  }, 60_000);
});
