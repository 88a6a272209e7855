import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Journal } from '../../src/batch/journal.js';
import { writeReport } from '../../src/batch/report.js';
import { collectReport } from '../../src/batch/report-data.js';
import { escapeHtml, renderReport } from '../../src/batch/report-html.js';
import { runCli, tempDir } from './batch-support.js';
import { COLUMNS, type FakeRow, knownRows, valuesOf } from './report-support.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('dogged-report-'));
});
afterEach(() => cleanup());

/** A journal at `dir/name` holding `rows`. */
function journalWith(rows: readonly FakeRow[], name = 'run.sqlite'): string {
  const path = join(dir, name);
  const journal = Journal.open(path);
  const insert = journal.db.prepare(
    `INSERT INTO requests (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map(() => '?').join(', ')})`,
  );
  journal.db.transaction(() => {
    for (const row of rows) insert.run(...valuesOf(row));
  })();
  journal.close();
  return path;
}

describe('collectReport', () => {
  it('holds the journal’s numbers: counts, throughput, outcomes, reasons, attempts, delays, hosts, lines', async () => {
    const journal = Journal.open(journalWith(knownRows()), { readonly: true });
    const data = await collectReport(journal, { title: 'known' });
    journal.close();
    expect(data.counts).toMatchObject({
      pending: 1,
      in_flight: 0,
      done: 13,
      failed: 5,
      invalid: 1,
    });
    expect(data.total).toBe(20);
    expect(data.throughput.bucketMs).toBe(1000);
    expect(data.throughput.buckets).toHaveLength(20);
    expect(data.throughput.buckets.reduce((n, b) => n + b.done, 0)).toBe(13);
    expect(data.throughput.buckets.reduce((n, b) => n + b.failed, 0)).toBe(5);
    expect(data.outcomes).toEqual([
      { label: '200', count: 13 },
      { label: '404', count: 3 },
      { label: 'ECONNRESET', count: 2 },
    ]);
    expect(data.reasons).toEqual([
      { label: 'http-status', count: 3 },
      { label: 'retries-exhausted', count: 2 },
    ]);
    expect(data.attempts).toEqual([
      { label: '1', count: 13 },
      { label: '2', count: 3 },
      { label: '4', count: 2 },
    ]);
    expect(data.delays).toEqual([
      { source: 'backoff', count: 8, totalMs: 640, maxMs: 250, buckets: [6, 2, 0, 0, 0, 0] },
      { source: 'retry-after', count: 1, totalMs: 2000, maxMs: 2000, buckets: [0, 0, 1, 0, 0, 0] },
    ]);
    expect(data.hostCount).toBe(3);
    expect(data.hosts.map((h) => [h.host, h.lines, h.done, h.failed])).toEqual([
      ['h2.test:80', 7, 5, 2],
      ['h0.test:80', 6, 4, 1],
      ['h1.test:80', 6, 4, 2],
    ]);
    expect(data.slowest.map((l) => l.line).slice(0, 3)).toEqual([20, 17, 16]);
    expect(data.failed.map((l) => l.line)).toEqual([13, 14, 15, 16, 17]);
    expect(data.failed[3]).toMatchObject({
      errorCode: 'ECONNRESET',
      errorMessage: 'socket hang up',
    });
  });

  it('escapes hostile text, redacts credentials, cuts huge values', async () => {
    const hugeHost = `${'a'.repeat(1_000_000)}.test:80`;
    const script = '<script>alert(1)</script>';
    const rows: FakeRow[] = [
      {
        line: 1,
        url: `http://user:s3cretpass@x.test/${script}"'&`,
        host: `x.test:80${script}`,
        state: 'failed',
        reason: `not-retriable${script}`,
        errorCode: `E<b>X`,
        errorMessage: `failed via http://proxy:s3cretpass@p.test/ <img src=x onerror=alert(1)>`,
        attempts: 1,
        finishedAt: 1,
        durationMs: 5,
      },
      {
        line: 2,
        url: `http://${hugeHost}/`,
        host: hugeHost,
        state: 'failed',
        errorCode: 'ETIMEDOUT',
        errorMessage: 'x'.repeat(1_000_000),
        reason: 'retries-exhausted',
        attempts: 1,
        finishedAt: 2,
        durationMs: 6,
      },
      // Credentials that end past what is read: the whole part after the scheme is hidden.
      {
        line: 3,
        url: `http://${'u'.repeat(5000)}:s3cretpass@y.test/`,
        host: 'y.test:80',
        state: 'failed',
        status: 503,
        reason: 'retries-exhausted',
        attempts: 1,
        finishedAt: 3,
        durationMs: 7,
      },
    ];
    const journal = Journal.open(journalWith(rows), { readonly: true });
    const data = await collectReport(journal, { title: `title ${script}` });
    journal.close();
    const html = renderReport(data);
    expect(html).not.toContain('<script');
    expect(html).not.toContain('<img');
    expect(html).not.toContain('E<b>X');
    expect(html).toContain('E&lt;b&gt;X');
    expect(html).not.toContain('s3cretpass');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('http://***@x.test/');
    expect(html).toContain('http://***… (5,');
    expect(html).toContain('… (1,000,008 characters)');
    expect(html.length).toBeLessThan(60_000);
    expect(data.hosts.every((h) => h.host.length < 400)).toBe(true);
    expect(escapeHtml('a\u0000b"\'')).toBe('a\ufffdb&quot;&#39;');
  });

  it('bounded for a big journal: aggregates, the top 20 slowest and the first 50 failed', async () => {
    const path = join(dir, 'big.sqlite');
    const journal = Journal.open(path);
    // 100,000 lines over 1,000 hosts, every 10th failed, made in SQL.
    journal.db.exec(`
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
      INSERT INTO requests (line, line_hash, method, url, host, state, attempts, history, status, reason,
                            first_attempt_at, finished_at, duration_ms)
      SELECT i, 'h' || i, 'GET', 'http://h' || (i % 1000) || '.test/' || i, 'h' || (i % 1000) || '.test:80',
             CASE WHEN i % 10 = 0 THEN 'failed' ELSE 'done' END, 1 + (i % 3),
             CASE WHEN i % 3 = 0 THEN '[]' ELSE json_array(json_object('at', i, 'status', 503, 'delayMs', i % 5000, 'source', 'backoff')) END,
             CASE WHEN i % 10 = 0 THEN 503 ELSE 200 END,
             CASE WHEN i % 10 = 0 THEN 'retries-exhausted' ELSE 'ok' END,
             1000000 + i * 10, 1000000 + i * 10 + 5, (i * 7919) % 100000
      FROM n`);
    journal.close();
    const readOnly = Journal.open(path, { readonly: true });
    const data = await collectReport(readOnly);
    readOnly.close();
    expect(data.total).toBe(100_000);
    expect(data.throughput.buckets.length).toBeLessThanOrEqual(60);
    expect(data.throughput.buckets.reduce((n, b) => n + b.done + b.failed, 0)).toBe(100_000);
    expect(data.slowest).toHaveLength(20);
    expect(data.failed).toHaveLength(50);
    expect(data.failedCount).toBe(10_000);
    expect(data.hosts).toHaveLength(20);
    expect(data.hostCount).toBe(1000);
    expect(data.delays[0]?.count).toBe(66_667);
    const html = renderReport(data);
    expect(html.length).toBeLessThan(200_000);
    expect(html).toContain('the first 50 of 10,000 failed lines');
  });
});

describe('dogged report', () => {
  it('writes the page (0600) with -o, to stdout without; bad usage exits 2', async () => {
    const db = journalWith(knownRows());
    const out = join(dir, 'report.html');
    const written = await runCli(['report', db, '-o', out]);
    expect(written.code).toBe(0);
    expect(written.stderr).toContain(`wrote ${out}`);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const html = readFileSync(out, 'utf8');
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).toContain('data-chart="throughput"');
    const piped = await runCli(['report', db, '--title', 'piped']);
    expect(piped.code).toBe(0);
    expect(piped.stdout).toContain('<h1>piped</h1>');
    expect((await runCli(['report'])).code).toBe(2);
    expect((await runCli(['report', join(dir, 'missing.sqlite')])).code).toBe(2);
    expect((await runCli(['report', '--job', 'x'])).code).toBe(2);
  });

  it('writeReport writes the file and returns its data', async () => {
    const journal = Journal.open(journalWith(knownRows()), { readonly: true });
    const data = await writeReport(journal, join(dir, 'lib.html'), { top: 2 });
    journal.close();
    expect(data.slowest).toHaveLength(2);
    expect(readFileSync(join(dir, 'lib.html'), 'utf8')).toContain('data-chart="outcomes"');
  });
});
