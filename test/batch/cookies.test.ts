import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  HostCookieJars,
  JARS_IN_MEMORY,
  MAX_COOKIE_BYTES,
  MAX_COOKIES_PER_HOST,
} from '../../src/batch/cookie-jars.js';
import { Journal, runBatch, seededRandom } from '../../src/index.js';
import { journalRecords, runCli, tempDir, writeLines } from './batch-support.js';

/** What one server saw: each request's path and Cookie header. */
interface Seen {
  path: string;
  cookie: string;
}

/**
 * A site with a session: `/gate/*` turns a client without the `pass` cookie away with a 500
 * that sets it (an anti-bot check: retried, and not a gateway failure that counts towards an
 * outage of the host); `/login` sets `sid`, and `/members` answers 403 without it.
 */
function site(seen: Seen[]): Server {
  return createServer((req: IncomingMessage, res) => {
    const path = req.url ?? '/';
    const cookie = req.headers.cookie ?? '';
    seen.push({ path, cookie });
    if (path.startsWith('/gate/')) {
      if (/(^|; )pass=1(;|$)/.test(cookie)) res.end(`through ${path}`);
      else res.writeHead(500, { 'set-cookie': 'pass=1; Path=/' }).end('checking your browser');
    } else if (path === '/login') {
      res.writeHead(200, { 'set-cookie': 'sid=s3cret; Path=/; HttpOnly' }).end('logged in');
    } else if (path === '/members') {
      if (cookie.includes('sid=s3cret')) res.end('members page');
      else res.writeHead(403).end('log in first');
    } else res.end(`cookie: ${cookie}`);
  });
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const seenA: Seen[] = [];
const seenB: Seen[] = [];
const a = site(seenA);
const b = site(seenB);
let urlA = '';
let urlB = '';
beforeAll(async () => {
  urlA = await listen(a);
  urlB = await listen(b);
});
afterAll(async () => {
  for (const server of [a, b]) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});
beforeEach(() => {
  seenA.length = 0;
  seenB.length = 0;
});

const fast = { retry: { backoff: () => 5 }, random: seededRandom(3) };

const records = journalRecords;

function savedJars(db: string): { host: string; jar: string }[] {
  const journal = Journal.open(db, { readonly: true });
  try {
    return journal.db.prepare('SELECT host, jar FROM cookies ORDER BY host').all() as {
      host: string;
      jar: string;
    }[];
  } finally {
    journal.close();
  }
}

describe('runBatch({ cookies: true }): one jar per host', () => {
  it("passes a site's cookie check that fails every line without cookies", async () => {
    const lines = Array.from({ length: 20 }, (_, i) => `${urlA}/gate/${i}`);
    const { dir } = tempDir();
    const off = await runBatch({ db: join(dir, 'off.sqlite'), input: lines, ...fast });
    expect(off.counts.failed).toBe(20);
    expect(seenA.every((s) => s.cookie === '')).toBe(true);

    seenA.length = 0;
    const db = join(dir, 'on.sqlite');
    const on = await runBatch({ db, input: lines, cookies: true, perHost: 4, ...fast });
    expect(on.counts.done).toBe(20);
    // Only the lines in flight before the first answer set the cookie were turned away.
    const turnedAway = seenA.filter((s) => s.cookie === '').length;
    expect(turnedAway).toBeGreaterThanOrEqual(1);
    expect(turnedAway).toBeLessThanOrEqual(4);
    expect(seenA.length).toBe(20 + turnedAway);
    for (const r of records(db)) expect(r.body).toBe(`through ${new URL(r.url ?? '').pathname}`);
    const jars = savedJars(db);
    expect(jars.map((j) => j.host)).toEqual([new URL(urlA).host]);
    expect(jars[0]?.jar).toContain('"key":"pass"');
  });

  it("never sends one host's cookie to another, even on the same IP (cookies ignore ports)", async () => {
    const { dir } = tempDir();
    const lines = [`${urlA}/login`, ...Array.from({ length: 10 }, (_, i) => `${urlB}/echo/${i}`)];
    const result = await runBatch({
      db: join(dir, 'run.sqlite'),
      input: lines,
      cookies: true,
      concurrency: 1,
      ...fast,
    });
    expect(result.counts.done).toBe(11);
    expect(seenA.map((s) => s.path)).toEqual(['/login']);
    expect(seenB).toHaveLength(10);
    expect(seenB.every((s) => s.cookie === '')).toBe(true);
  });

  it('keeps the jars in the journal: a resumed run is still logged in', async () => {
    const { dir } = tempDir();
    const db = join(dir, 'run.sqlite');
    const first = await runBatch({ db, input: [`${urlA}/login`], cookies: true, ...fast });
    expect(first.counts.done).toBe(1);
    // The same input with a line appended: only the new line is fetched, with the saved cookie.
    const second = await runBatch({
      db,
      input: [`${urlA}/login`, `${urlA}/members`],
      cookies: true,
      ...fast,
    });
    expect(second.counts.done).toBe(2);
    expect(seenA.map((s) => [s.path, s.cookie])).toEqual([
      ['/login', ''],
      ['/members', 'sid=s3cret'],
    ]);
    expect(records(db).find((r) => r.line === 2)?.body).toBe('members page');
  });

  it('a run without cookies neither sends the saved jars nor changes them', async () => {
    const { dir } = tempDir();
    const db = join(dir, 'run.sqlite');
    await runBatch({ db, input: [`${urlA}/login`], cookies: true, ...fast });
    const saved = savedJars(db);
    const later = await runBatch({ db, input: [`${urlA}/login`, `${urlA}/members`], ...fast });
    expect(later.counts.failed).toBe(1);
    expect(seenA.at(-1)).toEqual({ path: '/members', cookie: '' });
    expect(savedJars(db)).toEqual(saved);
  });

  it('checks the option', async () => {
    const { dir } = tempDir();
    await expect(
      runBatch({ db: join(dir, 'x.sqlite'), input: [], cookies: 'yes' as unknown as boolean }),
    ).rejects.toThrow('runBatch: cookies must be true or false, got "yes"');
  });
});

describe('HostCookieJars: bounded against hostile servers', () => {
  const url = 'http://127.0.0.1:1/';

  it(`drops a cookie over ${MAX_COOKIE_BYTES} bytes`, () => {
    const jars = new HostCookieJars();
    jars.setCookie(`big=${'x'.repeat(MAX_COOKIE_BYTES)}`, url);
    jars.setCookie(`fits=${'x'.repeat(MAX_COOKIE_BYTES - 5)}`, url);
    expect(jars.dropped).toBe(1);
    expect(jars.getCookieString(url)).toMatch(/^fits=x+$/);
  });

  it(`keeps at most ${MAX_COOKIES_PER_HOST} cookies a host, evicting the oldest`, () => {
    const jars = new HostCookieJars();
    for (let i = 0; i < MAX_COOKIES_PER_HOST + 20; i++) jars.setCookie(`c${i}=${i}`, url);
    const names = jars
      .getCookieString(url)
      .split('; ')
      .map((pair) => pair.split('=')[0]);
    expect(names).toHaveLength(MAX_COOKIES_PER_HOST);
    expect(names).not.toContain('c0');
    expect(names).not.toContain('c19');
    expect(names).toContain('c20');
    expect(names).toContain(`c${MAX_COOKIES_PER_HOST + 19}`);
    expect(jars.dropped).toBe(20);
    // Replacing a cookie does not count as a new one.
    jars.setCookie('c20=again', url);
    expect(jars.dropped).toBe(20);
  });

  it(`holds ${JARS_IN_MEMORY} jars in memory; the others are saved and read back`, () => {
    const saved = new Map<string, string>();
    const jars = new HostCookieJars((host) => saved.get(host));
    const hosts = JARS_IN_MEMORY + 10;
    for (let i = 0; i < hosts; i++) jars.setCookie(`n=${i}`, `http://127.0.0.1:${1000 + i}/`);
    const changed = jars.takeChanged();
    expect(changed).toHaveLength(hosts);
    for (const [host, json] of changed) saved.set(host, json);
    expect(jars.takeChanged()).toEqual([]);
    // The first hosts left memory: read back from what was saved.
    expect(jars.getCookieString('http://127.0.0.1:1000/')).toBe('n=0');
    expect(jars.getCookieString(`http://127.0.0.1:${1000 + hosts - 1}/`)).toBe(`n=${hosts - 1}`);
    expect(jars.takeChanged()).toEqual([]);
    jars.setCookie('n=changed', 'http://127.0.0.1:1001/');
    expect(jars.takeChanged()).toEqual([['127.0.0.1:1001', expect.stringContaining('changed')]]);
  });
});

describe('dogged batch --cookies', () => {
  it('runs with a jar per host, remembered by retry-failed', async () => {
    const { dir } = tempDir();
    const input = writeLines(dir, 'urls.txt', [`${urlA}/members`, `${urlA}/gate/1`]);
    const db = join(dir, 'run.sqlite');
    const run = await runCli(['batch', input, '--db', db, '--cookies', '--backoff', '5ms', '-q']);
    expect(run.code).toBe(10);
    // /members was fetched before any login: it failed (403). Log in by hand, then retry it.
    expect(records(db).find((r) => r.line === 1)?.status).toBe(403);
    const login = writeLines(dir, 'login.txt', [
      `${urlA}/members`,
      `${urlA}/gate/1`,
      `${urlA}/login`,
    ]);
    expect((await runCli(['batch', login, '--db', db, '--cookies', '-q'])).code).toBe(10);
    seenA.length = 0;
    const retried = await runCli(['retry-failed', db, '-q']);
    expect(retried.code).toBe(0);
    expect(seenA).toEqual([{ path: '/members', cookie: 'pass=1; sid=s3cret' }]);
  });
});
