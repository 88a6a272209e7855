import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BodyFileError, runBatch } from '../../src/index.js';
import { runCli, tempDir } from '../batch/batch-support.js';
import { type HostileServer, startBigBody } from './hostile-servers.js';

const mode = (path: string): number => statSync(path).mode & 0o777;

let server: HostileServer;
let dir: string;
let cleanup: () => void;
let victim: string;
beforeAll(async () => {
  server = await startBigBody(1000);
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  ({ dir, cleanup } = tempDir('dogged-hostile-'));
  // What another user of the machine wants overwritten.
  victim = join(dir, 'victim.txt');
  writeFileSync(victim, 'precious\n');
});
afterEach(() => cleanup());

describe.skipIf(process.platform === 'win32')('body files', () => {
  it('--bodies dir: creates the directory 0700 and each body 0600, through no predictable name', async () => {
    const out = join(dir, 'bodies');
    mkdirSync(out);
    // Planted where the old runner wrote its temporary file, and at the final name.
    symlinkSync(victim, join(out, `1.body.${process.pid}.tmp`));
    symlinkSync(victim, join(out, '2.body'));
    const result = await runBatch({
      db: join(dir, 'run.sqlite'),
      input: [`${server.url}/a`, `${server.url}/b`],
      bodies: { dir: out },
    });
    expect(result.counts).toMatchObject({ done: 2 });
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    for (const name of ['1.body', '2.body']) {
      const path = join(out, name);
      expect(lstatSync(path).isFile()).toBe(true);
      expect(statSync(path).size).toBe(1000);
      expect(mode(path)).toBe(0o600);
    }
    // No temporary file left behind.
    expect(
      readdirSync(out).filter((n) => n.endsWith('.tmp') && !n.includes(`${process.pid}`)),
    ).toEqual([]);

    const created = join(dir, 'new', 'nested');
    await runBatch({
      db: join(dir, 'run2.sqlite'),
      input: [`${server.url}/c`],
      bodies: { dir: created },
    });
    expect(mode(created)).toBe(0o700);
    expect(mode(join(created, '1.body'))).toBe(0o600);
  });

  it('a body file that cannot be written fails the run, and the next run fetches its line again', async () => {
    const out = join(dir, 'bodies');
    let requests = 0;
    // The bodies' directory becomes a file while the first request is answered: its body has
    // nowhere to go.
    const http = createServer((_req, res) => {
      if (requests++ === 0) {
        rmSync(out, { recursive: true });
        writeFileSync(out, 'not a directory');
      }
      res.end('body');
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/x`;
    try {
      const db = join(dir, 'run.sqlite');
      await expect(runBatch({ db, input: [url], bodies: { dir: out } })).rejects.toThrow(
        BodyFileError,
      );
      rmSync(out);
      const again = await runBatch({ db, input: [url], bodies: { dir: out } });
      expect(again.counts).toMatchObject({ done: 1, pending: 0 });
      expect(readFileSync(join(out, '1.body'), 'utf8')).toBe('body');
      expect(requests).toBe(2);
    } finally {
      await new Promise((resolve) => http.close(resolve));
    }
  });

  it('get -o writes a new 0600 file and replaces a planted symlink instead of following it', async () => {
    const out = join(dir, 'out.bin');
    symlinkSync(victim, out);
    const { code, stderr } = await runCli(['get', `${server.url}/o`, '-o', out]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('precious\n');
    expect(lstatSync(out).isFile()).toBe(true);
    expect(statSync(out).size).toBe(1000);
    expect(mode(out)).toBe(0o600);
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('get -o /dev/null writes to the device as it is; a missing directory exits 23', async () => {
    expect((await runCli(['get', `${server.url}/n`, '-o', '/dev/null'])).code).toBe(0);
    const missing = await runCli(['get', `${server.url}/m`, '-o', join(dir, 'no', 'such', 'f')]);
    expect(missing.code).toBe(23);
    expect(missing.stderr).toMatch(
      /its directory .* does not exist \(dogged creates no directory for -o\)/,
    );
  });
});
