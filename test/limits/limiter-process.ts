import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort as anyFreePort } from '../http/proxy-support.js';

/**
 * What the real limiters (nginx-limiter.ts, haproxy-limiter.ts) have in common: finding their
 * binary, a free loopback port and a temporary directory, starting the server and waiting until
 * it answers, stopping it (and whatever is left when this process exits), and validating
 * the options both take. What they logged is read by limiter-log.ts.
 */

// ---------------------------------------------------------------------------------------------
// Binaries.

const BINARIES = {
  nginx: {
    env: 'DOGGED_NGINX',
    hint: 'The real-limiter tests and benches run nginx: install it with `apt-get install -y nginx-light` (Debian/Ubuntu), or set DOGGED_NGINX to an nginx binary.',
    version: /nginx\/(\S+)/,
  },
  haproxy: {
    env: 'DOGGED_HAPROXY',
    hint: 'The real-limiter tests and benches run HAProxy: install it with `apt-get install -y haproxy` (Debian/Ubuntu), or set DOGGED_HAPROXY to a haproxy binary.',
    version: /version (\S+)/,
  },
} as const;

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** `$DOGGED_<NAME>` when set (it must be an executable), then /usr/sbin, then PATH; throws with an install hint. */
function findBinary(name: keyof typeof BINARIES): string {
  const { env: envName, hint } = BINARIES[name];
  const override = process.env[envName];
  if (override) {
    if (executable(override)) return override;
    throw new Error(`${envName}=${override} is not an executable. ${hint}`);
  }
  const candidates = [
    `/usr/sbin/${name}`,
    ...(process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, name)),
  ];
  for (const candidate of candidates) if (executable(candidate)) return candidate;
  throw new Error(`${name} was not found. ${hint}`);
}

/** What `<name> -v` prints (stdout or stderr), cut to the version number when it can be found. */
function binaryVersion(name: keyof typeof BINARIES): string {
  const result = spawnSync(findBinary(name), ['-v'], { encoding: 'utf8' });
  const text = `${result.stdout}${result.stderr}`;
  return BINARIES[name].version.exec(text)?.[1] ?? text.trim();
}

/** The nginx binary (`DOGGED_NGINX` overrides; then /usr/sbin, then PATH); throws with an install hint. */
export function nginxPath(): string {
  return findBinary('nginx');
}

/** The haproxy binary (`DOGGED_HAPROXY` overrides; then /usr/sbin, then PATH); throws with an install hint. */
export function haproxyPath(): string {
  return findBinary('haproxy');
}

/** `1.22.1`: what `nginx -v` says (on stderr). */
export function nginxVersion(): string {
  return binaryVersion('nginx');
}

/** `2.6.12-1+deb12u4`: what `haproxy -v` says. */
export function haproxyVersion(): string {
  return binaryVersion('haproxy');
}

// ---------------------------------------------------------------------------------------------
// Ports, directories, tokens.

/** A free 127.0.0.1 port, not one of `taken` (it may still be lost to a race: see `withRetries`). */
export async function freePort(taken: readonly number[] = []): Promise<number> {
  for (;;) {
    const port = await anyFreePort();
    if (!taken.includes(port)) return port;
  }
}

/** A new temporary directory `dogged-<name>-XXXXXX`. */
export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `dogged-${name}-`));
}

/** A random token a readiness page answers: tells this server from another on the same port. */
export function readinessToken(): string {
  return randomBytes(6).toString('hex');
}

