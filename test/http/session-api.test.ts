import { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ConnectTimeoutError,
  closeDefaultSession,
  DoggedResponse,
  get,
  HTTPStatusError,
  InvalidURLError,
  MaxRetryError,
  ReadTimeoutError,
  request,
  Session,
  TotalTimeoutError,
  UnreplayableBodyError,
} from '../../src/http/index.js';
import { DEFAULT_TIMEOUTS } from '../../src/http/timeouts.js';
import {
  type ChaosServer,
  type ConnectTimeoutTarget,
  FakeClock,
  startChaosServer,
  startConnectTimeoutTarget,
} from '../../src/testing/index.js';
import { arrivals, fastSession, rejectionOf } from './session-support.js';

interface Echo {
  method: string;
  path: string;
  target: string;
  query: Record<string, string | string[]>;
  headers: Record<string, string>;
  body: string;
  json?: unknown;
}

let chaos: ChaosServer;
let target: ConnectTimeoutTarget;
let session: Session;

beforeAll(async () => {
  target = await startConnectTimeoutTarget();
  chaos = await startChaosServer();
  ({ session } = fastSession());
});
afterAll(async () => {
  await session.close();
  await closeDefaultSession();
  await chaos.close();
  await target.close();
});
beforeEach(() => chaos.reset());

async function echo(response: DoggedResponse | Promise<DoggedResponse>): Promise<Echo> {
  return (await (await response).json()) as Echo;
}

/** A real undici Agent that records the options of every request dispatched through it. */
class RecordingAgent extends Agent {
  readonly seen: Dispatcher.DispatchOptions[] = [];
  override dispatch(options: Agent.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.seen.push(options);
    return super.dispatch(options, handler);
  }
}

describe('timeouts', () => {
  it('are on by default: connect 10 s, read 30 s (headers and body), no total', async () => {
    expect(DEFAULT_TIMEOUTS).toEqual({ connect: 10_000, read: 30_000, total: undefined });
    const dispatcher = new RecordingAgent();
    await using plain = new Session({ dispatcher, logger: false });
    await (await plain.get(`${chaos.url}/status/200`)).text();
    expect(dispatcher.seen[0]).toMatchObject({ headersTimeout: 30_000, bodyTimeout: 30_000 });
    await dispatcher.close();
  });

  it('one number sets both connect and read', async () => {
    const dispatcher = new RecordingAgent();
    await using plain = new Session({ dispatcher, logger: false, timeout: 4000 });
    await (await plain.get(`${chaos.url}/status/200`)).text();
    await (await plain.get(`${chaos.url}/status/200`, { timeout: { read: 1234 } })).text();
    expect(dispatcher.seen.map((o) => [o.headersTimeout, o.bodyTimeout])).toEqual([
      [4000, 4000],
      [1234, 1234],
    ]);
    await dispatcher.close();
  });

  it('the [connect, read] tuple sets the connect timeout first', async () => {
    const error = await rejectionOf(
      session.get(`${target.url}/`, { timeout: [150, 60_000], retry: false }),
    );
    expect(error).toBeInstanceOf(ConnectTimeoutError);
  });

  it('the [connect, read] tuple sets the read timeout second', async () => {
    const error = await rejectionOf(
      session.get(`${chaos.url}/delay/5000`, { timeout: [60_000, 150], retry: false }),
    );
    expect(error).toBeInstanceOf(ReadTimeoutError);
    expect(arrivals(chaos)).toHaveLength(1);
  });

  it('timeout.total bounds retries and their sleeps: TotalTimeoutError before a sleep would cross it', async () => {
    const { session: bounded, clock } = fastSession({
      retry: { backoffFactor: 1000 },
      timeout: { total: 3000 },
    });
    await using _ = bounded;
    const error = await rejectionOf(bounded.get(`${chaos.url}/status/503`));
    expect(error).toBeInstanceOf(TotalTimeoutError);
    const total = error as TotalTimeoutError;
    expect(total.code).toBe('ERR_DOGGED_TOTAL_TIMEOUT');
    expect(total.attempts).toBe(3);
    expect(total.message).toMatch(/would cross it/);
    expect(total.message).toMatch(/503 Service Unavailable/);
    // Slept 0 then 2000 ms; the next backoff (4000 ms) would have crossed the 3 s deadline.
    expect(clock.sleeps).toEqual([0, 2000]);
    expect(arrivals(chaos)).toHaveLength(3);
  });

  it('timeout.total cuts off the attempt in flight', async () => {
    await using bounded = new Session({ logger: false, timeout: { total: 300, read: 60_000 } });
    const started = performance.now();
    const error = await rejectionOf(bounded.get(`${chaos.url}/delay/5000`));
    expect(error).toBeInstanceOf(TotalTimeoutError);
    // Far sooner than the server would have answered.
    expect(performance.now() - started).toBeLessThan(4000);
    expect(arrivals(chaos)).toHaveLength(1);
  });
});

