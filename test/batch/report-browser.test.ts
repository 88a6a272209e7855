/**
 * The report rendered by a real browser (Debian's chromium, driven by puppeteer-core): no
 * console error, nothing fetched, and the charts hold the journal's numbers. One browser launch
 * for the file. Without chromium the file is skipped, unless CI is set: then it fails.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Journal } from '../../src/batch/journal.js';
import { writeReport } from '../../src/batch/report.js';
import { runBatch } from '../../src/batch/runner.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { available, needs } from '../support/needs.js';
import { CHROMIUM } from '../support/services.js';
import { tempDir, writeLines } from './batch-support.js';

// Skipped without chromium, failing at once on CI (the preflight says what to install).
const describe = needs('chromium');
const haveChromium = available('chromium');

let chaos: ChaosServer;
let browser: Browser;
let dir: string;
let cleanup: () => void;
beforeAll(async () => {
  if (!haveChromium) return;
  ({ dir, cleanup } = tempDir('dogged-report-browser-'));
  chaos = await startChaosServer();
  const puppeteer = await import('puppeteer-core');
  browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--headless=new'],
  });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await chaos?.close();
  cleanup?.();
});

describe('the report in headless Chromium', () => {
  it('renders without console errors or requests, and its charts hold the journal’s numbers', async () => {
    // A real batch: lines done at once, after a 503 (backoff), after a 503 + Retry-After,
    // failed 404s, and lines whose URLs and errors are hostile.
    const urls: string[] = [];
    for (let i = 0; i < 8; i++) urls.push(`${chaos.url}/bytes/32?key=ok${i}`);
    for (let i = 0; i < 4; i++) urls.push(`${chaos.url}/flaky/b${i}?fail=1&status=503`);
    for (let i = 0; i < 2; i++)
      urls.push(`${chaos.url}/flaky/ra${i}?fail=1&status=503&retry-after=0`);
    for (let i = 0; i < 3; i++) urls.push(`${chaos.secondaryUrl}/status/404?key=${i}`);
    urls.push('http://user:s3cretpass@127.0.0.1:1/refused');
    const db = join(dir, 'run.sqlite');
    await runBatch({
      input: writeLines(dir, 'urls.txt', urls),
      db,
      retry: { total: 1, backoffFactor: 5 },
      timeout: 5000,
    });
    // A line as a hostile journal holds it (a batch stores URLs normalised, percent-encoded).
    const writable = Journal.open(db);
    writable.db
      .prepare(
        `INSERT INTO requests (line, line_hash, method, url, host, state, attempts, status, reason,
           error_code, error_message, finished_at, duration_ms)
         VALUES (100, 'x', 'GET', ?, '127.0.0.1:1', 'failed', 1, NULL, 'not-retriable', 'EHOSTILE', ?, ?, 1)`,
      )
      .run(
        'http://user:s3cretpass@127.0.0.1:1/<script>alert(1)</script>',
        '<img src=x onerror=alert(2)> via http://proxy:s3cretpass@10.0.0.1/',
        Date.now(),
      );
    writable.close();
    const journal = Journal.open(db, { readonly: true });
    const q = (sql: string): number => journal.db.prepare(sql).pluck().get() as number;
    const expected = {
      done: q("SELECT count(*) FROM requests WHERE state = 'done'"),
      failed: q("SELECT count(*) FROM requests WHERE state = 'failed'"),
      s200: q("SELECT count(*) FROM requests WHERE state IN ('done','failed') AND status = 200"),
      s404: q("SELECT count(*) FROM requests WHERE state IN ('done','failed') AND status = 404"),
      backoff: q(
        "SELECT count(*) FROM requests, json_each(history) AS h WHERE json_extract(h.value, '$.source') = 'backoff'",
      ),
      retryAfter: q(
        "SELECT count(*) FROM requests, json_each(history) AS h WHERE json_extract(h.value, '$.source') = 'retry-after'",
      ),
      twoAttempts: q(
        "SELECT count(*) FROM requests WHERE state IN ('done','failed') AND attempts = 2",
      ),
    };
    const file = join(dir, 'report.html');
    await writeReport(journal, file);
    journal.close();
    expect(expected).toMatchObject({ done: 14, s200: 14, s404: 3, failed: 5, retryAfter: 2 });

    const page = await browser.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warn') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`pageerror: ${String(error)}`));
    page.on('request', (r) => requests.push(r.url()));
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    const seen = await page.evaluate(() => {
      // The few DOM types used here (the project's TypeScript has no DOM library).
      interface El {
        getAttribute(name: string): string | null;
        getBoundingClientRect(): { width: number };
        textContent: string | null;
      }
      const document = (
        globalThis as unknown as {
          document: {
            querySelector(s: string): El | null;
            querySelectorAll(s: string): ArrayLike<El> & Iterable<El>;
            body: { textContent: string | null };
          };
        }
      ).document;
      const num = (el: El | null, name: string): number => Number(el?.getAttribute(name));
      const sum = (selector: string, name: string): number =>
        [...document.querySelectorAll(selector)].reduce((n, el) => n + num(el, name), 0);
      const bar = (chart: string, label: string): number =>
        num(
          document.querySelector(`svg[data-chart="${chart}"] g[data-label="${label}"]`),
          'data-count',
        );
      const rendered = document
        .querySelector('svg[data-chart="throughput"]')
        ?.getBoundingClientRect();
      return {
        done: sum('svg[data-chart="throughput"] g.bucket', 'data-done'),
        failed: sum('svg[data-chart="throughput"] g.bucket', 'data-failed'),
        s200: bar('outcomes', '200'),
        s404: bar('outcomes', '404'),
        attempts2: bar('attempts', '2'),
        backoff: sum('svg[data-chart="delays"] g[data-source="backoff"]', 'data-count'),
        retryAfter: sum('svg[data-chart="delays"] g[data-source="retry-after"]', 'data-count'),
        failedRows: document.querySelectorAll('table[data-table="failed"] tbody tr').length,
        scripts: document.querySelectorAll('script, img').length,
        doneCard: document.querySelector('[data-figure="done"] b')?.textContent,
        width: rendered?.width ?? 0,
        text: document.body.textContent ?? '',
      };
    });
    await page.close();
    expect(problems).toEqual([]);
    expect(requests).toEqual([pathToFileURL(file).href]);
    expect(seen).toMatchObject({
      done: expected.done,
      failed: expected.failed,
      s200: expected.s200,
      s404: expected.s404,
      attempts2: expected.twoAttempts,
      backoff: expected.backoff,
      retryAfter: expected.retryAfter,
      failedRows: expected.failed,
      scripts: 0,
      doneCard: String(expected.done),
    });
    expect(seen.width).toBeGreaterThan(100);
    expect(seen.text).toContain('<script>alert(1)</script>');
    expect(seen.text).toContain('http://***@127.0.0.1:1/<script>');
    expect(seen.text).toContain('<img src=x onerror=alert(2)> via http://***@10.0.0.1/');
    expect(seen.text).not.toContain('s3cretpass');
  }, 60_000);
});
