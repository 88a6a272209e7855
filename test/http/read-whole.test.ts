import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readWhole } from '../../src/http/resume.js';

/** A stream that pushes `chunks`, then ends or fails with `error`. */
function source(chunks: string[], error?: Error): Readable {
  const queue = chunks.map((c) => Buffer.from(c));
  return new Readable({
    read() {
      const next = queue.shift();
      if (next) this.push(next);
      else if (error) this.destroy(error);
      else this.push(null);
    },
  });
}

const tooLarge = (received: number): Error => new RangeError(`too large at ${received}`);
const text = (data: Buffer): string => data.toString();
const never = <T>(): Promise<T> => Promise.reject(new Error('failed() called'));

describe('readWhole', () => {
  it('gives done() the whole body, in one chunk, in many, or empty', async () => {
    expect(await readWhole(source(['abc']), 100, tooLarge, text, never)).toBe('abc');
    expect(await readWhole(source(['ab', 'cd', 'ef']), 100, tooLarge, text, never)).toBe('abcdef');
    const empty = await readWhole(source([]), 100, tooLarge, (d) => d, never<Buffer>);
    expect(empty).toBeInstanceOf(Buffer);
    expect(empty.length).toBe(0);
  });

  it('rejects with what done() throws', async () => {
    const parse = (data: Buffer): unknown => JSON.parse(data.toString());
    await expect(readWhole(source(['{"a":']), 100, tooLarge, parse, never)).rejects.toThrow(
      SyntaxError,
    );
  });

  it('gives failed() the error and every chunk that arrived, in order', async () => {
    const cut = new Error('cut');
    for (const chunks of [[], ['ab'], ['ab', 'cd', 'ef']]) {
      let seen: [unknown, string] | undefined;
      const result = await readWhole(source(chunks, cut), 100, tooLarge, text, (error, partial) => {
        seen = [error, Buffer.concat(partial).toString()];
        return Promise.resolve('recovered');
      });
      expect(result).toBe('recovered');
      expect(seen).toEqual([cut, chunks.join('')]);
    }
  });

  it('stops past the limit with the error tooLarge makes, keeping only what fitted', async () => {
    let seen: [unknown, string] | undefined;
    const result = readWhole(
      source(['abcd', 'efgh', 'ijkl']),
      6,
      tooLarge,
      text,
      (error, partial) => {
        seen = [error, Buffer.concat(partial).toString()];
        return Promise.reject(error);
      },
    );
    await expect(result).rejects.toThrow('too large at 8');
    expect(seen?.[1]).toBe('abcd');
  });
});
