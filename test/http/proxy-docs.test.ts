/**
 * Every ```ts block of docs/proxies.md is real, runnable code (offline: loopback only), and
 * prints what its `// →` lines show: each is written to its own module in a temporary directory,
 * run and checked as the README's blocks are (test/support/doc-blocks.ts).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { docBlocks, outputMismatch, runBlock } from '../support/doc-blocks.js';

const page = readFileSync(new URL('../../docs/proxies.md', import.meta.url), 'utf8');
const blocks = docBlocks('docs/proxies.md', page);
const dir = mkdtempSync(join(tmpdir(), 'dogged-proxy-docs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('docs/proxies.md code blocks run as written', () => {
  it('has code blocks to check', () => {
    expect(blocks.length).toBeGreaterThan(4);
  });

  for (const block of blocks) {
    if (!block.run) continue;
    it(`block ${block.index} (${block.heading})`, async () => {
      const file = join(dir, `block-${String(block.index).padStart(2, '0')}.ts`);
      const lines = await runBlock(block, file);
      const mismatch = outputMismatch(block.shows, lines);
      if (mismatch) expect.fail(`docs/proxies.md block ${block.index}: ${mismatch}`);
      if (block.heading.includes('fetch_with_proxy_rotation')) {
        expect(lines.filter((l) => /^request \d: 200 from 127\.0\.0\.[234] /.test(l))).toHaveLength(
          6,
        );
      }
    });
  }
});