describe('AbortSignal', () => {
  it('aborts a retry sleep at once and rejects with the reason', async () => {
    await using real = new Session({ logger: false });
    const controller = new AbortController();
    const reason = new Error('shutting down');
    const started = performance.now();
    const pending = real.get(`${chaos.url}/status/503?retry-after=60`, {
      signal: controller.signal,
    });
    // Abort once the first 503 has been answered and the 60 s sleep has begun.
    const waitForArrival = async (): Promise<void> => {
      while (arrivals(chaos).length === 0) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 50));
      controller.abort(reason);
    };
    const [error] = await Promise.all([rejectionOf(pending), waitForArrival()]);
    expect(error).toBe(reason);
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(arrivals(chaos)).toHaveLength(1);
  });

  it('leaves no sleep pending on the clock', async () => {
    const clock = new FakeClock();
    await using s = new Session({ clock, logger: false });
    const controller = new AbortController();
    const pending = rejectionOf(
      s.get(`${chaos.url}/status/503?retry-after=60`, { signal: controller.signal }),
    );
    while (clock.pending === 0) await new Promise((r) => setTimeout(r, 5));
    controller.abort(new Error('stop'));
    expect(((await pending) as Error).message).toBe('stop');
    expect(clock.pending).toBe(0);
    expect(clock.sleeps).toEqual([60_000]);
  });

  it('aborts an attempt in flight, which is not retried', async () => {
    const controller = new AbortController();
    const pending = rejectionOf(
      session.get(`${chaos.url}/delay/5000`, { signal: controller.signal }),
    );
    while (arrivals(chaos).length === 0) await new Promise((r) => setTimeout(r, 5));
    const reason = new Error('cancelled');
    controller.abort(reason);
    expect(await pending).toBe(reason);
    expect(arrivals(chaos)).toHaveLength(1);
  });

  it('an already aborted signal sends nothing', async () => {
    const reason = new Error('too late');
    const error = await rejectionOf(
      session.get(`${chaos.url}/status/200`, { signal: AbortSignal.abort(reason) }),
    );
    expect(error).toBe(reason);
    expect(arrivals(chaos)).toHaveLength(0);
  });
});

describe('mount()', () => {
  it('uses the longest matching prefix', async () => {
    const { session: mounted } = fastSession();
    await using _ = mounted;
    mounted.mount(`${chaos.url}/status/`, { retry: { total: 1, backoffFactor: 0 } });
    mounted.mount(`${chaos.url}/status/50`, { retry: { total: 2, backoffFactor: 0 } });
    mounted.mount(`${chaos.url}/`, { headers: { 'x-mount': 'root' } });
    await expect(mounted.get(`${chaos.url}/status/503`)).rejects.toMatchObject({ attempts: 3 });
    await expect(mounted.get(`${chaos.url}/status/429`)).rejects.toMatchObject({ attempts: 2 });
    const seen = await echo(mounted.get(`${chaos.url}/echo`));
    expect(seen.headers['x-mount']).toBe('root');
    expect(arrivals(chaos).map((a) => a.path)).toEqual([
      ...Array(3).fill('/status/503'),
      ...Array(2).fill('/status/429'),
      '/echo',
    ]);
  });

  it('a URL outside every prefix uses the session settings', async () => {
    const { session: mounted } = fastSession();
    await using _ = mounted;
    mounted.mount(`${chaos.url}/flaky/`, { retry: false });
    await expect(mounted.get(`${chaos.url}/status/503`)).rejects.toMatchObject({ attempts: 4 });
    expect((await mounted.get(`${chaos.url}/flaky/m1?fail=1`)).status).toBe(503);
  });

  it('mounting the same prefix again replaces it', async () => {
    const { session: mounted } = fastSession();
    await using _ = mounted;
    mounted.mount(`${chaos.url}/status/`, { retry: false });
    mounted.mount(`${chaos.url}/status/`, { retry: { total: 1, backoffFactor: 0 } });
    await expect(mounted.get(`${chaos.url}/status/503`)).rejects.toMatchObject({ attempts: 2 });
  });
});

