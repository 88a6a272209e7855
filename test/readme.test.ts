/**
 * Every ```ts block of the README is real, runnable code: this test extracts each block into its
 * own module under test/.readme/ and runs it. (`npm run typecheck` then checks them too.)
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';

const root = new URL('../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');
const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m, i) => {
  const before = readme.slice(0, m.index);
  const heading = [...before.matchAll(/^#+ (.+)$/gm)].at(-1)?.[1] ?? 'top';
  return { index: i + 1, heading, code: m[1] as string };
});

const dir = new URL('test/.readme/', root);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

describe('README code blocks run as written', () => {
  it('has code blocks to check', () => {
    expect(blocks.length).toBeGreaterThan(3);
  });

  for (const block of blocks) {
    it(`block ${block.index} (${block.heading})`, async () => {
      const file = new URL(`block-${String(block.index).padStart(2, '0')}.ts`, dir);
      // `export {}` makes each block a module, so top-level await works and names do not clash.
      writeFileSync(file, `${block.code}\nexport {};\n`);
      const log = vi.spyOn(console, 'log').mockImplementation(() => {});
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      try {
        await import(fileURLToPath(file));
      } finally {
        log.mockRestore();
        warn.mockRestore();
      }
    });
  }
});
