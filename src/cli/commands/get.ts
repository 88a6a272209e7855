import { once } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { Command, InvalidArgumentError } from 'commander';
import type { CookieJar } from 'tough-cookie';
import { writeBodyFile, writeToSpecialFile } from '../../http/body-file.js';
import { TotalTimeoutError } from '../../http/errors.js';
import type { DoggedResponse } from '../../http/response.js';
import { formatDuration } from '../../retry/describe.js';
import type { Logger } from '../../retry/log.js';
import { setLongTimeout } from '../../retry/timer.js';
import { loadCookieJar, saveCookieJar } from '../cookie-jar-file.js';
import { EXIT, exitCodeForCommand, printError } from '../exit-codes.js';
import {
  addSecretHeaderFlag,
  collect,
  headersFrom,
  parseHeader,
  parsePositiveDuration,
  parseSize,
  type TimeoutFlag,
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
  timeout?: TimeoutFlag;
  maxTime?: number;
  maxBody?: number;
  proxy?: string[];
  idempotencyKey?: string | boolean;
  output?: string;
  include?: boolean;
  verbose?: boolean;
  cookieJar?: string;
  decompress?: boolean;
  http2?: boolean;
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

async function toStdout(body: Readable): Promise<void> {
  for await (const chunk of body) {
    if (!process.stdout.write(chunk as Buffer)) await once(process.stdout, 'drain');
  }
}

/**
 * Streams the body where `-o` says, never holding it whole: stdout, or a file written through a
 * temporary one (created exclusively, mode 0600, never through a symlink) and renamed into
 * place once complete. A device or a pipe (`-o /dev/null`) is written to as it is.
 */
async function writeOut(body: Readable, path: string | undefined): Promise<void> {
  if (path === undefined || path === '-') return toStdout(body);
  if (await writeToSpecialFile(path, body)) return;
  await writeBodyFile(path, body);
}

/**
 * `--max-time` bounds the whole transfer, as curl's does: the Session's total deadline ends with
 * the response head, so the time left then bounds the body.
 */
function bodyWithin(
  response: DoggedResponse,
  maxTime: number | undefined,
  startedAt: number,
): { body: Readable; done: () => void } {
  const body = response.body;
  if (maxTime === undefined) return { body, done: () => {} };
  const timer = setLongTimeout(
    () =>
      body.destroy(
        new TotalTimeoutError(
          `${response.method} ${response.url}: --max-time ${formatDuration(maxTime)} passed while the body was being read`,
          { method: response.method, url: response.url, attempts: response.attempts },
        ),
      ),
    maxTime - (performance.now() - startedAt),
  ).unref();
  return { body, done: () => timer.clear() };
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
      'the total deadline, retries, waits and the body included (as curl), e.g. 2m',
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
    .option(
      '--max-body <size>',
      'fail (exit 63) when the body is larger, e.g. 10MB or 1GiB (kB, MB, GB: powers of 1000; KiB, MiB, GiB: of 1024) (default: no limit)',
      parseSize,
    )
    .option(
      '-o, --output <file>',
      'write the body to a file instead of stdout (streamed through a temporary file, mode 0600, renamed when complete)',
    )
    .option(
      '--cookie-jar <file>',
      "read cookies from this Netscape cookie file (curl's -b/-c format; missing: empty) and write the jar back to it after the request (mode 0600)",
    )
    .option(
      '--http2',
      'offer HTTP/2 to an https origin (ALPN h2; HTTP/1.1 when the server does not speak it)',
    )
    .option(
      '--no-decompress',
      'send no Accept-Encoding and write the body as received (by default gzip, deflate and br are asked for and decoded)',
    )
    .option('-i, --include', 'print the status line and response headers before the body')
    .option('-v, --verbose', 'print each request and retry to stderr');
  addSecretHeaderFlag(command);
  addTimeoutFlag(command, 'none');
  addRetryFlags(command, { retries: 3, maxRetryAfter: '2m' });
  command.addHelpText(
    'after',
    `
Exit codes: 0 ok, 2 bad usage, 3 malformed URL, 6 host not resolved, 7 could not connect,
18 body cut short, 22 final status >= 400, 23 could not write -o, 28 timeout, 35 TLS,
47 too many redirects, 56 connection reset, 63 body over --max-body, 97 proxy failure,
75 Retry-After beyond --max-retry-after. After the last retry, the code is that of the last
failure (refused after 4 attempts: 7), as with curl --retry.

Example:
  dogged get 'http://127.0.0.1:8099/flaky/a?fail=2' --retries 5 --backoff 200ms -v`,
  );
  command.action(async (url: string, options: GetCliOptions) => {
    process.exitCode = await runGetWithJar(url, options);
  });
  return command;
}

/**
 * Why `-o PATH` cannot be written, found before any request is sent (curl finds out after the
 * transfer and exits 23; so does dogged, without spending a request): undefined when it can.
 */
export function outputProblem(path: string | undefined): string | undefined {
  if (path === undefined || path === '-') return undefined;
  const dir = dirname(path);
  let isDirectory: boolean;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT'
      ? `cannot write ${path}: its directory ${dir} does not exist (dogged creates no directory for -o)`
      : `cannot write ${path}: ${(error as Error).message}`;
  }
  if (!isDirectory) return `cannot write ${path}: ${dir} is not a directory`;
  try {
    if (statSync(path).isDirectory()) return `cannot write ${path}: it is a directory`;
  } catch {
    // Not there yet: it will be created.
  }
  return undefined;
}