describe('URLs, query, headers and bodies', () => {
  it('joins baseURL and a relative path with exactly one slash', async () => {
    const { session: based } = fastSession({ baseURL: `${chaos.url}/status/` });
    await using _ = based;
    expect((await based.get('201')).status).toBe(201);
    // A leading slash does not escape the base path (unlike new URL('/x', base)).
    expect((await based.get('/202')).status).toBe(202);
    // An absolute URL ignores baseURL.
    expect((await echo(based.get(`${chaos.url}/echo`))).path).toBe('/echo');
    expect(arrivals(chaos).map((a) => a.path)).toEqual(['/status/201', '/status/202', '/echo']);
  });

  it('rejects a relative URL without baseURL, and a non-http URL, with InvalidURLError', async () => {
    await expect(session.get('/status/200')).rejects.toBeInstanceOf(InvalidURLError);
    await expect(session.get('ftp://127.0.0.1/x')).rejects.toBeInstanceOf(InvalidURLError);
  });

  it('appends query parameters (arrays repeat, null and undefined are left out)', async () => {
    const seen = await echo(
      session.get(`${chaos.url}/echo?fixed=1`, {
        query: { page: 2, tags: ['a', 'b'], flag: true, skip: undefined, none: null },
      }),
    );
    expect(seen.query).toEqual({ fixed: '1', page: '2', tags: ['a', 'b'], flag: 'true' });
    const fromParams = await echo(
      session.get(`${chaos.url}/echo`, { query: new URLSearchParams([['q', 'x y']]) }),
    );
    expect(fromParams.query).toEqual({ q: 'x y' });
  });

  it('sends json with its content-type', async () => {
    const seen = await echo(
      session.post(`${chaos.url}/echo`, { json: { name: 'Ada', n: [1, 2] } }),
    );
    expect(seen.method).toBe('POST');
    expect(seen.headers['content-type']).toBe('application/json');
    expect(seen.json).toEqual({ name: 'Ada', n: [1, 2] });
  });

  it('sends strings, bytes and URLSearchParams bodies', async () => {
    const text = await echo(session.put(`${chaos.url}/echo`, { body: 'hello' }));
    expect([text.body, text.headers['content-type']]).toEqual([
      'hello',
      'text/plain;charset=UTF-8',
    ]);
    const bytes = await echo(
      session.put(`${chaos.url}/echo`, { body: new TextEncoder().encode('hi') }),
    );
    expect(bytes.body).toBe('hi');
    const form = await echo(
      session.post(`${chaos.url}/echo`, { body: new URLSearchParams({ a: '1' }) }),
    );
    expect([form.body, form.headers['content-type']]).toEqual([
      'a=1',
      'application/x-www-form-urlencoded;charset=UTF-8',
    ]);
  });

  it('layers headers: default user-agent, session, request; undefined removes one', async () => {
    const { session: withHeaders } = fastSession({ headers: { 'x-team': 'core', 'x-drop': 'me' } });
    await using _ = withHeaders;
    const seen = await echo(
      withHeaders.get(`${chaos.url}/echo`, { headers: { 'X-Request': '7', 'x-drop': undefined } }),
    );
    expect(seen.headers['user-agent']).toMatch(/^dogged\/\d+\.\d+\.\d+/);
    expect(seen.headers['x-team']).toBe('core');
    expect(seen.headers['x-request']).toBe('7');
    expect(seen.headers['x-drop']).toBeUndefined();
  });

  it('turns URL credentials into basic auth', async () => {
    const url = new URL(`${chaos.url}/echo`);
    url.username = 'ada';
    url.password = 's3cret';
    const seen = await echo(session.get(url));
    expect(seen.headers.authorization).toBe(
      `Basic ${Buffer.from('ada:s3cret').toString('base64')}`,
    );
  });

  it('HEAD and OPTIONS work, and a response knows its url and method', async () => {
    const head = await session.head(`${chaos.url}/status/200`);
    expect([head.status, head.method, head.url]).toEqual([200, 'HEAD', `${chaos.url}/status/200`]);
    expect(await head.text()).toBe('');
    expect((await echo(session.options(`${chaos.url}/echo`))).method).toBe('OPTIONS');
  });
});

