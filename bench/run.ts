/**
 * `npm run bench [name...]`: runs each benchmark in its own process (so one cannot warm up or
 * slow down another) and prints its table.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

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
        'storm-kit.ts',
        'storm-outage.ts',
        'storm-herd.ts',
        'storm-limits.ts',
      ].includes(f),
  )
  .map((f) => f.slice(0, -3))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; available: ${all.join(', ')}`);
  process.exit(2);
}
let failed = false;
for (const name of wanted.length ? wanted : all) {
  const child = spawnSync(process.execPath, ['--import', 'tsx', `${dir}${name}.ts`], {
    stdio: 'inherit',
  });
  if (child.status !== 0) {
    console.error(`benchmark ${name} failed (exit ${child.status ?? child.signal})`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
