import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Session } from '../../src/http/index.js';
import {
  freePort,
  nginxPath,
  probe,
  readinessToken,
  type ServerProcess,
  startServer,
  tempDir,
  withRetries,
} from '../limits/limiter-process.js';
import { available, needs } from '../support/needs.js';
import { nginxMain, nginxTempPaths } from '../support/nginx-config.js';

/**
 * A server nobody here wrote: nginx with `gzip on` serving a static file (dogged asks for
 * compression, nginx compresses, dogged hands over the original bytes), and a login location
 * that sets a cookie a members' location requires.
 */
const describe = needs('nginx');

const FILE = Array.from({ length: 2000 }, (_, i) => `row ${i}: the quick brown fox`).join('\n');
let nginx: ServerProcess | undefined;
let url = '';

beforeAll(async () => {
  if (!available('nginx')) return;
  nginx = await withRetries(async () => {
    const dir = tempDir('nginx-gzip');
    mkdirSync(join(dir, 'www'));
    mkdirSync(join(dir, 'tmp'));
    writeFileSync(join(dir, 'www', 'data.txt'), FILE);
    mkdirSync(join(dir, 'www', 'members'));
    writeFileSync(join(dir, 'www', 'members', 'page.txt'), 'members only\n');
    const port = await freePort();
    const token = readinessToken();
    writeFileSync(join(dir, 'www', 'ready.txt'), token);
    const tmp = join(dir, 'tmp');
    const conf = [
      ...nginxMain(dir, 64),
      'http {',
      '  access_log off;',
      ...nginxTempPaths(tmp),
      '  default_type text/plain;',
      '  gzip on;',
      '  gzip_types text/plain;',
      '  gzip_min_length 0;',
      '  server {',
      `    listen 127.0.0.1:${port};`,
      `    root ${join(dir, 'www')};`,
      // A login that sets a cookie and redirects; a page that needs it.
      '    location = /login {',
      '      add_header Set-Cookie "session=n9inx; Path=/; HttpOnly";',
      '      return 302 /members/page.txt;',
      '    }',
      '    location /members/ {',
      '      if ($cookie_session != "n9inx") { return 403; }',
      '    }',
      '  }',
      '}',
    ].join('\n');
    writeFileSync(join(dir, 'nginx.conf'), `${conf}\n`);
    url = `http://127.0.0.1:${port}`;
    return startServer({
      name: 'nginx',
      binary: nginxPath(),
      args: ['-p', dir, '-c', join(dir, 'nginx.conf')],
      dir,
      port,
      ready: async () => (await probe(`${url}/ready.txt`))?.body === token,
    });
  });
});
afterAll(async () => {
  await nginx?.close();
});

describe('a real nginx with gzip on and a login cookie', () => {
  it('compresses for dogged, and dogged decodes it', async () => {
    const session = new Session({ logger: false });
    const res = await session.get(`${url}/data.txt`);
    expect(res.headers.get('content-encoding')).toBe('gzip');
    expect(await res.text()).toBe(FILE);
    // Streamed too, and the raw bytes with decompress: false are the gzip nginx sent.
    const streamed = await session.get(`${url}/data.txt`);
    const chunks: Buffer[] = [];
    for await (const chunk of streamed.body) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe(FILE);
    const raw = await session.get(`${url}/data.txt`, { decompress: false });
    expect(raw.headers.get('content-encoding')).toBeNull();
    expect((await raw.bytes()).toString()).toBe(FILE);
    await session.close();
  });

  it("keeps nginx's Set-Cookie across its redirect and gets the members' page", async () => {
    const session = new Session({ logger: false });
    expect((await session.get(`${url}/members/page.txt`)).status).toBe(403);
    const res = await session.get(`${url}/login`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('members only\n');
    await session.close();
  });
});
