import { mkdirSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/**
 * Where response bodies go: `'db'` (the journal's `responses` table), `'none'` (read to the end,
 * then dropped), or `{ dir }` (one file per line, `<dir>/<line>.body`).
 */
export type BodiesOption = 'db' | 'none' | { readonly dir: string };

/** A body as recorded: in the journal, in a file, or only its size. */
export interface StoredBody {
  readonly body: Buffer | null;
  readonly bodyPath: string | null;
  readonly bodySize: number;
}

/** Parses the CLI form: `db`, `none` or `dir:PATH`. */
export function parseBodiesOption(text: string): BodiesOption {
  if (text === 'db' || text === 'none') return text;
  if (text.startsWith('dir:') && text.length > 4) return { dir: text.slice(4) };
  throw new TypeError(`--bodies must be db, none or dir:PATH, got ${JSON.stringify(text)}`);
}

/** Stores bodies as `option` says. */
export class BodyStore {
  readonly #option: BodiesOption;
  readonly #dir: string | undefined;

  constructor(option: BodiesOption) {
    this.#option = option;
    if (typeof option === 'object') {
      this.#dir = resolve(option.dir);
      mkdirSync(this.#dir, { recursive: true });
    }
  }

  /** For the journal's meta: how bodies are stored. */
  describe(): string {
    return typeof this.#option === 'object' ? `dir:${this.#dir}` : this.#option;
  }

  /**
   * Keeps `body` for `line`. A file is written whole under a temporary name, then renamed, so a
   * crash never leaves half a body under the final name (a resumed run rewrites it).
   */
  async store(line: number, body: Buffer): Promise<StoredBody> {
    if (this.#option === 'db') return { body, bodyPath: null, bodySize: body.length };
    if (this.#dir === undefined) return { body: null, bodyPath: null, bodySize: body.length };
    const path = join(this.#dir, `${line}.body`);
    const temporary = `${path}.${process.pid}.tmp`;
    await writeFile(temporary, body);
    await rename(temporary, path);
    return { body: null, bodyPath: path, bodySize: body.length };
  }
}
