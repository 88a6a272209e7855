import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ConnectError,
  ConnectionResetError,
  ConnectTimeoutError,
  classifyError,
  type DoggedError,
  IncompleteBodyError,
  MaxRetryError,
  NameResolutionError,
  ReadTimeoutError,
  RetryPolicy,
  type Session,
} from '../../src/http/index.js';
import {
  type ChaosServer,
  type ConnectTimeoutTarget,
  startChaosServer,
  startConnectTimeoutTarget,
} from '../../src/testing/index.js';
import { arrivals, closedPort, fastSession, rejectionOf } from './session-support.js';

type ErrorClass = abstract new (...args: never[]) => DoggedError;

interface FailureKind {
  readonly name: string;
  /** The URL that fails this way. */
  url(): string;
  /** The error one attempt fails with. */
  readonly errorClass: ErrorClass;
  /** The classes it must not be confused with. */
  readonly notClass?: ErrorClass;
  /** Connect-phase: the server cannot have seen the request, so POST is retried too. */
  readonly connectPhase: boolean;
  /** The failure shows only when the body is read. */
  readonly inBody: boolean;
  /** The failure never reaches the chaos server's log (no connection). */
  readonly unlogged?: boolean;
}

let chaos: ChaosServer;
let target: ConnectTimeoutTarget;
let refusedUrl: string;
let session: Session;
const TIMEOUTS = { connect: 150, read: 150 };
/** Retries per request: undici's timers tick every ~0.5 s, so each timeout attempt costs ~1 s. */
const RETRIES = 2;
const ATTEMPTS = RETRIES + 1;

beforeAll(async () => {
  // The connect-timeout target first: nothing else may connect while it fills its queue.
  target = await startConnectTimeoutTarget();
  chaos = await startChaosServer();
  refusedUrl = `http://127.0.0.1:${await closedPort()}/refused`;
  ({ session } = fastSession({ timeout: TIMEOUTS, retry: { total: RETRIES, backoffFactor: 50 } }));
});
afterAll(async () => {
  await session.close();
  await chaos.close();
  await target.close();
});
beforeEach(() => chaos.reset());

const KINDS: readonly FailureKind[] = [
  {
    name: 'refused (closed port)',
    url: () => refusedUrl,
    errorClass: ConnectError,
    notClass: ConnectionResetError,
    connectPhase: true,
    inBody: false,
    unlogged: true,
  },
  {
    name: 'connect timeout',
    url: () => `${target.url}/never`,
    errorClass: ConnectTimeoutError,
    connectPhase: true,
    inBody: false,
    unlogged: true,
  },
  {
    name: 'read timeout (no response head)',
    url: () => `${chaos.url}/delay/5000`,
    errorClass: ReadTimeoutError,
    connectPhase: false,
    inBody: false,
  },
  {
    name: 'reset before the response',
    url: () => `${chaos.url}/reset`,
    errorClass: ConnectionResetError,
    connectPhase: false,
    inBody: false,
  },
  {
    name: 'reset mid-body',
    url: () => `${chaos.url}/reset-mid-body?bytes=100&declared=1000`,
    errorClass: IncompleteBodyError,
    connectPhase: false,
    inBody: true,
  },
  {
    name: 'truncated content-length body',
    url: () => `${chaos.url}/truncate?bytes=100&declared=1000`,
    errorClass: IncompleteBodyError,
    connectPhase: false,
    inBody: true,
  },
  {
    name: 'truncated chunked body',
    url: () => `${chaos.url}/chunked-truncate?chunks=2&size=8`,
    errorClass: IncompleteBodyError,
    connectPhase: false,
    inBody: true,
  },
];

/** Sends the request and, for body-phase failures, reads the body: where the failure shows. */
async function attempt(kind: FailureKind, method: 'GET' | 'POST', retry?: false): Promise<unknown> {
  return rejectionOf(
    (async () => {
      const response = await session.request(kind.url(), {
        method,
        ...(method === 'POST' && { body: 'payload' }),
        ...(retry === false && { retry: false as const }),
      });
      expect(kind.inBody, `${kind.name}: the response head arrived`).toBe(true);
      return response.text();
    })(),
  );
}

function expectCount(kind: FailureKind, error: DoggedError, attempts: number): void {
  expect(error.attempts).toBe(attempts);
  if (!kind.unlogged) expect(arrivals(chaos)).toHaveLength(attempts);
}

describe.each(KINDS)('$name', (kind) => {
  it(`one attempt fails with ${kind.errorClass.name} (retry: false throws the class itself)`, async () => {
    const error = await attempt(kind, 'GET', false);
    expect(error).toBeInstanceOf(kind.errorClass);
    if (kind.notClass) expect(error).not.toBeInstanceOf(kind.notClass);
    const failure = error as DoggedError;
    expect(failure.retriable).toBe(true);
    expect(failure.method).toBe('GET');
    expect(failure.url).toBe(kind.url());
    expect(failure.mayHaveReachedServer).toBe(!kind.connectPhase);
    expect(failure.cause).toBeDefined();
    expectCount(kind, failure, 1);
  });

  it('a GET is retried, then arrives as MaxRetryError whose reason and cause are that class', async () => {
    const error = await attempt(kind, 'GET');
    expect(error).toBeInstanceOf(MaxRetryError);
    const maxRetry = error as MaxRetryError;
    expect(maxRetry.reason).toBeInstanceOf(kind.errorClass);
    expect(maxRetry.cause).toBe(maxRetry.reason);
    expect(maxRetry.history).toHaveLength(ATTEMPTS);
    for (const entry of maxRetry.history) expect(entry.error).toBeInstanceOf(kind.errorClass);
    expectCount(kind, maxRetry, ATTEMPTS);
  });

  if (kind.connectPhase) {
    it('a POST is retried too: the server cannot have seen it', async () => {
      const error = await attempt(kind, 'POST');
      expect(error).toBeInstanceOf(MaxRetryError);
      expect((error as MaxRetryError).reason).toBeInstanceOf(kind.errorClass);
      expectCount(kind, error as DoggedError, ATTEMPTS);
    });
  } else {
    it('a POST is not retried: the server may have acted on it', async () => {
      const error = await attempt(kind, 'POST');
      expect(error).toBeInstanceOf(kind.errorClass);
      expect((error as DoggedError).method).toBe('POST');
      expectCount(kind, error as DoggedError, 1);
    });
  }
});

