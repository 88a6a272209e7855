/**
 * The batch report as one self-contained HTML file: inline CSS and SVG charts drawn here, no
 * script, nothing fetched (a Content-Security-Policy forbids it). Every text from the journal is
 * HTML-escaped; each chart element carries its numbers in `data-*` attributes.
 */
import { formatDuration } from '../retry/describe.js';
import {
  DELAY_BUCKET_LABELS,
  type ReportData,
  type ReportLine,
  type ReportTally,
} from './report-data.js';

/** The text, safe inside HTML text and quoted attribute values. */
export function escapeHtml(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it replaces
  return text.replace(/[&<>"'\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      case "'":
        return '&#39;';
      default:
        // Control characters are not allowed in HTML: shown as U+FFFD.
        return '\ufffd';
    }
  });
}

const e = escapeHtml;
const int = (n: number): string => n.toLocaleString('en-US');
const ms = (n: number | null): string => (n === null ? '–' : formatDuration(n));
const iso = (at: number | null): string =>
  at === null
    ? '–'
    : new Date(at)
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
const pct = (part: number, whole: number): string =>
  whole === 0 ? '0%' : `${((100 * part) / whole).toFixed(1).replace(/\.0$/, '')}%`;

const COLORS = {
  done: '#2f9e44',
  failed: '#e03131',
  pending: '#868e96',
  backoff: '#1c7ed6',
  'retry-after': '#f08c00',
  bar: '#5c7cfa',
} as const;

/** The color of an outcome label: 2xx green, 4xx orange, 5xx and errors red. */
function outcomeColor(label: string): string {
  if (/^2\d\d$/.test(label)) return COLORS.done;
  if (/^3\d\d$/.test(label)) return '#15aabf';
  if (/^4\d\d$/.test(label)) return '#f08c00';
  return COLORS.failed;
}

/** Horizontal bars, one per tally. */
function hbars(
  chart: string,
  tallies: readonly ReportTally[],
  color: (label: string) => string,
): string {
  if (tallies.length === 0) return '<p class="none">none</p>';
  const total = tallies.reduce((n, t) => n + t.count, 0);
  const most = Math.max(...tallies.map((t) => t.count), 1);
  const row = 24;
  const labelWidth = 190;
  const barWidth = 300;
  const height = tallies.length * row + 4;
  const bars = tallies
    .map((t, i) => {
      const y = i * row + 2;
      const w = Math.max(1, Math.round((barWidth * t.count) / most));
      return `<g class="bar" data-label="${e(t.label)}" data-count="${t.count}"><title>${e(t.label)}: ${int(t.count)}</title><text x="${labelWidth - 8}" y="${y + 16}" text-anchor="end">${e(t.label)}</text><rect x="${labelWidth}" y="${y + 3}" width="${w}" height="${row - 6}" rx="2" fill="${color(t.label)}"/><text x="${labelWidth + w + 6}" y="${y + 16}" class="value">${int(t.count)} (${pct(t.count, total)})</text></g>`;
    })
    .join('');
  return `<svg class="chart" data-chart="${chart}" data-total="${total}" viewBox="0 0 ${labelWidth + barWidth + 110} ${height}" width="${labelWidth + barWidth + 110}" height="${height}" role="img" aria-label="${chart}">${bars}</svg>`;
}

