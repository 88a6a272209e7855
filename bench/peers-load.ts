/**
 * The load loop of bench/peers.ts: `concurrency` workers send one request after another until a
 * count or a deadline, optionally aborting what is still in flight after a grace period, and
 * count successes, failures (labelled by error) and client CPU per request.
 */
import { setMaxListeners } from 'node:events';

/** One logical request; resolves true on a 200 with the whole body, false on another status. */
export type Send = (url: string, signal?: AbortSignal) => Promise<boolean>;

export interface Run {
  /** Requests started. */
  issued: number;
  /** Requests that settled (succeeded or failed) before the cap. */
  settled: number;
  ok: number;
  /** Still in flight at the hard deadline: aborted, neither success nor failure. */
  unfinished: number;
  seconds: number;
  /** Client-process CPU time (user + system) per settled request, µs. */
  cpuUs: number;
  failures: Map<string, number>;
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

/** A short label for why a request failed: error name, code, status and cause. */
export function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return `threw ${typeof error}`;
  const parts = [error.name];
  const code = field(error, 'code');
  if (typeof code === 'string') parts.push(code);
  const response = field(error, 'response');
  const status = field(response, 'status') ?? field(response, 'statusCode');
  if (typeof status === 'number') parts.push(String(status));
  else if (typeof field(error, 'statusCode') === 'number')
    parts.push(String(field(error, 'statusCode')));
  const cause = field(error, 'cause') ?? field(error, 'reason');
  if (cause instanceof Error) {
    const causeCode = field(cause, 'code');
    parts.push(`← ${cause.name}${typeof causeCode === 'string' ? ` ${causeCode}` : ''}`);
  } else if (typeof field(cause, 'status') === 'number') {
    parts.push(`← status ${String(field(cause, 'status'))}`);
  }
  return parts.join(' ');
}

function sleep(ms: number): Promise<'timeout'> {
  return new Promise((resolve) => setTimeout(resolve, ms, 'timeout').unref());
}

export interface LoadOptions {
  /** Requests to send at most. */
  total: number;
  /** Workers, each with one request in flight at a time. */
  concurrency: number;
  /** No new request starts after this many ms. */
  stopAfterMs?: number;
  /** Pass an AbortSignal, and abort requests still in flight `graceMs` after `stopAfterMs`. */
  abort?: boolean;
  graceMs?: number;
  /** Append `&i=N` to the URL, N the request's number, so the server can tell requests apart. */
  numbered?: boolean;
}

/** Runs requests with `concurrency` workers until `total` are done or the time is up. */
export async function runLoad(send: Send, url: string, options: LoadOptions): Promise<Run> {
  const { total, stopAfterMs: capMs } = options;
  const controller = options.abort && capMs !== undefined ? new AbortController() : undefined;
  // One signal is shared by 64 requests in flight; undici's fetch also keeps its listener on it
  // until garbage collection. Neither is a leak of the benchmark's concern: no warning.
  if (controller) setMaxListeners(100_000, controller.signal);
  const signal = controller?.signal;
  const run: Run = {
    issued: 0,
    settled: 0,
    ok: 0,
    unfinished: 0,
    seconds: 0,
    cpuUs: 0,
    failures: new Map(),
  };
  const cpu = process.cpuUsage();
  const start = performance.now();
  const stopIssuing = start + (capMs ?? Number.POSITIVE_INFINITY);
  const worker = async (): Promise<void> => {
    while (run.issued < total && performance.now() < stopIssuing) {
      const target = options.numbered ? `${url}&i=${run.issued}` : url;
      run.issued++;
      let label: string | undefined;
      try {
        if (await send(target, signal)) run.ok++;
        else label = 'non-200 status';
      } catch (error) {
        if (signal?.aborted) {
          run.unfinished++;
          continue;
        }
        label = describeFailure(error);
      }
      run.settled++;
      if (label) run.failures.set(label, (run.failures.get(label) ?? 0) + 1);
    }
  };
  const all = Promise.all(Array.from({ length: options.concurrency }, worker)).then(
    () => 'done' as const,
  );
  const finish = (): Run => {
    const used = process.cpuUsage(cpu);
    run.cpuUs = (used.user + used.system) / Math.max(run.settled, 1);
    return run;
  };
  if (!controller || capMs === undefined) {
    await all;
    run.seconds = (performance.now() - start) / 1000;
    return finish();
  }
  const outcome = await Promise.race([all, sleep(capMs + (options.graceMs ?? 0))]);
  run.seconds = (performance.now() - start) / 1000;
  if (outcome === 'timeout') {
    controller.abort(new Error('benchmark cap reached'));
    // Give aborted requests a moment to settle; a client that ignores the abort is left behind.
    if ((await Promise.race([all, sleep(2000)])) === 'timeout')
      run.unfinished = run.issued - run.settled;
  }
  return finish();
}
