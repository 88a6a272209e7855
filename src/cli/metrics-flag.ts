/** `--metrics HOST:PORT` of `dogged batch`, `dogged retry-failed` and `dogged worker`. */
import { type Command, InvalidArgumentError } from 'commander';
import type { MetricsServer } from '../batch/metrics.js';

/** What the flag parses to. */
export interface MetricsFlag {
  metrics?: string;
}

/** `HOST:PORT`, checked when the command line is parsed (a bad one exits 2). */
function listenAddress(text: string): string {
  const match = /^(?:\[[0-9A-Fa-f:.]+\]|[^\s:[\]/]+):(\d{1,5})$/.exec(text.trim());
  if (!match || Number(match[1]) > 65_535)
    throw new InvalidArgumentError(
      'give HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464 (port 0: any free port)',
    );
  return text.trim();
}

/** Adds `--metrics HOST:PORT`. */
export function addMetricsFlag(command: Command): Command {
  return command.option(
    '--metrics <host:port>',
    'serve Prometheus metrics at http://HOST:PORT/metrics while running (lines by state, requests and retries by host and status class, request durations, in flight, queue depth); port 0 takes a free port, printed on stderr',
    listenAddress,
  );
}

/**
 * Starts the metrics endpoint the flag asks for (undefined without the flag) and prints its
 * address on stderr: `dogged batch: metrics at http://127.0.0.1:9464/metrics`.
 */
export async function startMetricsFlag(
  flags: MetricsFlag,
  commandName: string,
): Promise<MetricsServer | undefined> {
  if (flags.metrics === undefined) return undefined;
  const { startMetricsServer } = await import('../batch/metrics.js');
  const server = await startMetricsServer({ listen: flags.metrics });
  process.stderr.write(`dogged ${commandName}: metrics at ${server.url}\n`);
  return server;
}
