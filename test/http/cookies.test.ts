import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CookieJar } from 'tough-cookie';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  jarFromNetscape,
  MAX_COOKIE_BYTES,
  MAX_COOKIES_PER_DOMAIN,
  netscapeFromJar,
} from '../../src/http/cookies.js';
import { get, Session } from '../../src/http/index.js';
import { fastSession } from './session-support.js';

/** The Cookie header of every request, by path and query. */
const seen = new Map<string, (string | undefined)[]>();
let server: Server;
let base: string;

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  const key = url.pathname + url.search;
  const list = seen.get(key) ?? [];
  list.push(req.headers.cookie);
  seen.set(key, list);
  const cookie = req.headers.cookie ?? '';
  switch (url.pathname) {
    case '/login':
      res.writeHead(200, { 'set-cookie': ['session=s3cret; Path=/; HttpOnly', 'theme=dark'] });
      res.end('logged in');
      return;
    case '/login-redirect':
      res.writeHead(302, { location: '/private', 'set-cookie': 'session=s3cret; Path=/' });
      res.end();
      return;
    case '/flaky-login':
      // The first attempt sets the cookie and fails; the retry must carry it.
      if (list.length === 1) {
        res.writeHead(503, { 'set-cookie': 'session=s3cret; Path=/' });
        res.end('try again');
      } else res.end(cookie.includes('session=s3cret') ? 'in' : 'out');
      return;
    case '/foreign':
      res.writeHead(200, { 'set-cookie': 'stolen=1; Domain=example.com; Path=/' });
      res.end('foreign');
      return;
    case '/flood': {
      // A hostile server: 200 cookies in one answer (a new batch each time), and one too large.
      const round = url.searchParams.get('round') ?? '0';
      const cookies = Array.from({ length: 200 }, (_, i) => `c${round}-${i}=${i}; Path=/`);
      cookies.push(`huge=${'x'.repeat(5000)}; Path=/`);
      res.writeHead(200, { 'set-cookie': cookies });
      res.end('flooded');
      return;
    }
    case '/private':
      if (cookie.includes('session=s3cret')) res.end('private page');
      else res.writeHead(403).end('log in first');
      return;
    default:
      res.end('ok');
  }
}

beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('cookies', () => {
  it('a Session keeps cookies by default: log in, then fetch a page that needs the cookie', async () => {
    const { session } = fastSession();
    expect((await session.get(`${base}/private?k=before`)).status).toBe(403);
    await (await session.get(`${base}/login`)).text();
    const res = await session.get(`${base}/private?k=after`);
    expect(await res.text()).toBe('private page');
    expect(seen.get('/private?k=after')).toEqual(['session=s3cret; theme=dark']);
    await session.close();
  });

  it('stores the Set-Cookie of a redirect hop and sends it on the next hop', async () => {
    const { session } = fastSession();
    const res = await session.get(`${base}/login-redirect`);
    expect(await res.text()).toBe('private page');
    await session.close();
  });

  it('stores the Set-Cookie of a retried attempt: the retry carries it', async () => {
    const { session } = fastSession();
    const res = await session.get(`${base}/flaky-login`);
    expect(await res.text()).toBe('in');
    expect(res.attempts).toBe(2);
    await session.close();
  });

  it('never stores nor sends a cookie for another domain', async () => {
    const { session } = fastSession();
    await (await session.get(`${base}/foreign`)).text();
    await (await session.get(`${base}/?k=foreign-after`)).text();
    expect(seen.get('/?k=foreign-after')).toEqual([undefined]);
    expect(await session.cookies?.getCookieString('http://example.com/')).toBe('');
    await session.close();
  });

  it('cookies: false keeps none', async () => {
    const { session } = fastSession({ cookies: false });
    await (await session.get(`${base}/login`)).text();
    expect((await session.get(`${base}/private?k=off`)).status).toBe(403);
    expect(session.cookies).toBeUndefined();
    await session.close();
  });

  it("a request's own Cookie header is sent too and wins over a jar cookie of the same name", async () => {
    const { session } = fastSession();
    await (await session.get(`${base}/login`)).text();
    await (
      await session.get(`${base}/?k=own`, { headers: { cookie: 'theme=light; lang=fr' } })
    ).text();
    expect(seen.get('/?k=own')).toEqual(['theme=light; lang=fr; session=s3cret']);
    await session.close();
  });

  it('takes a tough-cookie CookieJar, or any object with the two methods', async () => {
    const jar = new CookieJar();
    await jar.setCookie('session=s3cret', `${base}/`);
    const { session } = fastSession({ cookies: jar });
    expect(await (await session.get(`${base}/private?k=jar`)).text()).toBe('private page');
    await session.close();
    const calls: string[] = [];
    const store = {
      getCookieString: (url: string) => {
        calls.push(`get ${new URL(url).pathname}`);
        return 'session=s3cret';
      },
      setCookie: (cookie: string) => {
        calls.push(`set ${cookie.split(';')[0]}`);
      },
    };
    const { session: own } = fastSession({ cookies: store });
    await (await own.get(`${base}/login`)).text();
    expect(await (await own.get(`${base}/private?k=store`)).text()).toBe('private page');
    expect(calls).toEqual(['get /login', 'set session=s3cret', 'set theme=dark', 'get /private']);
    await own.close();
  });

  it(`bounds its own jar against a hostile server: ${MAX_COOKIES_PER_DOMAIN} cookies a domain (oldest evicted), none over ${MAX_COOKIE_BYTES} bytes`, async () => {
    const { session } = fastSession();
    await (await session.get(`${base}/login`)).text();
    for (const round of [1, 2]) await (await session.get(`${base}/flood?round=${round}`)).text();
    const jar = session.cookies as CookieJar;
    const names = (await jar.getCookies(base)).map((c) => c.key);
    expect(names).toHaveLength(MAX_COOKIES_PER_DOMAIN);
    // The newest are kept: round 2's 200 cookies minus the 20 created first.
    expect(names.filter((n) => n.startsWith('c2-'))).toHaveLength(MAX_COOKIES_PER_DOMAIN);
    expect(names).not.toContain('session');
    expect(names).not.toContain('huge');
    await session.close();
    // A jar of the caller's is the caller's: kept as it is.
    const mine = new CookieJar();
    const { session: own } = fastSession({ cookies: mine });
    await (await own.get(`${base}/flood?round=1`)).text();
    expect(await mine.getCookies(base)).toHaveLength(201);
    await own.close();
  });

  it('rejects a cookies option that is not a jar', () => {
    expect(() => new Session({ cookies: {} as never })).toThrow(/Session: cookies must be/);
  });

  it('reads and writes Netscape cookie files (curl -b / -c)', async () => {
    const future = Math.floor(Date.now() / 1000) + 3600;
    const text = [
      '# Netscape HTTP Cookie File',
      `127.0.0.1\tFALSE\t/\tFALSE\t${future}\tsession\ts3cret`,
      `#HttpOnly_.example.com\tTRUE\t/\tTRUE\t0\tid\t42`,
      `127.0.0.1\tFALSE\t/\tFALSE\t1\texpired\tgone`,
      'not a cookie line',
    ].join('\n');
    const jar = await jarFromNetscape(text);
    expect(await jar.getCookieString(`${base}/`)).toBe('session=s3cret');
    expect(await jar.getCookieString('https://www.example.com/')).toBe('id=42');
    expect(await jar.getCookieString('http://www.example.com/')).toBe('');
    const written = await netscapeFromJar(jar);
    expect(written).toContain(`127.0.0.1\tFALSE\t/\tFALSE\t${future}\tsession\ts3cret`);
    expect(written).toContain('#HttpOnly_.example.com\tTRUE\t/\tTRUE\t0\tid\t42');
    expect(written).not.toContain('expired');
  });

  it('the module-level get() keeps no cookies (as requests.get): unrelated calls share none', async () => {
    await (await get(`${base}/login`)).text();
    expect((await get(`${base}/private?k=module`)).status).toBe(403);
  });
});
