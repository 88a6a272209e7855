/** `dogged report`: a batch's journal as one self-contained HTML page. */
import { writeFile } from 'node:fs/promises';
import type { Journal } from './journal.js';
import { collectReport, type ReportData, type ReportOptions } from './report-data.js';
import { renderReport } from './report-html.js';

/**
 * Writes the report of a journal to `path` as one self-contained HTML file (created 0600: it
 * names the batch's URLs). Resolves with the data it shows.
 * @example await writeReport(Journal.open('run.sqlite', { readonly: true }), 'report.html');
 */
export async function writeReport(
  journal: Journal,
  path: string,
  options: ReportOptions = {},
): Promise<ReportData> {
  const data = await collectReport(journal, options);
  await writeFile(path, renderReport(data), { mode: 0o600 });
  return data;
}
