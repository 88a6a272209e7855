/**
 * `npm run bench [name...]`: runs each benchmark in its own process (so one cannot warm up or
 * slow down another) and prints its table. `npm run bench -- --check [name...]`: the same, and
 * exits 1 when a benchmark printed a goal as `NOT met` (or failed), naming each missed goal.
 *
 * A benchmark run on its own exits 3 (`GOAL_MISSED`, bench/lib.ts) when it missed a goal and 1
 * when it failed to run; here, without `--check`, a missed goal is named but does not fail the
 * run, and with `--check` it does.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GOAL_MISSED } from './lib.js';

const dir = fileURLToPath(new URL('.', import.meta.url));
const all = readdirSync(dir)
  .filter(
    (f) =>
      f.endsWith('.ts') &&
      ![
        'run.ts',
        'lib.ts',
        'server.ts',
        'peers-load.ts',
        'peers-wire.ts',
        'storm-kit.ts',
        'storm-outage.ts',
        'storm-herd.ts',
        'storm-limits.ts',
      ].includes(f),
  )
  .map((f) => f.slice(0, -3))
  .sort();
const args = process.argv.slice(2);
const check = args.includes('--check');
const wanted = args.filter((a) => a !== '--check');
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${all.join(', ')}`);
  process.exit(2);
}
let failed = false;
const missed: string[] = [];
for (const name of wanted.length ? wanted : all) {
  // --expose-gc: benchmarks that compare clients collect the heap between samples.
  const child = spawnSync(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', `${dir}${name}.ts`],
    {
      stdio: check ? ['inherit', 'pipe', 'inherit'] : 'inherit',
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
    },
  );
  if (check) {
    process.stdout.write(child.stdout);
    for (const line of child.stdout.split('\n'))
      if (/NOT met/.test(line)) missed.push(`${name}: ${line.trim().slice(0, 300)}`);
  }
  if (child.status === GOAL_MISSED) {
    if (!check) console.error(`benchmark ${name} missed a goal (exit ${GOAL_MISSED})`);
    // With --check, its NOT met lines are in `missed`.
    else if (!child.stdout.includes('NOT met')) missed.push(`${name}: exit ${GOAL_MISSED}`);
  } else if (child.status !== 0) {
    console.error(`benchmark ${name} failed (exit ${child.status ?? child.signal})`);
    failed = true;
  }
}
if (check && missed.length) {
  console.error(
    `\n${missed.length} goal line(s) NOT met:\n${missed.map((m) => `  ${m}`).join('\n')}`,
  );
  failed = true;
}
process.exit(failed ? 1 : 0);
