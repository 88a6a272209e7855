import cliProgress from 'cli-progress';
import type { BatchProgress } from '../batch/progress-state.js';
import { formatDuration } from '../retry/describe.js';

/** Shows a batch's progress: a live bar on a terminal, plain periodic lines otherwise. */
export interface ProgressView {
  update(progress: BatchProgress): void;
  /** Prints a line above the bar (or as is). */
  log(line: string): void;
  stop(): void;
}

const n = (value: number): string => value.toLocaleString('en-US');

function eta(progress: BatchProgress): string {
  if (progress.etaMs === undefined) return progress.inputComplete ? '?' : 'reading input';
  return formatDuration(progress.etaMs);
}

/** The finished share, `0.0` while nothing is known (no line read yet). */
function percentOf(p: BatchProgress): string {
  return p.total > 0 ? ((p.finished / p.total) * 100).toFixed(1) : '0.0';
}

/**
 * `1,234/2,000 (61.7%) · done 1,100 · failed 30 · invalid 4 · retrying 100 · in flight 16 · 250/s · ETA 3 s`:
 * the same categories as the summary (failed and invalid apart).
 */
export function describeProgress(p: BatchProgress): string {
  return [
    `${n(p.finished)}/${n(p.total)}${p.inputComplete ? '' : '+'} (${percentOf(p)}%)`,
    `done ${n(p.done)}`,
    `failed ${n(p.failed)}`,
    `invalid ${n(p.invalid)}`,
    `retrying ${n(p.retrying)}`,
    `in flight ${n(p.inFlight)}`,
    `${n(Math.round(p.ratePerSecond))}/s`,
    `ETA ${eta(p)}`,
  ].join(' · ');
}

class BarView implements ProgressView {
  readonly #multi: cliProgress.MultiBar;
  readonly #bar: cliProgress.SingleBar;

  constructor(stream: NodeJS.WriteStream) {
    this.#multi = new cliProgress.MultiBar(
      {
        stream,
        format:
          // Our own percentage: cli-progress counts a bar of total 0 as 100% done.
          '{bar} {percent}% | {finished}/{all} | done {done} · failed {failed} · invalid {invalid} · retrying {retrying} | {rate}/s | ETA {etaText}',
        barCompleteChar: '█',
        barIncompleteChar: '░',
        barsize: 20,
        hideCursor: true,
        clearOnComplete: false,
        fps: 8,
        noTTYOutput: false,
      },
      cliProgress.Presets.shades_classic,
    );
    // A total of at least 1: a bar of 0/0 is drawn full.
    this.#bar = this.#multi.create(1, 0, this.#payload(undefined));
  }

  #payload(p: BatchProgress | undefined): Record<string, string> {
    return {
      percent: p ? percentOf(p) : '0.0',
      done: n(p?.done ?? 0),
      failed: n(p?.failed ?? 0),
      invalid: n(p?.invalid ?? 0),
      retrying: n(p?.retrying ?? 0),
      finished: n(p?.finished ?? 0),
      // Nothing read yet: 0+, not 0 (the input is not known to be empty).
      all: `${n(p?.total ?? 0)}${!p?.inputComplete ? '+' : ''}`,
      rate: n(Math.round(p?.ratePerSecond ?? 0)),
      // Not `eta`: cli-progress's own token of that name would replace it.
      etaText: p ? (p.stopping ? 'stopping...' : eta(p)) : 'reading input',
    };
  }

  update(progress: BatchProgress): void {
    this.#bar.setTotal(Math.max(progress.total, 1));
    this.#bar.update(progress.finished, this.#payload(progress));
  }

  log(line: string): void {
    this.#multi.log(`${line}\n`);
  }

  stop(): void {
    this.#multi.stop();
  }
}

class LineView implements ProgressView {
  readonly #stream: NodeJS.WritableStream;
  readonly #intervalMs: number;
  #last = Number.NEGATIVE_INFINITY;
  #latest: BatchProgress | undefined;
  #printed = '';

  constructor(stream: NodeJS.WritableStream, intervalMs: number) {
    this.#stream = stream;
    this.#intervalMs = intervalMs;
  }

  update(progress: BatchProgress): void {
    this.#latest = progress;
    const now = performance.now();
    if (now - this.#last < this.#intervalMs) return;
    this.#last = now;
    this.#print(progress);
  }

  #print(progress: BatchProgress): void {
    const line = `dogged batch: ${describeProgress(progress)}`;
    if (line === this.#printed) return;
    this.#printed = line;
    this.#stream.write(`${line}\n`);
  }

  log(line: string): void {
    this.#stream.write(`${line}\n`);
  }

  stop(): void {
    if (this.#latest) this.#print(this.#latest);
  }
}

class SilentView implements ProgressView {
  update(): void {}
  log(line: string): void {
    process.stderr.write(`${line}\n`);
  }
  stop(): void {}
}

/**
 * A bar when stderr is a terminal; otherwise a line every `intervalMs`; nothing with `quiet`.
 */
export function createProgressView(options: {
  quiet?: boolean;
  intervalMs: number;
  stream?: NodeJS.WriteStream;
}): ProgressView {
  const stream = options.stream ?? process.stderr;
  if (options.quiet) return new SilentView();
  return stream.isTTY ? new BarView(stream) : new LineView(stream, options.intervalMs);
}
