import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { type FileSink, writeThroughTemp } from '../http/body-file.js';
import { collect } from '../http/resume.js';

/**
 * Where response bodies go: `'db'` (the journal's `responses` table), `'none'` (read to the end,
 * counted, dropped), or `{ dir }` (one file per line, `<dir>/<line>.body`).
 */
export type BodiesOption = 'db' | 'none' | { readonly dir: string };

/** A body as recorded: in the journal, in a file, or only its size. */
export interface StoredBody {
  readonly body: Buffer | null;
  readonly bodyPath: string | null;
  readonly bodySize: number;
}

/**
 * The body of one attempt, read to its end: kept as the line's body when the attempt is final,
 * dropped when the line is retried.
 */
export interface ReceivedBody {
  /** Its size in bytes. */
  readonly size: number;
  /** Records it as the body of `line`. */
  keep(line: number): Promise<StoredBody>;
  /** Drops it (a file written for it is removed). */
  discard(): Promise<void>;
  /** For a body held in memory or only counted: {@link keep} at once (dropping it is a no-op). */
  keepNow?(): StoredBody;
}

/** Parses the CLI form: `db`, `none` or `dir:PATH`. */
export function parseBodiesOption(text: string): BodiesOption {
  if (text === 'db' || text === 'none') return text;
  if (text.startsWith('dir:') && text.length > 4) return { dir: text.slice(4) };
  throw new TypeError(`--bodies must be db, none or dir:PATH, got ${JSON.stringify(text)}`);
}

/** Counts a stream's bytes to its end, holding none of them. */
function count(body: Readable): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
    });
    body.once('end', () => resolve(size));
    body.once('error', reject);
  });
}

/** A body kept in memory (`db`), or only counted (`none`): one object per body, no closures. */
class HeldBody implements ReceivedBody {
  readonly size: number;
  readonly #data: Buffer | null;

  constructor(size: number, data: Buffer | null) {
    this.size = size;
    this.#data = data;
  }

  keep(): Promise<StoredBody> {
    return Promise.resolve(this.keepNow());
  }

  keepNow(): StoredBody {
    return { body: this.#data, bodyPath: null, bodySize: this.size };
  }

  discard(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Receives bodies as `option` says, as they stream in: `db` buffers them (bounded by the
 * session's `maxBodySize`), `none` only counts their bytes, `dir` streams each one to a file of
 * its own. A file is written under a unique temporary name (created exclusively, mode 0600,
 * never through a symlink) and renamed when the attempt is final, so a crash never leaves half
 * a body under the final name (a resumed run writes it again).
 */
export class BodyStore {
  readonly #option: BodiesOption;
  readonly #dir: string | undefined;

  constructor(option: BodiesOption) {
    this.#option = option;
    if (typeof option === 'object') {
      this.#dir = resolve(option.dir);
      // 0700 for what dogged creates; an existing directory keeps its mode.
      mkdirSync(this.#dir, { recursive: true, mode: 0o700 });
    }
  }

  /**
   * True when bodies are held in memory or only counted (`db`, `none`): a small body may then be
   * read whole ({@link hold}) instead of streamed to {@link receive}.
   */
  get readsWhole(): boolean {
    return this.#dir === undefined;
  }

  /** A body read whole (see {@link readsWhole}): kept (`db`) or only counted (`none`). */
  hold(data: Buffer): ReceivedBody {
    return new HeldBody(data.length, this.#option === 'db' ? data : null);
  }

  /** For the journal's meta: how bodies are stored. */
  describe(): string {
    return typeof this.#option === 'object' ? `dir:${this.#dir}` : this.#option;
  }

  /**
   * Reads `body` to its end the way bodies are stored. Rejects with the stream's error (a cut
   * body, a limit passed), or with a `BodyFileError` when the file cannot be written.
   */
  async receive(body: Readable): Promise<ReceivedBody> {
    if (this.#option === 'db') {
      const data = await collect(body);
      return new HeldBody(data.length, data);
    }
    if (this.#dir === undefined) return new HeldBody(await count(body), null);
    const dir = this.#dir;
    const file: FileSink = await writeThroughTemp(dir, body);
    return {
      size: file.size,
      keep: async (line) => {
        const path = join(dir, `${line}.body`);
        await file.commit(path);
        return { body: null, bodyPath: path, bodySize: file.size };
      },
      discard: () => file.discard(),
    };
  }
}
