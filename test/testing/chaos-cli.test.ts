import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI_ENTRY } from '../support/cli.js';
import { fetchAll } from './chaos-support.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const running: ChildProcessWithoutNullStreams[] = [];

function startCli(args: string[]): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, [CLI_ENTRY, 'chaos', ...args], {
    cwd: root,
    env: { ...process.env, NO_COLOR: '1' },
  });
  running.push(child);
  return child;
}

function firstLine(child: ChildProcessWithoutNullStreams): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const end = buffered.indexOf('\n');
      if (end >= 0) resolve(buffered.slice(0, end));
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code} before printing`)));
  });
}

/** The exit code, once stdout and stderr are fully read too ('close', not 'exit'). */
function exitCode(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  if (child.exitCode !== null && child.stdout.closed && child.stderr.closed) {
    return Promise.resolve(child.exitCode);
  }
  return new Promise((resolve) => child.once('close', (code) => resolve(code)));
}

afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

describe('dogged chaos', () => {
  it('prints its URL, serves requests and exits 0 on SIGTERM', async () => {
    const child = startCli(['--port', '0', '--seed', '9']);
    const url = await firstLine(child);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const { status, headers } = await fetchAll(`${url}/status/503?retry-after=2`);
    expect(status).toBe(503);
    expect(headers['retry-after']).toBe('2');
    child.kill('SIGTERM');
    expect(await exitCode(child)).toBe(0);
  });

  it('exits 0 on SIGINT', async () => {
    const child = startCli(['--port', '0']);
    await firstLine(child);
    child.kill('SIGINT');
    expect(await exitCode(child)).toBe(0);
  });

  it('prints every detail as JSON with --json', async () => {
    const child = startCli(['--port', '0', '--seed', '4', '--json']);
    const info = JSON.parse(await firstLine(child)) as Record<string, unknown>;
    expect(info).toMatchObject({ host: '127.0.0.1', seed: 4 });
    expect(String(info.secondaryUrl)).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const index = await fetchAll(`${String(info.url)}/`);
    expect(JSON.parse(index.body.toString()).seed).toBe(4);
    child.kill('SIGTERM');
    expect(await exitCode(child)).toBe(0);
  });

  it('logs arrivals to stderr with --verbose', async () => {
    const child = startCli(['--port', '0', '--verbose']);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const url = await firstLine(child);
    await fetchAll(`${url}/flaky/abc?fail=0`);
    child.kill('SIGTERM');
    await exitCode(child);
    expect(stderr).toMatch(/GET \/flaky\/abc\?fail=0 key=abc/);
  });

  it('exits 2 on a bad --port', async () => {
    const child = startCli(['--port', 'eighty']);
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    expect(await exitCode(child)).toBe(2);
    expect(stderr).toContain('--port');
  });
});
