import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../batch/batch-support.js';

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/login') {
      res.writeHead(200, { 'set-cookie': 'session=s3cret; Path=/; Max-Age=3600' });
      res.end('logged in\n');
    } else if (req.url === '/private') {
      if ((req.headers.cookie ?? '').includes('session=s3cret')) res.end('private page\n');
      else res.writeHead(403).end('log in first\n');
    } else {
      res.writeHead(200, { 'content-encoding': 'gzip' });
      res.end(gzipSync(`accept-encoding: ${req.headers['accept-encoding']}\n`));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('dogged get --cookie-jar, --no-decompress', () => {
  it('writes the cookies to a Netscape file (0600) and sends them from it on the next run', async () => {
    const { dir } = tempDir();
    const file = join(dir, 'cookies.txt');
    const login = await runCli(['get', `${base}/login`, '--cookie-jar', file]);
    expect(login.code).toBe(0);
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/^# Netscape HTTP Cookie File/);
    expect(text).toMatch(/^127\.0\.0\.1\tFALSE\t\/\tFALSE\t\d+\tsession\ts3cret$/m);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const page = await runCli(['get', `${base}/private`, '--cookie-jar', file]);
    expect(page.code).toBe(0);
    expect(page.stdout).toBe('private page\n');
    const without = await runCli(['get', `${base}/private`]);
    expect(without.code).toBe(22);
  });

  it('reads a cookie file curl wrote', async () => {
    const { dir } = tempDir();
    const file = join(dir, 'curl-cookies.txt');
    writeFileSync(
      file,
      `# Netscape HTTP Cookie File\n#HttpOnly_127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\ts3cret\n`,
    );
    const page = await runCli(['get', `${base}/private`, '--cookie-jar', file]);
    expect(page.stdout).toBe('private page\n');
  });

  it('decodes by default; --no-decompress asks for nothing and writes the bytes as received', async () => {
    const decoded = await runCli(['get', `${base}/gz`]);
    expect(decoded.stdout).toBe('accept-encoding: gzip, deflate, br\n');
    const { dir } = tempDir();
    const out = join(dir, 'raw.gz');
    const raw = await runCli(['get', `${base}/gz`, '--no-decompress', '-o', out]);
    expect(raw.code).toBe(0);
    expect(gunzipSync(readFileSync(out)).toString()).toBe('accept-encoding: undefined\n');
  });
});