describe('request bodies that cannot be replayed', () => {
  it('a consumed stream is not sent again after an error: UnreplayableBodyError', async () => {
    const error = await rejectionOf(
      session.put(`${chaos.url}/reset`, { body: Readable.from(['a', 'b']) }),
    );
    expect(error).toBeInstanceOf(UnreplayableBodyError);
    expect((error as UnreplayableBodyError).code).toBe('ERR_DOGGED_UNREPLAYABLE_BODY');
    expect(arrivals(chaos)).toHaveLength(1);
  });

  it('a consumed stream is not sent again after a retriable status: UnreplayableBodyError', async () => {
    const error = await rejectionOf(
      session.put(`${chaos.url}/status/503`, { body: Readable.from(['a', 'b']) }),
    );
    expect(error).toBeInstanceOf(UnreplayableBodyError);
    expect((error as UnreplayableBodyError).cause).toBeInstanceOf(HTTPStatusError);
    expect(arrivals(chaos)).toHaveLength(1);
  });

  it('a function body is called again for every attempt', async () => {
    let calls = 0;
    const response = await session.put(`${chaos.url}/flaky/f1?fail=2`, {
      body: () => {
        calls++;
        return Readable.from(['chunk']);
      },
    });
    expect(response.status).toBe(200);
    expect(calls).toBe(3);
  });
});

describe('module-level functions and the session lifecycle', () => {
  it('get() and request() use a default session', async () => {
    const response = await get(`${chaos.url}/status/200`);
    expect(response).toBeInstanceOf(DoggedResponse);
    expect(response.status).toBe(200);
    await response.text();
    expect((await echo(request(`${chaos.url}/echo`, { method: 'DELETE' }))).method).toBe('DELETE');
  });

  it('`await using` closes the session at the end of the block', async () => {
    let kept: Session | undefined;
    {
      await using scoped = new Session({ logger: false });
      kept = scoped;
      await (await scoped.get(`${chaos.url}/status/200`)).text();
      expect(scoped.closed).toBe(false);
    }
    expect(kept.closed).toBe(true);
    await expect(kept.get(`${chaos.url}/status/200`)).rejects.toThrow(/closed/);
  });

  it('close() is idempotent', async () => {
    const s = new Session({ logger: false });
    await s.close();
    await s.close();
    expect(s.closed).toBe(true);
  });

  it('rejects unknown options loudly, with a hint', async () => {
    expect(() => new Session({ retries: 3 } as never)).toThrow(/retry: \{ total: n \}/);
    await expect(session.get(`${chaos.url}/echo`, { params: {} } as never)).rejects.toThrow(
      /use query/,
    );
    expect(arrivals(chaos)).toHaveLength(0);
  });

  it('a give-up on retried statuses is a MaxRetryError, not a returned response', async () => {
    await expect(session.get(`${chaos.url}/status/500`)).rejects.toBeInstanceOf(MaxRetryError);
  });
});
