/**
 * Every ```ts block of README.md and docs/*.md is real, runnable code, and prints what it says
 * it prints: this test writes each block to its own module under test/.readme/, runs it, and
 * compares its output with the block's `// →` lines (test/support/doc-blocks.ts says how).
 * (`npm run typecheck` then checks the modules too.) docs/proxies.md has its own test
 * (test/http/proxy-docs.test.ts), which checks its blocks the same way.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { docBlocks, outputMismatch, runBlock } from './support/doc-blocks.js';
import { needs } from './support/needs.js';

const root = new URL('../', import.meta.url);
const pages = [
  'README.md',
  ...readdirSync(new URL('docs/', root))
    .filter((f) => f.endsWith('.md') && f !== 'proxies.md')
    .sort()
    .map((f) => `docs/${f}`),
];
const blocks = pages.flatMap((page) => docBlocks(page, readFileSync(new URL(page, root), 'utf8')));

const dir = new URL('test/.readme/', root);
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });

describe('code blocks of the README and docs/ run as written and print what they show', () => {
  it('has code blocks to check, most showing their output', () => {
    expect(blocks.filter((b) => b.file === 'README.md').length).toBeGreaterThan(0);
    expect(blocks.filter((b) => b.file !== 'README.md').length).toBeGreaterThan(20);
    expect(blocks.filter((b) => b.shows.length > 0).length).toBeGreaterThan(10);
  });

  for (const block of blocks) {
    if (!block.run) continue;
    const name = `${block.file} block ${block.index} (${block.heading})`;
    const test = block.needs.length > 0 ? needs.it(...block.needs) : it;
    test(name, async () => {
      const slug = block.file.replace(/\W+/g, '-').replace(/-md$/, '');
      const file = new URL(`${slug}-block-${String(block.index).padStart(2, '0')}.ts`, dir);
      const printed = await runBlock(block, file);
      // What it printed, next to it: test/.readme/*.out (for writing the `// →` lines).
      writeFileSync(new URL(file.href.replace(/\.ts$/, '.out')), `${printed.join('\n')}\n`);
      const mismatch = outputMismatch(block.shows, printed);
      if (mismatch) expect.fail(`${name}: ${mismatch}`);
    });
  }
});
