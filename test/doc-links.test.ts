/**
 * Every link to a heading in README.md and docs/*.md (`[text](#anchor)`, `[text](file.md#anchor)`)
 * names a heading of its target, slugged as GitHub slugs it: lower case, every character that is
 * not a letter, a digit, `_`, `-` or a space dropped (an en dash too: "18:10–20:05" is
 * `18102005`), spaces made `-`, and a repeated slug numbered `-1`, `-2`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

function slug(heading: string): string {
  return heading
    .toLowerCase()
    .trim()
    .replace(/[^\p{L}\p{M}\p{Nd}\p{Nl}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a Markdown file's headings (outside fenced code). */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6} (.+)$/.exec(line);
    if (!heading) continue;
    // What GitHub slugs is the heading's text: links and code marks stripped.
    const base = slug((heading[1] as string).replace(/\[([^\]]*)\]\([^)]*\)/g, '$1'));
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** The links to a heading in `text` that name no heading of their target. */
function brokenLinks(file: string, text: string, read: (path: string) => string): string[] {
  const broken: string[] = [];
  // Each target read and its headings slugged once, however many links name it.
  const anchors = new Map<string, Set<string>>();
  for (const [, target = '', anchor = ''] of text.matchAll(/\]\(([^)\s#]*)#([^)\s]+)\)/g)) {
    if (/^[a-z]+:/.test(target)) continue;
    const path = target === '' ? file : resolve(dirname(file), target);
    let known = anchors.get(path);
    if (!known) {
      known = anchorsOf(path === file ? text : read(path));
      anchors.set(path, known);
    }
    if (!known.has(anchor)) broken.push(`${target}#${anchor}`);
  }
  return broken;
}

describe('links to headings in the docs', () => {
  it('slugs a heading as GitHub does', () => {
    expect(slug('The runs of 2026-12-05, 18:10–20:05 UTC (Intel Xeon)')).toBe(
      'the-runs-of-2026-12-05-18102005-utc-intel-xeon',
    );
    expect([...anchorsOf('# A `b`\n## A b\n```\n# not a heading\n```\n')]).toEqual([
      'a-b',
      'a-b-1',
    ]);
    const docs = { '/d/x.md': '## Two words\n[ok](#two-words) [bad](#two-word) [y](y.md#top)' };
    const read = (path: string) =>
      (docs as Record<string, string>)[path] ?? (path === '/d/y.md' ? '# Top\n' : '');
    expect(brokenLinks('/d/x.md', docs['/d/x.md'], read)).toEqual(['#two-word']);
  });

  const files = [
    'README.md',
    ...readdirSync(join(root, 'docs'))
      .filter((name) => name.endsWith('.md'))
      .map((name) => join('docs', name)),
  ];
  it.each(files)('%s', (file) => {
    const path = join(root, file);
    const read = (p: string) => readFileSync(p, 'utf8');
    expect(
      brokenLinks(path, read(path), read).map((link) => `${relative(root, path)}: ${link}`),
    ).toEqual([]);
  });
});
