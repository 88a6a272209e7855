import { once } from 'node:events';
import { createWriteStream, readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import type { Logger } from '../../retry/log.js';
import { EXIT, exitCodeForCommand, printError } from '../exit-codes.js';
import {
  addSecretHeaderFlag,
  collect,
  headersFrom,
  parseHeader,
  parsePositiveDuration,
} from '../parse.js';
import { parseProxyUrl } from '../proxies.js';
import { redacted } from '../redaction.js';
import {
  addRetryFlags,
  addTimeoutFlag,
  policyOptions,
  type RetryFlags,
  retryFlags,
} from '../retry-flags.js';

interface GetCliOptions extends Partial<RetryFlags> {
  request?: string;
  header?: string[];
  data?: string;
  json?: string;
  timeout?: { connect: number; read: number };
  maxTime?: number;
  proxy?: string[];
  idempotencyKey?: string | boolean;
  output?: string;
  include?: boolean;
  verbose?: boolean;
}

/** `-d @file` reads the file, `-d @-` stdin; anything else is the data itself. */
function readData(value: string): string {
  if (!value.startsWith('@')) return value;
  const path = value.slice(1);
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (error) {
    throw new InvalidArgumentError(`cannot read ${path}: ${(error as Error).message}`);
  }
}

function stderrLogger(): Logger {
  const line = (message: string): void => {
    process.stderr.write(`* ${redacted(message)}\n`);
  };
  return { error: line, warn: line, info: line, debug: line };
}

async function writeOut(data: Buffer, path: string | undefined): Promise<void> {
  if (path === undefined || path === '-') {
    if (!process.stdout.write(data)) await once(process.stdout, 'drain');
    return;
  }
  const file = createWriteStream(path);
  file.end(data);
  await once(file, 'finish');
}

/**
 * `dogged get URL`: one request, like curl, with dogged's retries, timeouts and diagnosis. The
 * body goes to stdout (or `-o FILE`); what went wrong goes to stderr, and the exit code says
 * what kind of failure it was (curl's codes where curl has one).
 */
export function getCommand(): Command {
  const command = new Command('get')
    .description(
      "Send one HTTP request with dogged's retry policy, like curl: the body to stdout, retries (-v) and errors to stderr, a precise exit code.",
    )
    .argument('<url>', 'the URL (http or https)')
    .option('-X, --request <method>', 'the method (default: GET, or POST with -d/--json)')
    .option(
      '-H, --header <header>',
      "a request header 'Name: value' (repeatable)",
      (value: string, previous: string[] | undefined) => {
        parseHeader(value);
        return collect(value, previous);
      },
    )
    .option('-d, --data <data>', 'the request body (@file reads a file, @- stdin)')
    .option('--json <data>', 'a JSON request body (@file, @-); sets Content-Type')
    .option(
      '--max-time <duration>',
      'the total deadline, retries and waits included, e.g. 2m',
      parsePositiveDuration,
    )
    .option(
      '--proxy <url>',
      'send through this HTTP proxy (repeatable: a pool, rotated; one answering 403 or 429 is benched and the request moves on through another)',
      (value: string, previous: string[] | undefined) => collect(parseProxyUrl(value), previous),
    )
    .option(
      '--idempotency-key [key]',
      'send an Idempotency-Key (generated unless given), which makes POST/PATCH safe to retry',
    )
    .option('-o, --output <file>', 'write the body to a file instead of stdout')
    .option('-i, --include', 'print the status line and response headers before the body')
    .option('-v, --verbose', 'print each request and retry to stderr');
  addSecretHeaderFlag(command);
  addTimeoutFlag(command);
  addRetryFlags(command, { retries: 3, maxRetryAfter: '2m' });
  command.addHelpText(
    'after',
    `
Exit codes: 0 ok, 2 bad usage, 3 malformed URL, 6 host not resolved, 7 could not connect,
18 body cut short, 22 final status >= 400, 28 timeout, 35 TLS, 56 connection reset,
75 retries exhausted, 97 proxy failure.

Example:
  dogged get 'http://127.0.0.1:8099/flaky/a?fail=2' --retries 5 --backoff 200ms -v`,
  );
  command.action(async (url: string, options: GetCliOptions) => {
    process.exitCode = await runGet(url, options);
  });
  return command;
}

async function runGet(url: string, options: GetCliOptions): Promise<number> {
  const { Session } = await import('../../http/session.js');
  if (options.data !== undefined && options.json !== undefined) {
    printError('get', new Error('give -d/--data or --json, not both'));
    return EXIT.usage;
  }
  let body: string | undefined;
  let json: unknown;
  try {
    if (options.data !== undefined) body = readData(options.data);
    if (options.json !== undefined) json = JSON.parse(readData(options.json));
  } catch (error) {
    printError('get', error instanceof SyntaxError ? new Error(`--json: ${error.message}`) : error);
    return EXIT.usage;
  }
  const method = (
    options.request ?? (body !== undefined || options.json !== undefined ? 'POST' : 'GET')
  ).toUpperCase();
  const flags = retryFlags(options, { retries: 3 });
  const session = new Session({
    // Statuses that run out of retries return the last response: its status is the answer.
    retry: { ...policyOptions(flags), raiseOnStatus: false },
    logger: options.verbose ? stderrLogger() : false,
    timeout: {
      ...(options.timeout ?? {}),
      ...(options.maxTime !== undefined && { total: options.maxTime }),
    },
    ...(options.proxy?.length && { proxies: options.proxy }),
  });
  try {
    const response = await session.request(url, {
      method,
      headers: headersFrom(options.header),
      ...(body !== undefined && { body }),
      ...(options.json !== undefined && { json }),
      ...(options.idempotencyKey !== undefined && { idempotencyKey: options.idempotencyKey }),
    });
    const data = await response.bytes();
    if (options.include) {
      const head = [`HTTP/1.1 ${response.status} ${response.statusText}`];
      for (const [name, value] of response.headers) head.push(`${name}: ${value}`);
      process.stdout.write(`${head.join('\r\n')}\r\n\r\n`);
    }
    await writeOut(data, options.output);
    if (response.status >= 400) {
      process.stderr.write(
        redacted(
          `dogged get: ${method} ${response.url} answered ${response.status} ${response.statusText}${response.attempts > 1 ? ` after ${response.attempts} attempts` : ''}\n`,
        ),
      );
      return EXIT.httpStatus;
    }
    return EXIT.ok;
  } catch (error) {
    printError('get', error);
    return exitCodeForCommand(error);
  } finally {
    await session.close();
  }
}
