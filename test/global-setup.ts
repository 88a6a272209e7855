/**
 * The test suite's preflight (vitest `globalSetup`): before any test runs, probes every service
 * and tool the tests need, prints one line per missing one (what is missing, and the command
 * that provides it), and hands the result to the test files (`inject('services')`, read by
 * test/support/needs.ts). The tests that need a missing service are skipped with that reason,
 * or, when CI is set, fail at once: CI never passes by skipping.
 */
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { buildCli } from './support/build.js';
import { ciIsSet } from './support/ci.js';
import { describeMissing, probeServices, SERVICES } from './support/services.js';

export default async function preflight(project: TestProject): Promise<void> {
  // The CLI tests spawn the built CLI: dist/ is brought up to date with src/ first.
  const [services] = await Promise.all([
    probeServices(),
    buildCli(fileURLToPath(new URL('..', import.meta.url))),
  ]);
  project.provide('services', services);
  const missing = SERVICES.flatMap((s) => {
    const m = services[s];
    return m === undefined ? [] : [`preflight: missing ${s}: ${describeMissing(m)}`];
  });
  if (missing.length === 0) return;
  const consequence = ciIsSet()
    ? 'CI is set: the tests that need them will FAIL'
    : 'the tests that need them are skipped (with CI set they fail)';
  process.stderr.write(`${missing.join('\n')}\npreflight: ${consequence}.\n`);
}