/** `launch()`, up to `attempts` times (in case the port was taken): the last error when none works. */
export async function withRetries<T>(launch: () => Promise<T>, attempts = 3): Promise<T> {
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      return await launch();
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

// ---------------------------------------------------------------------------------------------
// Bookkeeping: every process started here is ended when this process exits.

const live = new Set<ChildProcess>();
const dirs = new Set<string>();
let exitHookInstalled = false;

/** Ends `child` and removes `dir` when this process exits, unless `close()` did it first. */
function track(child: ChildProcess, dir: string): void {
  live.add(child);
  dirs.add(dir);
  child.once('exit', () => live.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    // SIGTERM, not SIGKILL: nginx's master then ends its workers (a killed master would leave
    // them orphaned, still listening); it finishes on its own after this process is gone.
    for (const c of live) signal(c.pid, 'SIGTERM');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** Removes `dir` now, and forgets it. */
function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

function signal(pid: number | undefined, name: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** The children of `pid` (Linux /proc), e.g. nginx's workers. */
export function childPids(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Ends `child` with `first` (SIGKILL for it and its children after `graceMs`); waits for its exit. */
async function terminate(
  child: ChildProcess,
  first: NodeJS.Signals,
  graceMs = 5000,
): Promise<void> {
  if (exited(child)) return;
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(first);
  const timer = setTimeout(() => {
    for (const pid of childPids(child.pid)) signal(pid, 'SIGKILL');
    child.kill('SIGKILL');
  }, graceMs);
  await done;
  clearTimeout(timer);
}

/**
 * One GET with a fresh connection (no keep-alive): used to see which generation of a limiter's
 * configuration answers, without touching the clients' pools.
 */
export function probe(
  url: string,
  timeoutMs = 1000,
): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = httpRequest(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// Starting and stopping a server.

export interface ServerSpec {
  /** For messages: `nginx`, `haproxy`. */
  readonly name: string;
  readonly binary: string;
  readonly args: readonly string[];
  /** Its temporary directory: removed by `close()`, on a failed start, or when this process exits. */
  readonly dir: string;
  /** The loopback port it listens on (for messages). */
  readonly port: number;
  /** Keep what it writes on stdout (HAProxy's request log)? Otherwise stdout is ignored. */
  readonly captureStdout?: boolean;
  /** Whether it answers yet (polled every 20 ms, for 10 s at most, while it runs). */
  ready(): Promise<boolean>;
  /** More for the error when it does not start (e.g. its error log); read once it has stopped. */
  failureDetail?(): string;
}

export interface ServerProcess {
  readonly child: ChildProcess;
  /** What it wrote on stdout so far ('' without `captureStdout`). */
  stdout(): string;
  /** True once `close()` has been called. */
  readonly closed: boolean;
  /** Stops it (SIGTERM, then SIGKILL after 5 s) and removes its directory. Idempotent. */
  close(): Promise<void>;
}

/**
 * Spawns `spec.binary` and resolves once `spec.ready()` says it answers. When it exits first or
 * does not answer within 10 s, it is stopped (SIGKILL after 1 s), its directory removed, and the
 * error says what it wrote on stderr.
 */
export async function startServer(spec: ServerSpec): Promise<ServerProcess> {
  const child = spawn(spec.binary, spec.args, {
    stdio: ['ignore', spec.captureStdout ? 'pipe' : 'ignore', 'pipe'],
  });
  track(child, spec.dir);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const deadline = Date.now() + 10_000;
  while (!(await spec.ready())) {
    if (exited(child) || Date.now() > deadline) {
      await terminate(child, 'SIGTERM', 1000);
      const detail = spec.failureDetail?.() ?? '';
      removeDir(spec.dir);
      throw new Error(
        `${spec.name} did not start on 127.0.0.1:${spec.port}: ${stderr.trim()} ${detail.trim()}`.trim(),
      );
    }
    await sleep(20);
  }
  let closing: Promise<void> | undefined;
  return {
    child,
    stdout: () => stdout,
    get closed() {
      return closing !== undefined;
    },
    close: () => {
      closing ??= (async () => {
        await terminate(child, 'SIGTERM');
        removeDir(spec.dir);
      })();
      return closing;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Options both limiters take.

export function positive(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
    throw new TypeError(`${name} must be a positive number, got ${String(value)}`);
  return value;
}

/** `127.0.0.1:8080` for `http://127.0.0.1:8080`; throws for anything but an http:// URL. */
export function upstreamAddress(url: string): string {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new TypeError(`upstream must be an http:// URL, got ${url}`);
  return `${u.hostname}:${u.port || '80'}`;
}

/** Throws unless `retryAfter` is whole seconds and `upstream` an http:// URL (when set). */
export function checkRetryAfterAndUpstream(options: {
  readonly retryAfter?: number | undefined;
  readonly upstream?: string | undefined;
}): void {
  const { retryAfter, upstream } = options;
  if (retryAfter !== undefined && (!Number.isInteger(retryAfter) || retryAfter < 0))
    throw new TypeError(`retryAfter must be whole seconds, got ${retryAfter}`);
  if (upstream !== undefined) upstreamAddress(upstream);
}
