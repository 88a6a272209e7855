import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './distributed-support.js';

/**
 * A private PostgreSQL cluster for a test that restarts its database: initdb in a temporary
 * directory, one postgres on a free loopback port, trust auth, no fsync (nothing of it is kept).
 * The shared server of .ci/services.sh is never touched. initdb refuses to run as root: as root
 * (CI here), every command runs as the OS user `postgres` (which the Debian package creates).
 */

const run = promisify(execFile);
const ROOT = '/usr/lib/postgresql';
const RUNUSER = ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find(existsSync);

/** The newest installed server's bin directory (Debian's layout), or undefined. */
function binDir(): string | undefined {
  if (!existsSync(ROOT)) return undefined;
  const versions = readdirSync(ROOT)
    .filter((v) =>
      ['initdb', 'pg_ctl', 'postgres'].every((b) => existsSync(join(ROOT, v, 'bin', b))),
    )
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  return versions[0] === undefined ? undefined : join(ROOT, versions[0], 'bin');
}

/** The uid and gid of the OS user `postgres`, from /etc/passwd. */
function postgresUser(): { uid: number; gid: number } | undefined {
  const entry = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((l) => l.split(':'))
    .find((f) => f[0] === 'postgres');
  if (!entry) return undefined;
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

const asRoot = process.getuid?.() === 0;

/**
 * Why a private cluster cannot be started here (the test then skips, saying this), or undefined
 * when it can. .ci/services.sh installs what it needs, so on CI this is undefined.
 */
export function privatePostgresUnavailable(): string | undefined {
  if (!binDir())
    return `no PostgreSQL server binaries (initdb, pg_ctl) under ${ROOT}/*/bin: install the Debian package postgresql (bash .ci/services.sh does)`;
  if (asRoot && !postgresUser())
    return 'running as root and there is no OS user postgres to run initdb as (the Debian package postgresql creates it)';
  if (asRoot && !RUNUSER) return 'running as root and runuser (util-linux) is missing';
  return undefined;
}

export interface PrivatePostgres {
  /** `postgres://postgres@127.0.0.1:PORT/postgres` */
  readonly url: string;
  readonly port: number;
  /** pg_ctl stop -m fast (every connection cut), then start again on the same port and data. */
  restart(): Promise<void>;
  /** Stops the server at once and removes its directory. */
  destroy(): Promise<void>;
}

/** Starts a private cluster; see {@link PrivatePostgres}. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const reason = privatePostgresUnavailable();
  if (reason) throw new Error(reason);
  const bin = binDir() as string;
  const dir = mkdtempSync(join(tmpdir(), 'dogged-pg-'));
  const user = asRoot ? postgresUser() : undefined;
  if (user) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  const log = join(dir, 'server.log');
  const port = await freePort();

  const pg = async (tool: string, args: string[]): Promise<void> => {
    const command = join(bin, tool);
    const [file, argv] = user
      ? [RUNUSER as string, ['-u', 'postgres', '--', command, ...args]]
      : [command, args];
    try {
      // cwd: the postgres user may not be allowed into the test's working directory.
      await run(file, argv, { cwd: dir, timeout: 60_000 });
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      const tail = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '';
      throw new Error(`${tool} ${args.join(' ')} failed: ${e.stderr || e.message}\n${tail}`);
    }
  };
  const options = [
    `-c port=${port}`,
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${dir}`,
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=100',
  ].join(' ');
  // -l: the server's output goes to the log, not to pg_ctl's pipes (which would stay open).
  const start = () =>
    pg('pg_ctl', ['-D', data, '-l', log, '-o', options, '-w', '-t', '30', 'start']);
  const stop = (mode: 'fast' | 'immediate') =>
    pg('pg_ctl', ['-D', data, '-m', mode, '-w', '-t', '30', 'stop']);

  try {
    await pg('initdb', [
      '-D',
      data,
      '-U',
      'postgres',
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--no-locale',
      '-N',
    ]);
    await start();
  } catch (error) {
    await stop('immediate').catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    restart: async () => {
      await stop('fast');
      await start();
    },
    destroy: async () => {
      if (existsSync(join(data, 'postmaster.pid'))) await stop('immediate').catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