/** Lines finished over time: a stacked column (done, failed) per bucket. */
function throughputChart(data: ReportData): string {
  const { buckets, bucketMs } = data.throughput;
  if (buckets.length === 0) return '<p class="none">no line has finished yet</p>';
  const width = 1040;
  const height = 200;
  const left = 48;
  const bottom = 24;
  const plot = height - bottom - 8;
  const most = Math.max(...buckets.map((b) => b.done + b.failed), 1);
  const step = (width - left - 8) / buckets.length;
  const barW = Math.max(1, step - Math.min(4, step / 4));
  const done = buckets.reduce((n, b) => n + b.done, 0);
  const failed = buckets.reduce((n, b) => n + b.failed, 0);
  const columns = buckets
    .map((b, i) => {
      const x = (left + i * step).toFixed(1);
      const hd = (plot * b.done) / most;
      const hf = (plot * b.failed) / most;
      const yd = 8 + plot - hd;
      const yf = yd - hf;
      return `<g class="bucket" data-at="${new Date(b.at).toISOString()}" data-done="${b.done}" data-failed="${b.failed}"><title>${iso(b.at)}: ${int(b.done)} done, ${int(b.failed)} failed</title><rect x="${x}" y="${yd.toFixed(1)}" width="${barW.toFixed(1)}" height="${hd.toFixed(1)}" fill="${COLORS.done}"/><rect x="${x}" y="${yf.toFixed(1)}" width="${barW.toFixed(1)}" height="${hf.toFixed(1)}" fill="${COLORS.failed}"/></g>`;
    })
    .join('');
  const axis = `<line x1="${left}" y1="${8 + plot}" x2="${width - 8}" y2="${8 + plot}" class="axis"/><text x="${left - 6}" y="16" text-anchor="end" class="value">${int(most)}</text><text x="${left - 6}" y="${8 + plot}" text-anchor="end" class="value">0</text><text x="${left}" y="${height - 6}" class="value">${e(iso(buckets[0]?.at ?? null))}</text><text x="${width - 8}" y="${height - 6}" text-anchor="end" class="value">${formatDuration(bucketMs)} per column</text>`;
  return `<svg class="chart" data-chart="throughput" data-bucket-ms="${bucketMs}" data-done="${done}" data-failed="${failed}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="lines finished over time">${axis}${columns}</svg>
<p class="legend"><span style="background:${COLORS.done}"></span>done <span style="background:${COLORS.failed}"></span>failed</p>`;
}

/** Retry delays: per bucket of delay, a bar per source. */
function delaysChart(data: ReportData): string {
  if (data.delays.length === 0) return '<p class="none">no retries</p>';
  const row = 22;
  const labelWidth = 110;
  const barWidth = 360;
  const most = Math.max(...data.delays.flatMap((d) => d.buckets), 1);
  // The buckets from the shortest delay to the longest (empty ones between them stay).
  const used = DELAY_BUCKET_LABELS.map((_, b) => data.delays.some((d) => (d.buckets[b] ?? 0) > 0));
  const first = Math.max(0, used.indexOf(true));
  const last = Math.max(first, used.lastIndexOf(true));
  const groupHeight = data.delays.length * row + 8;
  const height = (last - first + 1) * groupHeight;
  const groups = DELAY_BUCKET_LABELS.slice(first, last + 1)
    .map((label, k) => {
      const b = first + k;
      const y0 = k * groupHeight;
      const bars = data.delays
        .map((d, j) => {
          const count = d.buckets[b] ?? 0;
          const y = y0 + j * row;
          const w = count === 0 ? 0 : Math.max(1, Math.round((barWidth * count) / most));
          return `<g class="bar" data-source="${d.source}" data-bucket="${b}" data-count="${count}"><title>${d.source}, ${e(label)}: ${int(count)}</title><rect x="${labelWidth}" y="${y + 3}" width="${w}" height="${row - 6}" rx="2" fill="${COLORS[d.source]}"/><text x="${labelWidth + w + 6}" y="${y + 15}" class="value">${int(count)}</text></g>`;
        })
        .join('');
      return `<text x="${labelWidth - 8}" y="${y0 + 15}" text-anchor="end">${e(label)}</text>${bars}`;
    })
    .join('');
  const chart = `<svg class="chart" data-chart="delays" viewBox="0 0 ${labelWidth + barWidth + 70} ${height}" width="${labelWidth + barWidth + 70}" height="${height}" role="img" aria-label="retry delays by source">${groups}</svg>`;
  const legend = `<p class="legend">${data.delays.map((d) => `<span style="background:${COLORS[d.source]}"></span>${d.source}`).join(' ')}</p>`;
  const table = `<table class="delays"><thead><tr><th>source</th><th>retries</th><th>mean delay</th><th>longest</th><th>total waited</th></tr></thead><tbody>${data.delays
    .map(
      (d) =>
        `<tr data-source="${d.source}" data-count="${d.count}"><td>${d.source}</td><td class="n">${int(d.count)}</td><td class="n">${ms(d.count ? d.totalMs / d.count : null)}</td><td class="n">${ms(d.maxMs)}</td><td class="n">${ms(d.totalMs)}</td></tr>`,
    )
    .join('')}</tbody></table>`;
  return `${chart}${legend}${table}`;
}

