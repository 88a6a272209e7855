import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The tests `npm run mutation` runs against each mutant of the decision core: the unit and
 * Session-level tests that exercise it in seconds (about 85 s for all of them). The system tests
 * (child processes, kills, Redis and PostgreSQL, real rate limiters, memory and load runs) guard
 * the same code from far away and make up most of the full suite's 9 minutes: run against each
 * of hundreds of mutants per file, they are out of reach.
 */
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    projects: undefined,
    include: [
      'test/retry/**/*.test.ts',
      'test/http/{policy*,retry-after*,redirects*,errors,storm*,session-*,classify*}.test.ts',
      'test/batch/{decide*,journal*,host-limits,input-line,scheduler}.test.ts',
      'test/testing/fake-clock.test.ts',
    ],
    exclude: ['test/http/session-leaks.test.ts'],
  },
});
