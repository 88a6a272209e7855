import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import {
  ProxyPool,
  type ProxyPoolOptions,
  Session,
  type SessionOptions,
} from '../../src/http/index.js';
import { seededRandom } from '../../src/retry/index.js';
import { type ChaosServer, FakeClock, startChaosServer } from '../../src/testing/index.js';
import { available } from '../support/needs.js';

/**
 * Real proxies for the proxy tests: Debian's `tinyproxy` (package `tinyproxy-bin`), one
 * process per proxy, listening on 127.0.0.1 and leaving through its own loopback source
 * address (127.0.0.2, 127.0.0.3...), so the chaos server's `/ban` sees distinct clients.
 */

const INSTALL_HINT =
  'The proxy tests run real proxies and need tinyproxy: install it with `apt-get install -y tinyproxy-bin` (Debian/Ubuntu), or put a tinyproxy binary on PATH.';

/**
 * The tinyproxy binary (`DOGGED_TINYPROXY` overrides the search); throws a clear error when it
 * is not installed: the proxy tests fail, they never skip.
 */
export function tinyproxyPath(): string {
  const override = process.env.DOGGED_TINYPROXY;
  if (override) {
    try {
      accessSync(override, constants.X_OK);
      return override;
    } catch {
      throw new Error(`DOGGED_TINYPROXY=${override} is not an executable. ${INSTALL_HINT}`);
    }
  }
  const candidates = [
    '/usr/bin/tinyproxy',
    '/usr/sbin/tinyproxy',
    ...(process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'tinyproxy')),
  ];
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; try the next place.
    }
  }
  throw new Error(`tinyproxy was not found. ${INSTALL_HINT}`);
}

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('unexpected address');
  return address.port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** One running tinyproxy. */
export interface Tinyproxy {
  /** `http://127.0.0.1:<port>`, with `user:password@` when it requires BasicAuth. */
  readonly url: string;
  /** The same URL without credentials (what statistics and logs show). */
  readonly publicUrl: string;
  readonly port: number;
  /** The source address its outgoing connections use: what the target sees. */
  readonly bind: string;
  /** The URL with other credentials (for the wrong-password test). */
  withCredentials(user: string, password: string): string;
  close(): Promise<void>;
}

export interface TinyproxyOptions {
  /** Source address of outgoing connections, e.g. `127.0.0.2`. */
  bind: string;
  /** Require `Proxy-Authorization: Basic` with these. */
  auth?: { user: string; password: string };
}