function hostsTable(data: ReportData): string {
  if (data.hosts.length === 0) return '<p class="none">no hosts</p>';
  const slowest = Math.max(...data.hosts.map((h) => h.meanMs ?? 0), 1);
  const rows = data.hosts
    .map((h) => {
      const w = h.meanMs === null ? 0 : Math.max(1, Math.round((120 * h.meanMs) / slowest));
      return `<tr class="host" data-lines="${h.lines}" data-done="${h.done}" data-failed="${h.failed}"><td class="url">${e(h.host)}</td><td class="n">${int(h.lines)}</td><td class="n">${int(h.done)}</td><td class="n${h.failed ? ' bad' : ''}">${int(h.failed)} (${pct(h.failed, h.done + h.failed)})</td><td class="n">${int(h.attempts)}</td><td class="n">${ms(h.meanMs)}</td><td><svg width="124" height="12" aria-hidden="true"><rect width="${w}" height="12" rx="2" fill="${COLORS.bar}"/></svg></td><td class="n">${ms(h.maxMs)}</td></tr>`;
    })
    .join('');
  const more =
    data.hostCount > data.hosts.length
      ? `<p class="note">the ${data.hosts.length} busiest of ${int(data.hostCount)} hosts</p>`
      : '';
  return `<table data-table="hosts"><thead><tr><th>host</th><th>lines</th><th>done</th><th>failed</th><th>attempts</th><th>mean duration</th><th></th><th>longest</th></tr></thead><tbody>${rows}</tbody></table>${more}`;
}

function linesTable(name: string, lines: readonly ReportLine[]): string {
  if (lines.length === 0) return '<p class="none">none</p>';
  const rows = lines
    .map((l) => {
      const outcome = l.status !== null ? String(l.status) : (l.errorCode ?? '');
      const message = l.errorMessage ? `<div class="msg">${e(l.errorMessage)}</div>` : '';
      return `<tr data-line="${l.line}"><td class="n">${l.line}</td><td>${e(l.method ?? '')}</td><td class="url">${e(l.url ?? '')}</td><td>${e(l.state)}</td><td>${e(outcome)}${message}</td><td>${e(l.reason ?? '')}</td><td class="n">${l.attempts}</td><td class="n">${ms(l.durationMs)}</td></tr>`;
    })
    .join('');
  return `<table data-table="${name}"><thead><tr><th>line</th><th>method</th><th>url</th><th>state</th><th>outcome</th><th>reason</th><th>attempts</th><th>duration</th></tr></thead><tbody>${rows}</tbody></table>`;
}

