/**
 * Every ```ts block of docs/proxies.md is real, runnable code (offline: loopback only). Each is
 * written to its own module in a temporary directory and run, as the README's blocks are.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

const page = readFileSync(new URL('../../docs/proxies.md', import.meta.url), 'utf8');
const blocks = [...page.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m, i) => {
  const before = page.slice(0, m.index);
  const heading = [...before.matchAll(/^#+ (.+)$/gm)].at(-1)?.[1] ?? 'top';
  return { index: i + 1, heading, code: m[1] as string };
});
const dir = mkdtempSync(join(tmpdir(), 'dogged-proxy-docs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('docs/proxies.md code blocks run as written', () => {
  it('has code blocks to check', () => {
    expect(blocks.length).toBeGreaterThan(4);
  });

  for (const block of blocks) {
    it(`block ${block.index} (${block.heading})`, async () => {
      const file = join(dir, `block-${String(block.index).padStart(2, '0')}.ts`);
      writeFileSync(file, `${block.code}\nexport {};\n`);
      const lines: string[] = [];
      const log = vi.spyOn(console, 'log').mockImplementation((...args) => {
        lines.push(args.map(String).join(' '));
      });
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      const debug = vi.spyOn(console, 'debug').mockImplementation(() => {});
      try {
        await import(file);
      } finally {
        log.mockRestore();
        warn.mockRestore();
        debug.mockRestore();
      }
      if (block.heading.includes('fetch_with_proxy_rotation')) {
        expect(lines.filter((l) => / 200 from 127\.0\.0\.[234] /.test(l))).toHaveLength(6);
      }
    });
  }
});