/** `--cookie-jar FILE`: read before the request, written back after it (whatever its outcome). */
async function runGetWithJar(url: string, options: GetCliOptions): Promise<number> {
  if (options.cookieJar === undefined) return runGet(url, options, undefined);
  let jar: CookieJar;
  try {
    jar = await loadCookieJar(options.cookieJar);
  } catch (error) {
    printError('get', error);
    return EXIT.usage;
  }
  const code = await runGet(url, options, jar);
  try {
    await saveCookieJar(options.cookieJar, jar);
  } catch (error) {
    printError('get', error);
    return code === EXIT.ok ? EXIT.writeError : code;
  }
  return code;
}

async function runGet(
  url: string,
  options: GetCliOptions,
  jar: CookieJar | undefined,
): Promise<number> {
  const { Session } = await import('../../http/session.js');
  const problem = outputProblem(options.output);
  if (problem !== undefined) {
    printError('get', new Error(problem));
    return EXIT.writeError;
  }
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
    ...(jar !== undefined && { cookies: jar }),
    ...(options.decompress === false && { decompress: false }),
    ...(options.http2 === true && { http2: true }),
    // Statuses that run out of retries return the last response: its status is the answer.
    retry: { ...policyOptions(flags), raiseOnStatus: false },
    logger: options.verbose ? stderrLogger() : false,
    timeout: {
      ...(options.timeout ?? {}),
      ...(options.maxTime !== undefined && { total: options.maxTime }),
    },
    ...(options.proxy?.length && { proxies: options.proxy }),
    ...(options.maxBody !== undefined && { maxBodySize: options.maxBody }),
  });
  const startedAt = performance.now();
  try {
    const response = await session.request(url, {
      method,
      headers: headersFrom(options.header),
      ...(body !== undefined && { body }),
      ...(options.json !== undefined && { json }),
      ...(options.idempotencyKey !== undefined && { idempotencyKey: options.idempotencyKey }),
    });
    if (options.include) {
      const head = [`HTTP/1.1 ${response.status} ${response.statusText}`];
      for (const [name, value] of response.headers) head.push(`${name}: ${value}`);
      process.stdout.write(`${head.join('\r\n')}\r\n\r\n`);
    }
    const download = bodyWithin(response, options.maxTime, startedAt);
    try {
      await writeOut(download.body, options.output);
    } catch (error) {
      throw response.bodyError(error);
    } finally {
      download.done();
    }
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