const CSS = `
:root{color-scheme:light;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#212529;background:#f8f9fa}
body{margin:0 auto;max-width:1100px;padding:24px}
h1{font-size:22px;margin:0 0 4px;overflow-wrap:anywhere}
h2{font-size:16px;margin:0 0 12px}
.sub{color:#868e96;margin:0 0 20px;font-size:13px}
section{background:#fff;border:1px solid #dee2e6;border-radius:8px;padding:16px;margin:0 0 16px;overflow-x:auto}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:16px}
.grid section{margin:0}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:0 0 16px}
.card{background:#fff;border:1px solid #dee2e6;border-radius:8px;padding:10px 16px;min-width:110px}
.card b{display:block;font-size:22px}
.card span{color:#868e96;font-size:12px}
svg.chart{max-width:100%;height:auto;font-size:12px}
svg text{fill:#343a40}
svg text.value{fill:#868e96}
.axis{stroke:#adb5bd}
table{border-collapse:collapse;width:100%;font-size:12px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #f1f3f5;vertical-align:top}
th{color:#868e96;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.url{overflow-wrap:anywhere;max-width:420px;font-family:ui-monospace,monospace}
td.bad{color:#e03131}
.msg{color:#868e96;overflow-wrap:anywhere;max-width:320px}
.legend{font-size:12px;color:#495057;margin:6px 0}
.legend span{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 4px 0 10px}
.none,.note{color:#868e96;font-size:12px}
table.delays{margin-top:8px;width:auto}
`;

/**
 * The report as one self-contained HTML page (no script, nothing fetched): summary figures,
 * throughput over time, outcomes and failure reasons, attempts per line, retry delays by
 * source, hosts, the slowest and the failed lines. Every text is HTML-escaped.
 * @example writeFileSync('report.html', renderReport(await collectReport(journal)));
 */
export function renderReport(data: ReportData): string {
  const c = data.counts;
  const finished = c.done + c.failed;
  const retries = data.delays.reduce((n, d) => n + d.count, 0);
  const span =
    data.firstAttemptAt !== null && data.lastFinishedAt !== null
      ? data.lastFinishedAt - data.firstAttemptAt
      : null;
  const rate = span && span > 0 ? (finished * 1000) / span : null;
  const card = (name: string, value: string, label: string): string =>
    `<div class="card" data-figure="${name}"><b>${value}</b><span>${label}</span></div>`;
  const cards = [
    card('total', int(data.total), 'lines'),
    card('done', int(c.done), `done (${pct(c.done, data.total)})`),
    card('failed', int(c.failed), `failed (${pct(c.failed, data.total)})`),
    card('left', int(c.pending + c.in_flight), 'pending or in flight'),
    card('invalid', int(c.invalid), 'invalid'),
    card('retries', int(retries), 'retries scheduled'),
    card('elapsed', span === null ? '–' : formatDuration(span), 'first attempt to last finish'),
    card('rate', rate === null ? '–' : `${rate.toFixed(rate < 10 ? 1 : 0)}/s`, 'lines finished'),
  ].join('');
  const failedNote =
    data.failedCount > data.failed.length
      ? `<p class="note">the first ${data.failed.length} of ${int(data.failedCount)} failed lines (dogged export --state failed lists them all)</p>`
      : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="dogged report">
<title>${e(`dogged report: ${data.title}`)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${e(data.title)}</h1>
<p class="sub">dogged batch report, generated ${e(iso(data.generatedAt))}; first attempt ${e(iso(data.firstAttemptAt))}, last finish ${e(iso(data.lastFinishedAt))}</p>
<div class="cards">${cards}</div>
<section id="throughput"><h2>Lines finished over time</h2>${throughputChart(data)}</section>
<div class="grid">
<section id="outcomes"><h2>Outcomes of finished lines</h2>${hbars('outcomes', data.outcomes, outcomeColor)}</section>
<section id="reasons"><h2>Why lines failed</h2>${hbars('reasons', data.reasons, () => COLORS.failed)}</section>
<section id="attempts"><h2>Attempts per finished line</h2>${hbars('attempts', data.attempts, () => COLORS.bar)}</section>
<section id="delays"><h2>Retry delays by source</h2>${delaysChart(data)}</section>
</div>
<section id="hosts" style="margin-top:16px"><h2>Hosts: latency and errors</h2>${hostsTable(data)}</section>
<section id="slowest"><h2>Slowest lines</h2>${linesTable('slowest', data.slowest)}</section>
<section id="failed"><h2>Failed lines</h2>${linesTable('failed', data.failed)}${failedNote}</section>
</body>
</html>
`;
}
