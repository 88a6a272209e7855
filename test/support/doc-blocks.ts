/**
 * The code blocks of README.md and docs/*.md, and the output they show.
 *
 * A ```ts block is run as written (each in its own module). Its info string may add words:
 * `no-run` (a fragment, shown but not run) and `needs=redis,postgres` (the services it uses:
 * test/support/needs.ts). What a block prints is shown in the block itself, one `// →` comment
 * per printed line, either after the statement that prints it or on lines of their own:
 *
 *     console.log(res.status, res.attempts); // → 200 3
 *     console.log(outcomes.join(' '));
 *     // → MaxRetryError BudgetExhaustedError …
 *
 * The shown lines must appear in the output in that order (other lines may come between them),
 * each matching a whole printed line, where `…` stands for any text (timings, ports, ids).
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { format } from 'node:util';
import { vi } from 'vitest';
import { SERVICES, type Service } from './service-names.js';

export interface DocBlock {
  /** `README.md`, `docs/storm-control.md` */
  readonly file: string;
  /** 1-based, in the file's order of ```ts blocks. */
  readonly index: number;
  readonly heading: string;
  readonly code: string;
  readonly run: boolean;
  readonly needs: Service[];
  /** The `// →` lines, in order. */
  readonly shows: string[];
}

const OUTPUT = /\/\/ →(?: (.*))?$/;

/** The `// →` lines of `code`, in order. */
export function shownOutput(code: string): string[] {
  return code.split('\n').flatMap((line) => {
    const m = OUTPUT.exec(line);
    return m ? [(m[1] ?? '').trimEnd()] : [];
  });
}

/** Every ```ts block of a Markdown text. */
export function docBlocks(file: string, markdown: string): DocBlock[] {
  return [...markdown.matchAll(/^```ts([^\n]*)\n([\s\S]*?)^```$/gm)].map((m, i) => {
    const before = markdown.slice(0, m.index);
    const heading = [...before.matchAll(/^#+ (.+)$/gm)].at(-1)?.[1] ?? 'top';
    const words = (m[1] ?? '').trim().split(/\s+/).filter(Boolean);
    const needs = words
      .filter((w) => w.startsWith('needs='))
      .flatMap((w) => w.slice('needs='.length).split(','))
      .map((name) => {
        if (!(SERVICES as readonly string[]).includes(name))
          throw new Error(`${file}: block ${i + 1} needs an unknown service ${name}`);
        return name as Service;
      });
    const code = m[2] as string;
    return {
      file,
      index: i + 1,
      heading,
      code,
      run: !words.includes('no-run'),
      needs,
      shows: shownOutput(code),
    };
  });
}

/** Whether a printed line is what a shown line says (`…` stands for any text). */
export function lineMatches(shown: string, printed: string): boolean {
  const pattern = shown
    .split('…')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('[\\s\\S]*');
  return new RegExp(`^${pattern}$`).test(printed.trimEnd());
}

/**
 * Undefined when every shown line matches a printed line, in order; else what went wrong, with
 * the whole output.
 */
export function outputMismatch(
  shown: readonly string[],
  printed: readonly string[],
): string | undefined {
  let at = 0;
  for (const [n, line] of shown.entries()) {
    const found = printed.findIndex((p, i) => i >= at && lineMatches(line, p));
    if (found < 0) {
      const rest = printed.slice(at);
      return [
        `shown output line ${n + 1} was not printed${at > 0 ? ' after the lines before it' : ''}:`,
        `  shown:   ${line}`,
        `  printed${at > 0 ? ' after that' : ''}:`,
        ...(rest.length ? rest.map((p) => `    ${p}`) : ['    (nothing)']),
      ].join('\n');
    }
    at = found + 1;
  }
  return undefined;
}

/**
 * Runs a block as a module and returns what it printed (console.* and process.stdout/stderr
 * writes, in order), one entry per line.
 */
export async function runBlock(block: DocBlock, file: URL | string): Promise<string[]> {
  // `export {}` makes each block a module, so top-level await works and names do not clash.
  writeFileSync(file, `${block.code}\nexport {};\n`);
  let printed = '';
  const print = (...args: unknown[]) => {
    printed += `${format(...args)}\n`;
  };
  const write = (chunk: unknown) => {
    printed += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString();
    return true;
  };
  const spies = [
    ...(['log', 'info', 'warn', 'error', 'debug'] as const).map((m) =>
      vi.spyOn(console, m).mockImplementation(print),
    ),
    vi.spyOn(process.stdout, 'write').mockImplementation(write),
    vi.spyOn(process.stderr, 'write').mockImplementation(write),
  ];
  try {
    await import(typeof file === 'string' ? file : fileURLToPath(file));
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
  return printed.replace(/\n$/, '').split('\n');
}
