/**
 * `npm run demo`: the crash-safe batch fetcher against a local chaos server, no network needed.
 *
 * Starts the chaos server on loopback (two origins), writes 2,000 URLs that fail the way real
 * ones do (503s, 429s with Retry-After, connection resets, truncated bodies, slow responses,
 * read timeouts, 404s), and runs `dogged batch` over them with the progress bar and the summary.
 * Then it checks the journal: every retriable URL done, the 404s failed without a retry, and
 * every line recorded exactly once.
 *
 * It ends by writing the batch's HTML report (`dogged report`) next to the journal and printing
 * its path.
 *
 * `npm run demo -- --kill` also kills the batch with SIGKILL halfway and resumes it.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportRecords, Journal, seededRandom, writeReport } from 'dogged';
import { startChaosServer } from 'dogged/testing';

const TOTAL = 2000;
const root = fileURLToPath(new URL('..', import.meta.url));
const killHalfway = process.argv.includes('--kill');

const chaos = await startChaosServer({ logLimit: 100 });
const dir = mkdtempSync(join(tmpdir(), 'dogged-demo-'));
const input = join(dir, 'urls.txt');
const db = join(dir, 'run.sqlite');

/** What each URL does, with its share of the 2,000. */
const kinds: { share: number; kind: string; path: (i: number) => string }[] = [
  { share: 0.4, kind: 'ok', path: (i) => `/bytes/512?seed=${i}` },
  { share: 0.13, kind: '503', path: (i) => `/flaky/u${i}?fail=2&status=503` },
  // A rate-limited endpoint (a token bucket per client: 40/s, bursts of 5; 429 + Retry-After).
  { share: 0.1, kind: '429', path: (i) => `/ratelimit?rps=40&burst=5&key=u${i}` },
  { share: 0.1, kind: 'reset', path: (i) => `/flaky/u${i}?fail=1&mode=reset` },
  { share: 0.1, kind: 'truncated', path: (i) => `/flaky/u${i}?fail=1&mode=truncate` },
  { share: 0.05, kind: 'slow', path: (i) => `/delay/${200 + (i % 5) * 100}?key=u${i}` },
  { share: 0.02, kind: 'timeout', path: (i) => `/flaky/u${i}?fail=1&mode=delay&delay=3000` },
  { share: 0.1, kind: '404', path: (i) => `/status/404?key=u${i}` },
];

const random = seededRandom(2026);
const expected = new Map<number, string>();
const lines: string[] = [];
let budget = kinds.map((k) => Math.round(k.share * TOTAL));
for (let i = 0; i < TOTAL; i++) {
  // A seeded shuffle of the kinds: the same file on every run.
  let pick = Math.floor(random() * budget.reduce((a, b) => a + b, 0));
  let k = 0;
  while (pick >= (budget[k] ?? 0)) pick -= budget[k++] ?? 0;
  budget = budget.map((b, j) => (j === k ? b - 1 : b));
  const kind = kinds[k] ?? (kinds[0] as (typeof kinds)[number]);
  const origin = i % 2 === 0 ? chaos.url : chaos.secondaryUrl;
  lines.push(`${origin}${kind.path(i)}`);
  expected.set(i + 1, kind.kind);
}
writeFileSync(input, `${lines.join('\n')}\n`);

const args = [
  'batch',
  input,
  '--db',
  db,
  '--concurrency',
  '48',
  '--per-host',
  '24',
  '--retries',
  '4',
  '--backoff',
  '250ms',
  '--timeout',
  '2s,1500ms',
  '--progress-interval',
  '1s',
];

function runBatch(killAfterMs?: number): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: root,
      stdio: 'inherit',
    });
    const timer =
      killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? (signal ? -1 : null));
    });
  });
}

console.log(
  `dogged demo: ${TOTAL.toLocaleString('en-US')} URLs on a local chaos server (${chaos.url} and ${chaos.secondaryUrl})`,
);
console.log(`mix: ${kinds.map((k) => `${Math.round(k.share * 100)}% ${k.kind}`).join(', ')}\n`);
console.log(`$ dogged ${args.join(' ')}\n`);
const started = performance.now();
if (killHalfway) {
  await runBatch(2500);
  console.log('\n--- killed with SIGKILL mid-run; running the same command again resumes ---\n');
}
const code = await runBatch();
const seconds = (performance.now() - started) / 1000;

// Check the journal: what dogged recorded, line by line.
const journal = Journal.open(db, { readonly: true });
let recorded = 0;
const wrong: string[] = [];
for (const record of exportRecords(journal)) {
  recorded++;
  const kind = expected.get(record.line);
  if (kind === '404') {
    if (record.state !== 'failed' || record.status !== 404 || record.attempts !== 1)
      wrong.push(`line ${record.line} (404): ${record.state} after ${record.attempts} attempts`);
  } else if (record.state !== 'done' || record.status !== 200) {
    wrong.push(
      `line ${record.line} (${kind}): ${record.state} ${record.status ?? record.error?.code}`,
    );
  }
}
// The batch as one self-contained HTML page: what `dogged report run.sqlite -o report.html` writes.
const report = join(dir, 'report.html');
await writeReport(journal, report, { title: `dogged demo: ${TOTAL.toLocaleString('en-US')} URLs` });
journal.close();
await chaos.close();

console.log(
  `\nchecks: ${recorded.toLocaleString('en-US')} of ${TOTAL.toLocaleString('en-US')} lines recorded, each once; ` +
    `every retriable URL done; the 404s failed without a retry: ${wrong.length === 0 ? 'all true' : `${wrong.length} wrong`}`,
);
for (const w of wrong.slice(0, 10)) console.log(`  ${w}`);
console.log(
  `exit code ${code} (10: finished, some lines failed: the 404s), ${seconds.toFixed(1)} s in all`,
);
console.log(`journal: ${db}  (try: npx dogged status ${db})`);
console.log(
  `report:  ${report}  (open it in a browser; made by dogged report ${db} -o report.html)`,
);
process.exitCode = wrong.length === 0 && recorded === TOTAL ? 0 : 1;
