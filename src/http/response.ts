import { PassThrough, Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { AttemptDeadline } from './attempt-deadline.js';
import {
  bodyTooLarge,
  contentLengthOf,
  DEFAULT_MAX_BODY_SIZE,
  limitedStream,
} from './body-limit.js';
import { classifyError } from './classify.js';
import {
  type Coding,
  codingsToUndo,
  decodedStream,
  decodeSmall,
  decodeWholeBody,
} from './decompress.js';
import {
  BodyTooLargeError,
  DoggedError,
  HTTPStatusError,
  IncompleteBodyError,
  type RequestHistoryEntry,
} from './errors.js';
import type { ResumeFrom } from './exchange-base.js';
import { toHeaders } from './headers.js';
import {
  byteLength,
  collect,
  contentRangeStart,
  readWhole,
  resumeValidators,
  resumingStream,
  skipping,
  type Validators,
} from './resume.js';
import { describeStatus } from './status.js';

type RawResponse = Dispatcher.ResponseData;

/** What a response calls when reading its body failed (its request's Exchange). */
export interface BodyRetry {
  /**
   * Retries the request within the same policy (if it may), from `resume.start` with a Range
   * request when given, and returns the new attempt's response, or throws the final error.
   */
  retryBody(error: unknown, resume?: ResumeFrom): Promise<DoggedResponse>;
}

/** The most a drained response keeps in memory, and how long draining may take. */
export const DRAIN_LIMIT_BYTES = 64 * 1024;
export const DRAIN_TIMEOUT_MS = 1000;

const ignoreError = (): void => {};

function utf8(data: Buffer): string {
  return data.toString('utf8');
}

function same(data: Buffer): Buffer {
  return data;
}

function toArrayBuffer(data: Buffer): ArrayBuffer {
  return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
}

/**
 * A response: status and headers at once, the body on demand. `text()`, `json()`,
 * `arrayBuffer()` and `bytes()` read it whole — and when the body is cut short or stalls on a
 * replay-safe request, they retry the request within the same policy, so you get the whole body
 * or the final error, never a silently short one. A body read whole is bounded: `maxBodySize`
 * (100 MiB when not set: `BodyTooLargeError`) and the attempt deadline (10 minutes when
 * `timeout.attempt` is not set: `AttemptTimeoutError`).
 */
export class DoggedResponse {
  #raw: RawResponse;
  #headers: Headers | undefined;
  #buffered: Buffer | undefined;
  #used = false;
  #attempts: number;
  #history: readonly RequestHistoryEntry[];
  readonly #retryBody: BodyRetry | undefined;
  /** The absolute position of this body's first byte (not 0 for a resumed download). */
  readonly #offset: number;
  /**
   * How to resume this body after a cut, when the server allows it: read from the head when first
   * needed (see {@link #resumeValidators}); `null` when there are none.
   */
  #validators: Validators | null | undefined;
  /** The stream {@link body} handed out, once it has been asked for. */
  #bodyOut: Readable | undefined;
  /** The attempt's deadline, which runs until the body is read. */
  readonly #deadline: AttemptDeadline | undefined;
  /** The limit the caller set (`maxBodySize`); undefined: the default for bodies read whole. */
  readonly #maxBodySize: number | undefined;
  /** Decode the body by its Content-Encoding (`decompress`). */
  readonly #decompress: boolean;
  /** The codings to undo for the current raw response; undefined: bytes as received. */
  #codings: Coding[] | undefined;
  /** The final URL (credentials shown as `***@`). */
  readonly url: string;
  /** The request method. */
  readonly method: string;

  constructor(
    raw: RawResponse,
    init: {
      url: string;
      method: string;
      attempts: number;
      history: readonly RequestHistoryEntry[];
      retryBody?: BodyRetry;
      /** Set when this response answers a resumed download's Range request. */
      resumedFrom?: number;
      /** The attempt's deadline (a stream drops a default one). */
      deadline?: AttemptDeadline;
      /** The body limit the caller set, in bytes. */
      maxBodySize?: number | undefined;
      /** Decode the body by its Content-Encoding. */
      decompress?: boolean;
    },
  ) {
    this.#raw = raw;
    this.url = init.url;
    this.method = init.method;
    this.#attempts = init.attempts;
    this.#history = init.history;
    this.#retryBody = init.retryBody;
    this.#offset = init.resumedFrom ?? 0;
    this.#deadline = init.deadline;
    this.#maxBodySize = init.maxBodySize;
    this.#decompress = init.decompress === true;
    this.#codings = this.#decompress
      ? codingsToUndo(init.method, raw.statusCode, raw.headers)
      : undefined;
    // A resumed download's are the first response's, which its reader sets.
    this.#validators = init.resumedFrom === undefined ? undefined : null;
  }

  /**
   * The validators to resume this body with, read from the head the first time: only a cut
   * needs them, and most bodies are read without one.
   */
  #resumeValidators(): Validators | undefined {
    if (this.#validators === undefined)
      this.#validators =
        resumeValidators(this.method, this.#raw.statusCode, this.#raw.headers) ?? null;
    return this.#validators ?? undefined;
  }

  /** The HTTP status code. */
  get status(): number {
    return this.#raw.statusCode;
  }

  /** The reason phrase (or the standard one for the status). */
  get statusText(): string {
    return describeStatus(this.#raw.statusCode).replace(/^\d+ ?/, '');
  }

  /** True for a 2xx status. */
  get ok(): boolean {
    return this.#raw.statusCode >= 200 && this.#raw.statusCode < 300;
  }

  /** The response headers (WHATWG `Headers`, built on first use). */
  get headers(): Headers {
    if (!this.#headers) this.#headers = toHeaders(this.#raw.headers);
    return this.#headers;
  }

  /**
   * The response headers as undici parsed them: lower-case names, an array for a repeated
   * header. Read-only, and cheaper than `headers` when you handle many responses.
   */
  get rawHeaders(): Readonly<Record<string, string | string[] | undefined>> {
    return this.#raw.headers;
  }

  /** How many attempts this request took (1 when the first one succeeded). */
  get attempts(): number {
    return this.#attempts;
  }

  /** What happened on each earlier attempt. */
  get history(): readonly RequestHistoryEntry[] {
    return this.#history;
  }

  /**
   * The body as a Node.js stream. When the download can be resumed (a GET answered with
   * `Accept-Ranges: bytes` and a strong ETag or Last-Modified), a cut is resumed with a Range
   * request and the stream goes on where it stopped, never duplicating or dropping a byte;
   * otherwise it is undici's body as it is. With `maxBodySize` set, the stream fails with
   * `BodyTooLargeError` once it passes the limit (at once when the Content-Length does), and
   * the connection is closed; without it, a stream has no limit and no default attempt deadline.
   * A failure while streaming is a dogged error: a body cut short (and not resumable) is an
   * `IncompleteBodyError`, a stall a `ReadTimeoutError`.
   * @example
   * const res = await session.get(url);
   * await pipeline(res.body, createWriteStream('file.bin'));
   */
  get body(): Readable {
    // The same stream every time it is asked for (a second reader must not get a second pipe).
    if (this.#bodyOut) return this.#bodyOut;
    const stream = this.#bodyStream();
    // A failure met while streaming comes out in dogged's taxonomy (a cut body is an
    // IncompleteBodyError), not as undici's raw socket error.
    const out = new PassThrough();
    stream.on('error', (error) => out.destroy(this.#bodyError(error) as Error));
    out.on('close', () => {
      if (!stream.destroyed) stream.destroy();
    });
    this.#bodyOut = out;
    return stream.pipe(out);
  }

  /**
   * The body as {@link body} streams it (resumed after a cut, limited by `maxBodySize`), without
   * the stream that turns its failures into dogged's taxonomy: for a reader that passes a
   * failure through {@link bodyError} itself (the batch runner), one stream less per response.
   * @internal
   */
  bodyStream(): Readable {
    if (this.#bodyOut) return this.#bodyOut;
    const stream = this.#bodyStream();
    this.#bodyOut = stream;
    return stream;
  }

  #bodyStream(): Readable {
    this.#used = true;
    this.#deadline?.streamed();
    const raw = this.#raw.body;
    const stream =
      !this.#retryBody || !this.#resumeValidators()
        ? raw
        : resumingStream(raw, async (error, delivered) => {
            const next = await this.#continueAfterCut(error, delivered);
            // The continuation is read as a stream too.
            next.#deadline?.streamed();
            return next.status === 206 ? next.#raw.body : skipping(next.#raw.body, delivered);
          });
    // Decoded after the resume: a Range continues the encoded bytes, and the decoder sees one
    // unbroken compressed stream.
    const codings = this.#codings;
    const decoded = codings ? decodedStream(stream, codings, this.#owner()) : stream;
    const limit = this.#maxBodySize;
    if (limit === undefined || !Number.isFinite(limit)) return decoded;
    if (codings)
      return limitedStream(decoded, limit, (received) =>
        bodyTooLarge(this.#owner(), limit, received, undefined),
      );
    const tooLarge = this.#announcedTooLarge(limit);
    if (tooLarge) {
      stream.on('error', ignoreError).destroy();
      const failed = new Readable({ read() {} });
      process.nextTick(() => failed.destroy(tooLarge));
      return failed;
    }
    return limitedStream(stream, limit - this.#offset, (received) =>
      this.#tooLarge(limit, received),
    );
  }

  /** True once the body has been read or handed out. */
  get bodyUsed(): boolean {
    return this.#used;
  }

  /**
   * The body as a Buffer. A cut or stalled body on a replay-safe request is retried within the
   * request's policy: resumed from where it stopped when the server supports ranges, else
   * fetched again from byte 0 with the partial bytes discarded. A body over `maxBodySize`
   * (default 100 MiB) fails with `BodyTooLargeError` before it is read when its Content-Length
   * says so, else as soon as the bytes pass the limit; it is never retried.
   */
  bytes(): Promise<Buffer> {
    return this.#read(same);
  }

  /**
   * The body read whole, as `as` makes it of the bytes. Not async: the common read is the
   * collection's promise and one reaction, without async frames around it (text() and json()
   * too); a failure is still a rejection, never a throw.
   */
  #read<T>(as: (data: Buffer) => T): Promise<T> {
    try {
      if (this.#buffered) return Promise.resolve(as(this.#buffered));
      if (this.#used)
        throw new TypeError(`the body of ${this.method} ${this.url} was already read`);
      this.#used = true;
      const limit = this.#maxBodySize ?? DEFAULT_MAX_BODY_SIZE;
      if (this.#codings) return this.#decodedBytes(this.#codings, limit, as);
      const tooLarge = this.#announcedTooLarge(limit);
      if (tooLarge) {
        this.#raw.body.on('error', ignoreError).destroy();
        throw tooLarge;
      }
      return readWhole(
        this.#raw.body,
        limit - this.#offset,
        (received) => this.#tooLarge(limit, received),
        (data) => {
          this.#buffered = data;
          return as(data);
        },
        (error, partial) => this.#afterFailedRead(error, partial).then(as),
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Reading the body failed after `partial` arrived: retried within the policy, or thrown. */
  async #afterFailedRead(error: unknown, partial: Buffer[]): Promise<Buffer> {
    // A body over the limit would be as large on the next attempt: never retried.
    if (error instanceof BodyTooLargeError) throw error;
    this.#buffered = await this.#recover(error, partial);
    return this.#buffered;
  }

  /**
   * An encoded body read whole, decoded, `limit` counting decoded bytes. A cut or a body that
   * does not decode is fetched again whole (not resumed: the decoded bytes read so far do not
   * say where the encoded ones stopped), within the request's policy. Not async: a small body
   * decoded in one call is one reaction on the read, as a body that is not encoded.
   */
  #decodedBytes<T>(codings: Coding[], limit: number, as: (data: Buffer) => T): Promise<T> {
    const owner = this.#owner();
    return decodeWholeBody(
      this.#raw.body,
      codings,
      owner,
      limit,
      (decoded) =>
        collect(decoded, limit, (received) => bodyTooLarge(owner, limit, received, undefined)),
      (data) => {
        this.#buffered = data;
        return as(data);
      },
      (error) => this.#afterFailedDecode(error).then(as),
    );
  }

  /** Reading an encoded body failed: fetched again whole within the policy, or thrown. */
  async #afterFailedDecode(error: unknown): Promise<Buffer> {
    if (error instanceof BodyTooLargeError || !this.#retryBody) throw this.#bodyError(error);
    const next = await this.#continueAfterCut(error, 0, true);
    this.#buffered = await next.bytes();
    this.#attempts = next.#attempts;
    this.#history = next.#history;
    this.#raw = next.#raw;
    this.#codings = next.#codings;
    this.#headers = undefined;
    return this.#buffered;
  }

  /** The error when the Content-Length alone is over `limit`, else undefined. */
  #announcedTooLarge(limit: number): BodyTooLargeError | undefined {
    const declared = contentLengthOf(this.#raw.headers);
    if (declared === undefined || this.#offset + declared <= limit) return undefined;
    return bodyTooLarge(this.#owner(), limit, 0, this.#offset + declared);
  }

  /** The error when `received` bytes of this part passed `limit`. */
  #tooLarge(limit: number, received: number): BodyTooLargeError {
    const declared = contentLengthOf(this.#raw.headers);
    return bodyTooLarge(
      this.#owner(),
      limit,
      this.#offset + received,
      declared === undefined ? undefined : this.#offset + declared,
    );
  }

  #owner(): { method: string; url: string; attempts: number } {
    return { method: this.method, url: this.url, attempts: this.#attempts };
  }

  /** A buffered read failed after `partial` arrived: resume, restart, or throw. */
  async #recover(error: unknown, partial: Buffer[]): Promise<Buffer> {
    if (!this.#retryBody) throw this.#bodyError(error);
    const delivered = byteLength(partial);
    const next = await this.#continueAfterCut(error, delivered, true);
    const rest = await next.bytes();
    this.#attempts = next.#attempts;
    this.#history = next.#history;
    if (next.status === 206) return Buffer.concat([...partial, rest]);
    // Restarted from byte 0: this response now stands for the attempt that delivered the body.
    this.#raw = next.#raw;
    this.#headers = undefined;
    return rest;
  }

  /**
   * After a cut at `delivered` bytes: the response that carries on — a 206 starting exactly at
   * `delivered`, or (when the server ignored the Range, or `restartAllowed` and the bytes
   * changed) a full 200 from byte 0.
   */
  async #continueAfterCut(
    error: unknown,
    delivered: number,
    restartAllowed = false,
  ): Promise<DoggedResponse> {
    const retry = this.#retryBody as BodyRetry;
    const v = this.#resumeValidators();
    const start = this.#offset + delivered;
    const resume: ResumeFrom | undefined =
      v?.ranges && delivered > 0
        ? { start, ...(v.etag ? { etag: v.etag } : { lastModified: v.lastModified as string }) }
        : undefined;
    let next = await retry.retryBody(error, resume);
    if (resume && next.status === 206) {
      const at = contentRangeStart(next.headers.get('content-range'));
      if (at !== start) {
        await next.drain();
        throw new IncompleteBodyError(
          `a resumed download of ${this.url} started at byte ${at ?? '?'} instead of ${start}`,
          {
            method: this.method,
            url: this.url,
            attempts: next.#attempts,
            received: start,
          },
        );
      }
      next.#validators = v ?? null;
      return next;
    }
    if (resume && next.status === 412) {
      // The resource changed since the cut: the bytes already read belong to another version.
      await next.drain();
      const changed = new IncompleteBodyError(
        `${this.url} changed while it was being downloaded (412 on If-Match)`,
        {
          method: this.method,
          url: this.url,
          attempts: next.#attempts,
        },
      );
      if (!restartAllowed) throw changed;
      next = await (next.#retryBody as BodyRetry).retryBody(changed);
    }
    if (delivered > 0 && this.#offset === 0 && !restartAllowed) {
      // A stream that restarts at 0 must be the same bytes to skip what was delivered.
      const same =
        v?.etag !== undefined
          ? next.headers.get('etag') === v.etag
          : next.headers.get('last-modified') === v?.lastModified;
      if (!v || next.status !== 200 || !same) {
        await next.drain();
        throw new IncompleteBodyError(
          `${this.url} could not be resumed after ${delivered} bytes: the server did not send the same bytes again`,
          {
            method: this.method,
            url: this.url,
            attempts: next.#attempts,
            received: delivered,
          },
        );
      }
    }
    return next;
  }

  /** The body as UTF-8 text. */
  text(): Promise<string> {
    return this.#read(utf8);
  }

  /** The body parsed as JSON. */
  json<T = unknown>(): Promise<T> {
    return this.#read((data) => {
      const text = utf8(data);
      try {
        return JSON.parse(text) as T;
      } catch (error) {
        throw new SyntaxError(
          `${this.method} ${this.url} answered ${this.status} with a body that is not JSON: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
    });
  }

  /** The body as an ArrayBuffer. */
  arrayBuffer(): Promise<ArrayBuffer> {
    return this.#read(toArrayBuffer);
  }

  /**
   * Throws `HTTPStatusError` for a status of 400 or more (requests' `raise_for_status()`);
   * returns the response otherwise, for chaining.
   * @example const data = await (await session.get(url)).raiseForStatus().json();
   */
  raiseForStatus(): this {
    if (this.status >= 400) {
      throw new HTTPStatusError(
        `${this.method} ${this.url} answered ${describeStatus(this.status)}`,
        {
          status: this.status,
          response: this,
          method: this.method,
          url: this.url,
          attempts: this.#attempts,
        },
      );
    }
    return this;
  }

  /**
   * Reads up to `limit` bytes and keeps them (so an error can still show the body), within
   * `timeoutMs`; a larger or slower body is discarded and its connection closed.
   * @internal
   */
  async drain(limit = DRAIN_LIMIT_BYTES, timeoutMs = DRAIN_TIMEOUT_MS): Promise<void> {
    if (this.#used) return;
    this.#used = true;
    const body = this.#raw.body;
    const declared = Number(this.#raw.headers['content-length']);
    // Destroying an unfinished body makes undici emit an abort error; with no listener left it
    // would be an uncaught exception.
    body.on('error', ignoreError);
    if (Number.isFinite(declared) && declared > limit) {
      body.destroy();
      this.#buffered = Buffer.alloc(0);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => finish(true), timeoutMs);
      const finish = (destroy: boolean): void => {
        clearTimeout(timer);
        body.off('data', onData);
        body.off('end', onEnd);
        body.off('error', onError);
        if (destroy) body.destroy();
        resolve();
      };
      const onData = (chunk: Buffer): void => {
        size += chunk.length;
        if (size > limit) finish(true);
        else chunks.push(chunk);
      };
      const onEnd = (): void => finish(false);
      const onError = (): void => finish(true);
      body.on('data', onData).on('end', onEnd).on('error', onError);
    });
    const data = Buffer.concat(chunks);
    // A drained error body is kept to be shown: decoded when it is small enough to.
    this.#buffered =
      this.#codings && size <= limit ? decodeSmall(data, this.#codings, limit) : data;
  }

  /**
   * A failure met while reading {@link body} (a stream), in dogged's taxonomy: a cut body is an
   * `IncompleteBodyError`, a stall a `ReadTimeoutError`; dogged's own errors and anything that
   * is not a network failure (an abort too) come back as they are.
   * @internal
   */
  bodyError(error: unknown): unknown {
    return this.#bodyError(error);
  }

  /** Turns a body-phase failure into dogged's taxonomy. */
  #bodyError(error: unknown): unknown {
    const classified = classifyError(error, {
      method: this.method,
      url: this.url,
      phase: 'body',
      attempts: this.#attempts,
    });
    if (classified instanceof DoggedError) classified.attempts = this.#attempts;
    return classified ?? error;
  }
}
