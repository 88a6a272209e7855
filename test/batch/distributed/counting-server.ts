import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';

/**
 * A loopback HTTP server that answers every request 200 (after `delayMs`) and counts what reaches
 * it: arrivals per request target, when each arrived, and how many were being answered at once.
 * What the fleet tests measure the fleet by, from the outside.
 */
export interface CountingServer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** How long each answer waits (change it between tests). */
  delayMs: number;
  /** Arrivals per request target (path and query). */
  readonly perTarget: ReadonlyMap<string, number>;
  /** When each request arrived (ms, performance clock), in order of arrival. */
  readonly times: readonly number[];
  /** Every arrival so far. */
  readonly total: number;
  /** Requests arrived and not answered yet (nor cut off by their client). */
  readonly inFlight: number;
  /** The most requests in flight at once since the last reset. */
  readonly maxInFlight: number;
  /** Requests whose client went away before their answer (a worker killed with them in flight). */
  readonly cut: number;
  /** Leaves every request arriving from now on unanswered, until {@link release}. */
  hold(): void;
  /** Answers the requests held (those whose client is still there), and every new one again. */
  release(): void;
  /** Arrivals beyond the first of each target: requests sent twice (or more). */
  repeats(): number;
  /** Forgets every count (between tests). */
  reset(): void;
  close(): Promise<void>;
}

export async function startCountingServer(delayMs = 0): Promise<CountingServer> {
  let perTarget = new Map<string, number>();
  let times: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let cut = 0;
  let held: (() => void)[] | undefined;
  const server = createServer((req, res) => {
    times.push(performance.now());
    const target = req.url ?? '';
    perTarget.set(target, (perTarget.get(target) ?? 0) + 1);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let open = true;
    res.on('close', () => {
      if (!open) return;
      open = false;
      inFlight--;
      cut++;
    });
    const answer = (): void => {
      if (!open) return;
      // Counted out before the answer is written: the client cannot see it (and send the next
      // request in its freed slot) before the count went down.
      open = false;
      inFlight--;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`ok ${target}`);
    };
    const respond = (): void => {
      if (api.delayMs > 0) setTimeout(answer, api.delayMs);
      else answer();
    };
    if (held) held.push(respond);
    else respond();
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const api: CountingServer = {
    url: `http://127.0.0.1:${port}`,
    delayMs,
    get perTarget() {
      return perTarget;
    },
    get times() {
      return times;
    },
    get total() {
      return times.length;
    },
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    get cut() {
      return cut;
    },
    hold: () => {
      held ??= [];
    },
    release: () => {
      const waiting = held ?? [];
      held = undefined;
      for (const respond of waiting) respond();
    },
    repeats: () => {
      let n = 0;
      for (const count of perTarget.values()) n += count - 1;
      return n;
    },
    reset: () => {
      perTarget = new Map();
      times = [];
      maxInFlight = inFlight;
      cut = 0;
    },
    close: async () => {
      api.release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return api;
}