async function launch(options: TinyproxyOptions, binary: string): Promise<Tinyproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'dogged-tinyproxy-'));
  const port = await freePort();
  const log = join(dir, 'tinyproxy.log');
  const config = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    `Bind ${options.bind}`,
    'Timeout 60',
    'MaxClients 200',
    'LogLevel Connect',
    `LogFile "${log}"`,
    `PidFile "${join(dir, 'tinyproxy.pid')}"`,
    'Allow 127.0.0.0/8',
    'DisableViaHeader Yes',
    // No ConnectPort line: CONNECT may reach any port (the chaos server's are random).
    ...(options.auth ? [`BasicAuth ${options.auth.user} ${options.auth.password}`] : []),
  ].join('\n');
  writeFileSync(join(dir, 'tinyproxy.conf'), `${config}\n`);
  const child: ChildProcess = spawn(binary, ['-d', '-c', join(dir, 'tinyproxy.conf')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const deadline = Date.now() + 5000;
  const ready = async (): Promise<boolean> => {
    if (!(await accepts(port))) return false;
    // Someone else may own the port (tinyproxy then exits at once): make sure ours is alive.
    await new Promise((resolve) => setTimeout(resolve, 30));
    return !exited;
  };
  while (!(await ready())) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      let logText = '';
      try {
        logText = readFileSync(log, 'utf8');
      } catch {
        // No log written.
      }
      rmSync(dir, { recursive: true, force: true });
      throw new Error(
        `tinyproxy did not start on 127.0.0.1:${port}: ${stderr.trim()} ${logText.trim()}`.trim(),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const base = `http://127.0.0.1:${port}`;
  const credentials = options.auth
    ? `${encodeURIComponent(options.auth.user)}:${encodeURIComponent(options.auth.password)}@`
    : '';
  return {
    url: `http://${credentials}127.0.0.1:${port}`,
    publicUrl: base,
    port,
    bind: options.bind,
    withCredentials: (user, password) =>
      `http://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    close: async () => {
      if (!exited) {
        const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await done;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts one tinyproxy on a free loopback port (a few tries, in case the port is taken). */
export async function startTinyproxy(options: TinyproxyOptions): Promise<Tinyproxy> {
  const binary = tinyproxyPath();
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launch(options, binary);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

/** Three open proxies (A, B, C) and one that requires `user` / `s3cret-pass`. */
export interface ProxyFleet {
  readonly a: Tinyproxy;
  readonly b: Tinyproxy;
  readonly c: Tinyproxy;
  readonly auth: Tinyproxy;
  close(): Promise<void>;
}

export const PROXY_USER = 'proxy-user';
export const PROXY_PASSWORD = 's3cret-pass';

export async function startProxyFleet(): Promise<ProxyFleet> {
  const started: Tinyproxy[] = [];
  try {
    for (const bind of ['127.0.0.2', '127.0.0.3', '127.0.0.4'])
      started.push(await startTinyproxy({ bind }));
    started.push(
      await startTinyproxy({
        bind: '127.0.0.5',
        auth: { user: PROXY_USER, password: PROXY_PASSWORD },
      }),
    );
  } catch (error) {
    await Promise.all(started.map((p) => p.close()));
    throw error;
  }
  const [a, b, c, auth] = started as [Tinyproxy, Tinyproxy, Tinyproxy, Tinyproxy];
  return {
    a,
    b,
    c,
    auth,
    close: async () => void (await Promise.all(started.map((p) => p.close()))),
  };
}

export { selfSignedCertificate } from '../support/certificate.js';

/** The client address the chaos server's `/echo` saw. */
export async function clientOf(response: { json(): Promise<unknown> }): Promise<string> {
  return ((await response.json()) as { client: { address: string } }).client.address;
}

/** A session through `proxies` that never really sleeps, with a pool on the same fake clock. */
export function proxiedSession(
  proxies: readonly (Tinyproxy | string)[],
  poolOptions: ProxyPoolOptions = {},
  options: SessionOptions = {},
): { session: Session; pool: ProxyPool; clock: FakeClock } {
  const clock = new FakeClock({ autoAdvance: true });
  const urls = proxies.map((p) => (typeof p === 'string' ? p : p.url));
  const pool = new ProxyPool(urls, { clock, random: seededRandom(5), ...poolOptions });
  const session = new Session({
    proxies: pool,
    clock,
    logger: false,
    retry: { backoffFactor: 50, random: seededRandom(1) },
    ...options,
  });
  return { session, pool, clock };
}

/** Sends `times` requests to `url` through `proxy` alone, with no ban detection: "the site flagged this IP". */
export async function flag(proxy: Tinyproxy, url: string, times: number): Promise<void> {
  await using session = new Session({
    proxies: new ProxyPool([proxy.url], { banStatuses: [] }),
    retry: false,
    logger: false,
  });
  for (let i = 0; i < times; i++) await (await session.get(url)).text();
}

/**
 * Starts a proxy fleet and a chaos server for the file's tests (the chaos server is reset before
 * each test) and hands both to `ready`; stops both after the last test.
 */
export function useProxyFleetAndChaos(
  ready: (fleet: ProxyFleet, chaos: ChaosServer) => void,
): void {
  let fleet: ProxyFleet | undefined;
  let chaos: ChaosServer | undefined;
  beforeAll(async () => {
    if (!available('tinyproxy')) return; // the tests are skipped, or fail on CI: needs.ts
    fleet = await startProxyFleet();
    chaos = await startChaosServer();
    ready(fleet, chaos);
  });
  afterAll(async () => {
    await fleet?.close();
    await chaos?.close();
  });
  beforeEach(() => chaos?.reset());
}