describe('body-phase failures', () => {
  it('text() on a cut body retries within the same policy and returns the whole body', async () => {
    const response = await session.get(`${chaos.url}/flaky/b1?fail=2&mode=truncate`);
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(JSON.parse(text)).toEqual({ key: 'b1', attempt: 3, failed: false });
    expect(response.attempts).toBe(3);
    expect(response.headers.get('x-chaos-attempt')).toBe('3');
    expect(arrivals(chaos)).toHaveLength(3);
  });

  it('json() and arrayBuffer() retry a cut body the same way', async () => {
    const json = await (await session.get(`${chaos.url}/flaky/b2?fail=1&mode=truncate`)).json();
    expect(json).toEqual({ key: 'b2', attempt: 2, failed: false });
    const buffer = await (
      await session.get(`${chaos.url}/flaky/b3?fail=1&mode=truncate`)
    ).arrayBuffer();
    expect(JSON.parse(Buffer.from(buffer).toString('utf8'))).toMatchObject({ attempt: 2 });
  });

  it('the body retries share the policy: more cuts than retries end in MaxRetryError', async () => {
    const response = await session.get(`${chaos.url}/flaky/b4?fail=10&mode=truncate`, {
      retry: { total: 1, backoffFactor: 10 },
    });
    const error = await rejectionOf(response.text());
    expect(error).toBeInstanceOf(MaxRetryError);
    expect((error as MaxRetryError).reason).toBeInstanceOf(IncompleteBodyError);
    expect(arrivals(chaos)).toHaveLength(2);
  });

  it("a POST's cut body is not retried: IncompleteBodyError after one attempt", async () => {
    const response = await session.post(`${chaos.url}/flaky/b5?fail=1&mode=truncate`, {
      body: 'x',
    });
    const error = await rejectionOf(response.text());
    expect(error).toBeInstanceOf(IncompleteBodyError);
    expect(arrivals(chaos)).toHaveLength(1);
  });

  it("a POST's cut body is retried when it carries an idempotency key", async () => {
    const response = await session.post(`${chaos.url}/flaky/b6?fail=1&mode=truncate`, {
      body: 'x',
      idempotencyKey: true,
    });
    expect(await response.json()).toEqual({ key: 'b6', attempt: 2, failed: false });
  });

  it('a stalled body is a ReadTimeoutError in the body phase, retried for GET', async () => {
    const url = `${chaos.url}/drip?bytes=4&interval=5000`;
    const error = await rejectionOf((await session.get(url)).text());
    expect(error).toBeInstanceOf(MaxRetryError);
    const reason = (error as MaxRetryError).reason as ReadTimeoutError;
    expect(reason).toBeInstanceOf(ReadTimeoutError);
    expect(reason.phase).toBe('body');
    expect(arrivals(chaos)).toHaveLength(ATTEMPTS);
  });

  it('never hands back a silently short body: the stream of a cut body errors', async () => {
    const response = await session.get(`${chaos.url}/truncate?bytes=10&declared=100`, {
      retry: false,
    });
    const chunks: Buffer[] = [];
    const error = await rejectionOf(
      (async () => {
        for await (const chunk of response.body) chunks.push(chunk as Buffer);
      })(),
    );
    expect(error).toBeInstanceOf(IncompleteBodyError);
    expect(Buffer.concat(chunks).length).toBeLessThan(100);
  });
});

describe('name resolution (synthetic errors: no real DNS lookup)', () => {
  const enotfound = (): Error =>
    Object.assign(new Error('getaddrinfo ENOTFOUND api.example.invalid'), {
      code: 'ENOTFOUND',
      hostname: 'api.example.invalid',
    });

  it('ENOTFOUND and EAI_AGAIN classify as NameResolutionError, a connect-phase ConnectError', () => {
    for (const code of ['ENOTFOUND', 'EAI_AGAIN']) {
      const error = classifyError(Object.assign(new Error(code), { code }), {
        method: 'POST',
        url: 'http://api.example.invalid/x',
      });
      expect(error).toBeInstanceOf(NameResolutionError);
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as NameResolutionError).code).toBe('ERR_DOGGED_NAME_RESOLUTION');
      expect((error as NameResolutionError).phase).toBe('connect');
      expect((error as NameResolutionError).mayHaveReachedServer).toBe(false);
    }
  });

  it('the policy retries a POST after a DNS failure, and gives up with it as the reason', () => {
    let policy = new RetryPolicy({ total: 1 });
    const input = { method: 'POST', url: 'http://api.example.invalid/x', error: enotfound() };
    policy = policy.increment(input);
    expect(policy.remaining.total).toBe(0);
    let thrown: unknown;
    try {
      policy.increment(input);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(MaxRetryError);
    expect((thrown as MaxRetryError).reason).toBeInstanceOf(NameResolutionError);
  });
});
