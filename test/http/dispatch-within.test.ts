import { Readable } from 'node:stream';
import { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { type AttemptSignal, dispatchWithin } from '../../src/http/connect-abort.js';

/** An attempt signal as the Exchange's AttemptDeadline is one, aborted by hand. */
class TestSignal implements AttemptSignal {
  aborted = false;
  reason: unknown;
  claimed = false;
  readonly listeners: ((reason: unknown) => void)[] = [];
  addEventListener(_type: 'abort', listener: (reason: unknown) => void): void {
    this.listeners.push(listener);
  }
  removeEventListener(_type: 'abort', listener: (reason: unknown) => void): void {
    const at = this.listeners.indexOf(listener);
    if (at >= 0) this.listeners.splice(at, 1);
  }
  abort(reason: unknown): void {
    this.aborted = true;
    this.reason = reason;
    for (const listener of this.listeners.splice(0)) listener(reason);
  }
}

/**
 * Answers each request when told to (`answer()`), with a 200 and a body, or fails it (`fail()`),
 * through undici's handler callbacks; counts the requests it was given.
 */
class ManualDispatcher extends Dispatcher {
  dispatched = 0;
  #handler: Dispatcher.DispatchHandler | undefined;
  override dispatch(_options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) {
    this.dispatched++;
    this.#handler = handler;
    return true;
  }
  answer(): void {
    const h = this.#handler as unknown as {
      onConnect(abort: () => void): void;
      onHeaders(status: number, headers: Buffer[], resume: () => void, text: string): boolean;
      onData(chunk: Buffer): boolean;
      onComplete(trailers: Buffer[]): void;
    };
    h.onConnect(() => {});
    h.onHeaders(200, [Buffer.from('content-length'), Buffer.from('2')], () => {}, 'OK');
    h.onData(Buffer.from('ok'));
    h.onComplete([]);
  }
  fail(error: Error): void {
    (this.#handler as unknown as { onError(error: Error): void }).onError(error);
  }
  override async close(): Promise<void> {}
  override async destroy(): Promise<void> {}
}

const options = (): Dispatcher.RequestOptions => ({
  origin: 'http://127.0.0.1:9',
  path: '/',
  method: 'GET',
});

describe('dispatchWithin', () => {
  it('settles with what the outcome makes of the head', async () => {
    const dispatcher = new ManualDispatcher();
    const signal = new TestSignal();
    const pending = dispatchWithin(dispatcher, options(), signal, {
      head: (raw) => `head ${raw.statusCode}`,
      failed: (error) => `failed ${(error as Error).message}`,
    });
    dispatcher.answer();
    expect(await pending).toBe('head 200');
    // Its own abort listener is gone; the request's own (undici's) stays until the body closes.
    expect(signal.listeners.length).toBe(1);
  });

  it('rejects with what the head throws, and the throw never leaves undici’s callback', async () => {
    const dispatcher = new ManualDispatcher();
    const thrown = new Error('head failed');
    const pending = dispatchWithin(dispatcher, options(), new TestSignal(), {
      head: () => {
        throw thrown;
      },
      failed: () => 'failed',
    });
    dispatcher.answer();
    await expect(pending).rejects.toBe(thrown);
  });

  it('settles with the failure of an error undici reports', async () => {
    const dispatcher = new ManualDispatcher();
    const pending = dispatchWithin(dispatcher, options(), new TestSignal(), {
      head: () => 'head',
      failed: (error) => `failed ${(error as Error).message}`,
    });
    dispatcher.fail(new Error('connection reset'));
    expect(await pending).toBe('failed connection reset');
  });

  it('settles with the failure at once when the signal aborts first, and drops a late answer', async () => {
    const dispatcher = new ManualDispatcher();
    const signal = new TestSignal();
    let heads = 0;
    const pending = dispatchWithin(dispatcher, options(), signal, {
      head: () => {
        heads++;
        return 'head';
      },
      failed: (error) => `failed ${(error as Error).message}`,
    });
    signal.abort(new Error('deadline'));
    expect(await pending).toBe('failed deadline');
    // undici's own listener failed the request; an answer that still comes is not handed over.
    expect(heads).toBe(0);
  });

  it('does not dispatch under a signal that already aborted', async () => {
    const dispatcher = new ManualDispatcher();
    const signal = new TestSignal();
    signal.abort(new Error('too late'));
    const pending = dispatchWithin(dispatcher, options(), signal, {
      head: () => 'head',
      failed: (error) => `failed ${(error as Error).message}`,
    });
    expect(await pending).toBe('failed too late');
    expect(dispatcher.dispatched).toBe(0);
  });

  it('destroys the body of a response that arrives after the abort', async () => {
    const bodies: Readable[] = [];
    const dispatcher = {
      request(_options: unknown, callback: (error: Error | null, data: unknown) => void) {
        // The abort happens first; the answer comes anyway (a dispatcher that ignores signals).
        signal.abort(new Error('deadline'));
        const body = Readable.from(['late']);
        bodies.push(body);
        callback(null, { statusCode: 200, headers: {}, body });
      },
    } as unknown as Dispatcher;
    const signal = new TestSignal();
    const result = await dispatchWithin(dispatcher, options(), signal, {
      head: () => 'head',
      failed: (error) => `failed ${(error as Error).message}`,
    });
    expect(result).toBe('failed deadline');
    expect(bodies[0]?.destroyed).toBe(true);
  });
});
