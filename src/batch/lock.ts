import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { JournalLockedError, type LockHolder } from './errors.js';
import type { Journal } from './journal.js';

/** Journals locked by this process (a second runner in the same process is refused too). */
const heldHere = new Set<string>();

/**
 * When the process started, from `/proc/<pid>/stat` (field 22, in clock ticks since boot), on
 * Linux; undefined elsewhere. A recycled pid has another start time, so a dead runner whose pid
 * now belongs to an unrelated process is still recognised as dead.
 */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

interface RunnerRow {
  pid: number;
  hostname: string;
  started_at: number;
  process_start: string | null;
}

/** Whether the runner recorded in the lock row may still be running. */
function isAlive(row: RunnerRow): boolean {
  // Another machine (a journal on a shared disk): no way to tell, so assume it runs.
  if (row.hostname !== hostname()) return true;
  if (row.pid === process.pid) return false; // a previous life of this pid (containers reuse them)
  try {
    process.kill(row.pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (row.process_start === null) return true;
  const now = processStart(row.pid);
  return now === undefined || now === row.process_start;
}

/**
 * Takes the journal's runner lock, or throws {@link JournalLockedError} naming the live holder.
 * A lock left by a runner that died (kill -9, a crash, a reboot) is taken over. Returns the
 * function that releases it.
 */
export function acquireLock(journal: Journal): () => void {
  const path = resolve(journal.path);
  if (heldHere.has(path)) {
    throw new JournalLockedError(journal.path, {
      pid: process.pid,
      hostname: hostname(),
      startedAt: Date.now(),
    });
  }
  const db = journal.db;
  const take = db.transaction(() => {
    const row = db
      .prepare('SELECT pid, hostname, started_at, process_start FROM runner WHERE id = 1')
      .get() as RunnerRow | undefined;
    if (row && isAlive(row)) {
      const holder: LockHolder = {
        pid: row.pid,
        hostname: row.hostname,
        startedAt: row.started_at,
      };
      throw new JournalLockedError(journal.path, holder);
    }
    db.prepare(
      'INSERT OR REPLACE INTO runner (id, pid, hostname, started_at, process_start) VALUES (1, ?, ?, ?, ?)',
    ).run(process.pid, hostname(), Date.now(), processStart(process.pid) ?? null);
  });
  // IMMEDIATE: two runners starting at once are serialised here; the second sees the first.
  take.immediate();
  heldHere.add(path);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    heldHere.delete(path);
    if (db.open) db.prepare('DELETE FROM runner WHERE id = 1 AND pid = ?').run(process.pid);
  };
}

/** The live runner holding the journal, if any (for `dogged status`). */
export function lockHolder(journal: Journal): LockHolder | undefined {
  const row = journal.db
    .prepare('SELECT pid, hostname, started_at, process_start FROM runner WHERE id = 1')
    .get() as RunnerRow | undefined;
  if (!row || (row.pid === process.pid && !heldHere.has(resolve(journal.path)))) return undefined;
  if (row.pid !== process.pid && !isAlive(row)) return undefined;
  return { pid: row.pid, hostname: row.hostname, startedAt: row.started_at };
}
