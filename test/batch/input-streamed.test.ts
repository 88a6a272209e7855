import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBatch } from '../../src/index.js';
import { type ChaosServer, startChaosServer } from '../../src/testing/index.js';
import { tempDir, waitFor } from './batch-support.js';

/**
 * "The input is streamed, not loaded": the input file is a named pipe that holds back its end.
 * A runner that read the whole file before starting would send nothing until the pipe closed.
 */

let chaos: ChaosServer;
let dir: string;
let cleanup: () => void;
beforeAll(async () => {
  chaos = await startChaosServer();
  ({ dir, cleanup } = tempDir());
});
afterAll(async () => {
  await chaos.close();
  cleanup();
});

describe('the input file', () => {
  it.skipIf(process.platform === 'win32')(
    'is read as it comes: work starts before the input ends',
    async () => {
      const fifo = join(dir, 'urls.fifo');
      execFileSync('mkfifo', [fifo]);
      const writer = createWriteStream(fifo);
      const line = (i: number) => `${chaos.url}/status/200?key=l${i}\n`;
      const run = runBatch({ input: fifo, db: join(dir, 'run.sqlite') });
      // More than one insert transaction's worth (200 lines), then the input stalls.
      for (let i = 0; i < 300; i++) writer.write(line(i));
      await waitFor(() => chaos.log().length >= 100, 'requests while the input is still open');
      for (let i = 300; i < 400; i++) writer.write(line(i));
      writer.end();
      await once(writer, 'finish');
      const result = await run;
      expect(result.counts.done).toBe(400);
    },
    60_000,
  );
});
