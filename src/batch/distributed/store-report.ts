import { collectReportWith, type ReportData, type ReportOptions } from '../report-data.js';
import type { PgStore } from './store.js';

/** A distributed job's report data from its store: the same queries as a journal's. */
export async function collectStoreReport(
  store: PgStore,
  job: string,
  options: ReportOptions = {},
): Promise<ReportData> {
  return collectReportWith(
    {
      table: `${store.schema}.requests`,
      scope: 'job = ?',
      scopeParams: [job],
      historyEntries: (r) => `jsonb_array_elements(${r}.history) AS h`,
      field: (name) => `(h.value->>'${name}')`,
      position: (text, needle) => `strpos(${text}, ${needle})`,
      all: async (sql, params) => {
        let i = 0;
        return store.query<Record<string, unknown>>(
          sql.replace(/\?/g, () => `$${++i}`),
          [...params],
        );
      },
    },
    await store.counts(job),
    { ...options, title: options.title ?? `job ${job}` },
  );
}
