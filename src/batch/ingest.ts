import { InputChangedError } from './errors.js';
import { type BatchInput, readLineChunks } from './input.js';
import { hashLine, invalidLine, parseInputLine } from './input-line.js';
import type { Journal, NewLine } from './journal.js';

/**
 * Lines per insert transaction: large enough to be cheap, small enough to start work early and
 * to keep each synchronous slice of parsing short (about 2 ms): with 1,000 lines per slice the
 * requests in flight outlived two young-generation collections and were promoted, and the
 * collector cost the runner a tenth of its throughput.
 */
const BATCH_LINES = 200;

/** What one insert added. */
export interface IngestProgress {
  readonly pending: number;
  readonly invalid: number;
}

/**
 * Streams the input into the journal: each line once, under its line number (the stable id a
 * resume finds again), in transactions of {@link BATCH_LINES}. Lines already recorded are
 * checked against their fingerprint and left as they are; a changed line is an
 * {@link InputChangedError}. Memory stays flat whatever the input's size.
 */
export async function ingest(
  journal: Journal,
  input: BatchInput,
  signal: AbortSignal,
  onInserted: (added: IngestProgress) => void,
): Promise<void> {
  let lineNumber = 0;
  let batch: NewLine[] = [];
  const flush = (): void => {
    if (!batch.length) return;
    const result = journal.insertLines(batch);
    batch = [];
    if (result.changedLine !== undefined)
      throw new InputChangedError(journal.path, result.changedLine);
    if (result.pending || result.invalid) onInserted(result);
  };
  for await (const texts of readLineChunks(input, signal)) {
    // When the lines read in one synchronous slice were read: one clock read for all of them.
    let now = Date.now();
    for (const text of texts) {
      lineNumber++;
      const parsed = parseInputLine(text);
      if (parsed.kind === 'skip') continue;
      const hash = hashLine(text);
      batch.push(
        parsed.kind === 'request'
          ? {
              kind: 'request',
              line: lineNumber,
              hash,
              key: parsed.request.key,
              method: parsed.request.method,
              url: parsed.request.url,
              host: parsed.request.host,
              headers: parsed.request.headers,
              body: parsed.request.body,
              dueAt: now,
            }
          : Object.assign(invalidLine(lineNumber, hash, parsed, text), { at: now }),
      );
      if (batch.length >= BATCH_LINES) {
        flush();
        // Let the runner dispatch what was just added before reading on.
        await new Promise<void>((resolve) => setImmediate(resolve));
        // Stopped meanwhile: the rest of the chunk is not read (a resume reads it).
        if (signal.aborted) return;
        now = Date.now();
      }
    }
  }
  if (!signal.aborted) flush();
}
