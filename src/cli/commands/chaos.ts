import { Command, InvalidArgumentError } from 'commander';
import type { ChaosArrival } from '../../testing/chaos/arrival-log.js';
import { EXIT } from '../exit-codes.js';

function integerIn(what: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!/^\d+$/.test(value.trim()) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`${what} must be an integer from ${min} to ${max}.`);
    }
    return parsed;
  };
}

interface ChaosCliOptions {
  port: number;
  host?: string;
  seed: number;
  secondaryPort: number;
  verbose?: boolean;
  json?: boolean;
}

function describeArrival(a: ChaosArrival): string {
  const key = a.key === null ? '' : ` key=${a.key}`;
  return `${a.timeMs.toFixed(1).padStart(9)}ms #${a.connectionId} ${a.clientAddress} ${a.method} ${a.target}${key}\n`;
}

/** Why the server could not listen, in a sentence that says what to do. */
export function listenFailure(
  error: unknown,
  options: Pick<ChaosCliOptions, 'port' | 'host' | 'secondaryPort'>,
): string {
  const e = error as NodeJS.ErrnoException & { address?: string; port?: number };
  const where = `${e.address ?? options.host ?? '127.0.0.1'}:${e.port ?? options.port}`;
  const flag =
    e.port !== undefined && e.port === options.secondaryPort ? '--secondary-port' : '--port';
  if (e.code === 'EADDRINUSE')
    return `cannot listen on ${where}: the port is already in use (another dogged chaos?); stop that process or pick another port with ${flag} (0: any free port)`;
  if (e.code === 'EACCES')
    return `cannot listen on ${where}: permission denied (ports below 1024 need privileges); pick another port with ${flag} (0: any free port)`;
  if (e.code === 'EADDRNOTAVAIL')
    return `cannot listen on ${where}: no network interface has that address; give --host an address of this machine`;
  return `cannot listen on ${where}: ${e.message}`;
}

/**
 * `dogged chaos`: runs the chaos server until SIGINT or SIGTERM. The URL goes to stdout (one
 * line, or a JSON object with `--json`); everything meant for humans goes to stderr.
 */
export function chaosCommand(): Command {
  return new Command('chaos')
    .description(
      'Run the chaos server: a local HTTP/1.1 server with deterministic faults (status codes with Retry-After, flaky keys, delays, resets, truncated bodies, bans, rate limits, redirects, Range downloads). GET / lists every endpoint.',
    )
    .option(
      '-p, --port <port>',
      'port of the main listener (0: any free port)',
      integerIn('--port', 0, 65535),
      8099,
    )
    .option(
      '--host <host>',
      'address to bind; a non-loopback address exposes the server to the network (default: 127.0.0.1)',
    )
    .option(
      '--seed <seed>',
      'default seed of /fail-rate and /bytes',
      integerIn('--seed', 0, 0xffff_ffff),
      1,
    )
    .option(
      '--secondary-port <port>',
      'port of the second listener used for cross-origin redirects (0: any free port)',
      integerIn('--secondary-port', 0, 65535),
      0,
    )
    .option('-v, --verbose', 'print every request to stderr as it arrives')
    .option('--json', 'print {"url", "secondaryUrl", ...} as one JSON line instead of the bare URL')
    .action(async (options: ChaosCliOptions) => {
      // Loaded on demand so other subcommands do not pay for it at startup.
      const { startChaosServer } = await import('../../testing/chaos/server.js');
      const { isLoopbackHost } = await import('../../testing/chaos/loopback.js');
      let server: Awaited<ReturnType<typeof startChaosServer>>;
      try {
        server = await startChaosServer({
          port: options.port,
          host: options.host ?? '127.0.0.1',
          // Only an explicit --host may leave loopback.
          allowNonLoopback: options.host !== undefined,
          seed: options.seed,
          secondaryPort: options.secondaryPort,
          ...(options.verbose
            ? { onArrival: (a: ChaosArrival) => process.stderr.write(describeArrival(a)) }
            : {}),
        });
      } catch (error) {
        process.stderr.write(`dogged chaos: ${listenFailure(error, options)}\n`);
        process.exitCode = EXIT.usage;
        return;
      }
      // Handlers first, output second: a signal sent as soon as the URL is read must find
      // them installed (until then the OS default, terminate, applies).
      const stopped = new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals): void => {
          process.stderr.write(`dogged chaos: ${signal}, shutting down\n`);
          // A second signal while closing means "now".
          process.once('SIGINT', () => process.exit(130));
          process.once('SIGTERM', () => process.exit(143));
          server.close().then(resolve, resolve);
        };
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      const info = {
        url: server.url,
        secondaryUrl: server.secondaryUrl,
        host: server.host,
        port: server.port,
        secondaryPort: server.secondaryPort,
        seed: server.seed,
        pid: process.pid,
      };
      process.stdout.write(options.json ? `${JSON.stringify(info)}\n` : `${server.url}\n`);
      if (!isLoopbackHost(server.host)) {
        process.stderr.write(
          `dogged chaos: WARNING: bound to ${server.host}; the fault endpoints are reachable from other machines.\n`,
        );
      }
      process.stderr.write(
        `dogged chaos: listening on ${server.url} (second origin ${server.secondaryUrl}, seed ${server.seed}). GET ${server.url}/ lists the endpoints; Ctrl+C stops.\n`,
      );
      await stopped;
    });
}
