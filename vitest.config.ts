import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import type { Plugin } from 'vite';
import { defineConfig } from 'vitest/config';

/**
 * Vite's default TypeScript transform leaves standard (TC39) decorators in place, and Node 20
 * cannot parse them. Files that use decorator syntax are lowered by TypeScript itself first.
 */
function standardDecorators(): Plugin {
  return {
    name: 'dogged:standard-decorators',
    enforce: 'pre',
    transform(code, id) {
      if (!id.endsWith('.ts') || !/(^|[\s;{(])@[A-Za-z_$]/m.test(code)) return null;
      const out = ts.transpileModule(code, {
        fileName: id,
        compilerOptions: {
          target: ts.ScriptTarget.ES2022,
          module: ts.ModuleKind.ESNext,
          sourceMap: true,
          verbatimModuleSyntax: false,
        },
      });
      return { code: out.outputText, map: out.sourceMapText ?? null };
    },
  };
}

/** Test files that measure time against real rate limiters: run after the others, one at a time. */
const TIMED = ['test/limits/**/*.test.ts', 'test/batch/distributed/fleet-*.test.ts'];

export default defineConfig({
  plugins: [standardDecorators()],
  resolve: {
    // Examples and README snippets import the package by name, as users do.
    alias: [
      {
        find: /^dogged\/testing$/,
        replacement: fileURLToPath(new URL('./src/testing/index.ts', import.meta.url)),
      },
      { find: /^dogged$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
    ],
  },
  test: {
    projects: [
      // Two test files at a time, even on 2 cores (vitest's default there is one): most of the
      // suite's time is spent waiting on real servers and child processes, not on CPU. Each file
      // that uses Redis has a database of its own, and every server takes port 0.
      {
        extends: true,
        test: {
          name: 'parallel',
          include: ['test/**/*.test.ts'],
          exclude: TIMED,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      // Then, alone, the files that check the timing of a fleet against real rate limiters (a
      // worker's view of a pause is at most 50 ms late): a machine shared with another test
      // file is not what they measure.
      {
        extends: true,
        test: { name: 'timed', include: TIMED, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
    environment: 'node',
    // The preflight: one line per missing service or tool, before any test runs.
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
