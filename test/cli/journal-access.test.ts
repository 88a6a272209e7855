/**
 * Read-only commands open the journal read-only, and work on a journal they may not write; a
 * journal they may not open gets an error naming the path and the reason (issue 16).
 */
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBatch } from '../../src/batch/runner.js';
import { runCli, tempDir } from '../batch/batch-support.js';
import { asOtherUser, otherUserCanRun, unreadableMode } from './cli-support.js';

let root: string;
/** A finished journal, closed (no -wal, no -shm). */
let journal: string;
beforeAll(async () => {
  ({ dir: root } = tempDir('dogged-ro-'));
  chmodSync(root, 0o755);
  journal = join(root, 'source.sqlite');
  await runBatch({ db: journal, input: ['not a url', 'nor this'] });
});

// Writable again, so that the temporary directory can be removed by a user who is not root.
afterAll(() => {
  for (const name of readdirSync(root, { withFileTypes: true }))
    if (name.isDirectory()) chmodSync(join(root, name.name), 0o755);
});

/** A directory holding a copy of the journal (and `files` more), with these modes. */
function place(name: string, options: { file: number; dir: number }): string {
  const dir = join(root, name);
  mkdirSync(dir);
  const path = join(dir, 'run.sqlite');
  copyFileSync(journal, path);
  chmodSync(path, options.file);
  chmodSync(dir, options.dir);
  return path;
}

const readers = (path: string) =>
  Promise.all([
    runCli(['status', path], {}, asOtherUser()),
    runCli(['export', path, '--format', 'csv'], {}, asOtherUser()),
  ]);

describe.runIf(otherUserCanRun())('read-only journals', () => {
  it('status and export read a read-only file and one in a read-only directory, writing nothing', async () => {
    const readonlyFile = place('ro-file', { file: 0o444, dir: 0o777 });
    const readonlyDir = place('ro-dir', { file: 0o444, dir: 0o555 });
    const before = readFileSync(readonlyFile);
    const runs = await Promise.all([readers(readonlyFile), readers(readonlyDir)]);
    for (const [status, exported] of runs) {
      expect(status.stderr).toBe('');
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/run\.sqlite: 2 lines: 0 done, 0 failed, 2 invalid, 0 left/);
      expect(exported.stderr).toBe('');
      expect(exported.code).toBe(0);
      expect(exported.stdout.split('\r\n').filter(Boolean)).toHaveLength(3);
    }
    expect(readFileSync(readonlyFile).equals(before)).toBe(true);
  });

  it('a WAL with records in a read-only directory: a precise error saying why and what to do', async () => {
    const dir = join(root, 'ro-wal');
    mkdirSync(dir);
    const path = join(dir, 'run.sqlite');
    // A writer that has not checkpointed: its records are in the -wal only.
    const writer = new Database(journal);
    writer.pragma('wal_autocheckpoint = 0');
    writer.exec("INSERT INTO meta (name, value) VALUES ('wal-test', 'x')");
    copyFileSync(journal, path);
    copyFileSync(`${journal}-wal`, `${path}-wal`);
    writer.close();
    chmodSync(path, 0o644);
    chmodSync(`${path}-wal`, 0o644);
    chmodSync(dir, 0o555);
    const [status, exported] = await readers(path);
    for (const run of [status, exported]) {
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`cannot open ${path}: the directory ${dir} is not writable`);
      expect(run.stderr).toContain(`SQLite must create ${path}-shm there`);
      expect(run.stderr).toContain('copy');
      expect(run.stderr).not.toMatch(/unable to open database file|attempt to write/);
    }
  });

  it('a journal one may not read, or write to run: the path and the reason', async () => {
    const secret = place('secret', { file: unreadableMode(), dir: 0o777 });
    const fixed = place('fixed', { file: 0o444, dir: 0o555 });
    const [[status, exported], batch, created] = await Promise.all([
      readers(secret),
      runCli(['batch', '--db', fixed], {}, asOtherUser()),
      runCli(['batch', '-', '--db', join(root, 'fixed', 'new.sqlite')], {}, asOtherUser()),
    ]);
    for (const run of [status, exported]) {
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(
        `cannot open ${secret}: permission denied: ${secret} is not readable by you`,
      );
    }
    expect(batch.code).toBe(2);
    expect(batch.stderr).toContain(
      `cannot open ${fixed}: permission denied: ${fixed} is not writable by you`,
    );
    expect(created.code).toBe(2);
    expect(created.stderr).toContain(`the directory ${join(root, 'fixed')} is not writable`);
    for (const run of [status, exported, batch, created])
      expect(run.stderr).not.toMatch(/unable to open database file|unexpected error/);
  });
});
