import type { Readable } from 'node:stream';
import { formatDuration } from '../retry/describe.js';
import { type LongTimer, setLongTimeout } from '../retry/timer.js';
import type { AttemptSignal } from './connect-abort.js';
import { AttemptTimeoutError } from './errors.js';
import { BUFFERED_ATTEMPT_TIMEOUT_MS } from './timeouts.js';

/** What the attempt deadline's error names. */
export interface AttemptTarget {
  readonly method: string;
  readonly url: string;
  readonly attempt: number;
}

/**
 * The running deadlines of one length, in the order they fall due (they were armed in that
 * order), behind one timer: armed for the oldest, it moves on to the next when it fires. A
 * deadline that ends leaves the queue; the timer stops when none is left. One timer for all the
 * attempts in flight, instead of one armed and cleared per attempt.
 *
 * The queue is a list threaded through the deadlines themselves (`queuePrev`, `queueNext`): an
 * attempt joins and leaves it by setting a few fields. A `Set` of the deadlines in flight cost a
 * default Session request 1.1–3.0 µs of CPU more (bench/http-overhead.ts's sample processes,
 * alternating), for an insertion and a deletion per attempt.
 */
class DeadlineQueue {
  #head: AttemptDeadline | undefined;
  #tail: AttemptDeadline | undefined;
  #timer: LongTimer | undefined;
  /** The deadline the timer was armed for: due when it fires, whatever the clock says. */
  #armedFor: AttemptDeadline | undefined;

  add(deadline: AttemptDeadline): void {
    const tail = this.#tail;
    deadline.queuePrev = tail;
    deadline.queueNext = undefined;
    if (tail) tail.queueNext = deadline;
    else this.#head = deadline;
    this.#tail = deadline;
    if (!this.#timer) this.#arm(deadline);
  }

  delete(deadline: AttemptDeadline): void {
    const { queuePrev: prev, queueNext: next } = deadline;
    if (prev) prev.queueNext = next;
    else if (this.#head === deadline) this.#head = next;
    else return;
    if (next) next.queuePrev = prev;
    else this.#tail = prev;
    deadline.queuePrev = undefined;
    deadline.queueNext = undefined;
    if (this.#head === undefined && this.#timer) {
      this.#timer.clear();
      this.#timer = undefined;
      this.#armedFor = undefined;
    }
  }

  #arm(head: AttemptDeadline): void {
    this.#armedFor = head;
    this.#timer = setLongTimeout(() => this.#fire(), head.due - performance.now()).unref();
  }

  #fire(): void {
    this.#timer = undefined;
    const armedFor = this.#armedFor;
    this.#armedFor = undefined;
    const now = performance.now();
    for (let deadline = this.#head; deadline; deadline = this.#head) {
      if (deadline !== armedFor && deadline.due > now) {
        this.#arm(deadline);
        return;
      }
      this.delete(deadline);
      deadline.expire();
    }
  }
}

/** One queue per deadline length (every attempt of a given `timeout.attempt` shares one). */
const queues = new Map<number, DeadlineQueue>();

function queueFor(ms: number): DeadlineQueue {
  let queue = queues.get(ms);
  if (!queue) {
    queue = new DeadlineQueue();
    queues.set(ms, queue);
  }
  return queue;
}

type Listener = (reason: unknown) => void;

/**
 * The attempts in flight under one parent signal, behind one listener on it: a list threaded
 * through the deadlines (`parentPrev`, `parentNext`), as {@link DeadlineQueue}'s is.
 */
interface Followers {
  head: AttemptDeadline | undefined;
  readonly listener: () => void;
}

/**
 * The followers of each parent signal (the caller's, or the total deadline's). One `abort`
 * listener per parent while any attempt under it is in flight, instead of one added and removed
 * per attempt: a signal shared by many requests (a batch's, an application's shutdown) costs a
 * set insertion per attempt; the listener goes when the last attempt under it ends, so a parent
 * that outlives its requests (an `AbortSignal.timeout()`) is not held by dogged.
 */
const followers = new WeakMap<AbortSignal, Followers>();

function follow(parent: AbortSignal, deadline: AttemptDeadline): void {
  let entry = followers.get(parent);
  if (!entry) {
    const created: Followers = {
      head: undefined,
      listener: () => {
        followers.delete(parent);
        const all: AttemptDeadline[] = [];
        for (let d = created.head; d; d = d.parentNext) all.push(d);
        created.head = undefined;
        for (const d of all) {
          d.parentPrev = undefined;
          d.parentNext = undefined;
          d.parentAborted(parent.reason);
        }
      },
    };
    entry = created;
    followers.set(parent, entry);
    parent.addEventListener('abort', entry.listener, { once: true });
  }
  const head = entry.head;
  deadline.parentPrev = undefined;
  deadline.parentNext = head;
  if (head) head.parentPrev = deadline;
  entry.head = deadline;
}

function unfollow(parent: AbortSignal, deadline: AttemptDeadline): void {
  const entry = followers.get(parent);
  if (!entry) return;
  const { parentPrev: prev, parentNext: next } = deadline;
  if (prev) prev.parentNext = next;
  else if (entry.head === deadline) entry.head = next;
  else return;
  if (next) next.parentPrev = prev;
  deadline.parentPrev = undefined;
  deadline.parentNext = undefined;
  if (entry.head !== undefined) return;
  followers.delete(parent);
  parent.removeEventListener('abort', entry.listener);
}

const noListeners: readonly Listener[] = Object.freeze([]);

/**
 * What an attempt's first listener list is copied from: empty, and never changed. Not
 * `noListeners`: slicing a frozen array leaves V8's fast path (about 95 ns a copy against 20).
 */
const LIST_TEMPLATE: Listener[] = [];

/** The deadline a response body runs under, until it closes (see {@link AttemptDeadline.headArrived}). */
const BODY_DEADLINE = Symbol('dogged.attemptDeadline');

type DeadlineBody = Readable & { [BODY_DEADLINE]?: AttemptDeadline };

/** A body's `close` listener: its attempt is over. */
function endBodyDeadline(this: DeadlineBody): void {
  this[BODY_DEADLINE]?.end();
}

/**
 * The signal and the deadline of one attempt (`timeout.attempt`): from the moment it is sent
 * until its body has been read, drained or destroyed. When the deadline passes, the attempt's
 * signal aborts with an {@link AttemptTimeoutError}: undici then fails the pending request, or
 * destroys the body being read with that error.
 *
 * Without an explicit `timeout.attempt`, the deadline is {@link BUFFERED_ATTEMPT_TIMEOUT_MS} and
 * soft: a body handed out as a stream drops it (a long download is the caller's to bound).
 *
 * The object is its own signal: undici takes anything with `addEventListener` as a request's
 * signal, and this one costs far less than an `AbortController` per attempt. It aborts with the
 * caller's reason (or the total deadline's) when `parent` aborts, until the attempt is over.
 */
export class AttemptDeadline implements AttemptSignal {
  aborted = false;
  reason: unknown;
  /** A connection opened for this attempt is tied to it (see connect-abort.ts). */
  claimed = false;
  /** When the deadline falls due (`performance.now()` time); Infinity when there is none. */
  readonly due: number;
  /** Its neighbours in its queue (see DeadlineQueue). */
  queuePrev: AttemptDeadline | undefined = undefined;
  queueNext: AttemptDeadline | undefined = undefined;
  /** Its neighbours among the attempts under its parent signal (see `follow`). */
  parentPrev: AttemptDeadline | undefined = undefined;
  parentNext: AttemptDeadline | undefined = undefined;
  #listeners: Listener[] | readonly Listener[] = noListeners;
  #parent: AbortSignal | undefined;
  readonly #ms: number;
  readonly #soft: boolean;
  readonly #method: string;
  readonly #url: string;
  readonly #attempt: number;
  #queue: DeadlineQueue | undefined;
  #headArrived = false;

  constructor(
    parent: AbortSignal | undefined,
    attemptMs: number | undefined,
    target: AttemptTarget,
  ) {
    this.#method = target.method;
    this.#url = target.url;
    this.#attempt = target.attempt;
    this.#soft = attemptMs === undefined;
    const ms = attemptMs ?? BUFFERED_ATTEMPT_TIMEOUT_MS;
    this.#ms = ms;
    this.due = performance.now() + ms;
    if (parent) {
      if (parent.aborted) {
        this.aborted = true;
        this.reason = parent.reason;
        return;
      }
      this.#parent = parent;
      follow(parent, this);
    }
    if (!Number.isFinite(ms)) return;
    this.#queue = queueFor(ms);
    this.#queue.add(this);
  }

  /** This object: the attempt's signal (for undici, and for whoever waits on the attempt). */
  get signal(): this {
    return this;
  }

  /** `listener` runs once, with the reason, when the attempt aborts. */
  addEventListener(_type: 'abort', listener: Listener): void {
    if (this.aborted) return;
    if (this.#listeners === noListeners) {
      // Not an array literal (`[listener]`): V8 tracks a literal's allocation site, and with
      // this one (an array per attempt, alive until the attempt ends) most processes fell into
      // a mode where every scavenge promoted megabytes and full collections came ten times as
      // often: a Session request cost 42–51 µs of CPU instead of 31–37 (bench/http-overhead.ts
      // with BENCH_PROCESSES=1; gone with node --no-allocation-site-pretenuring too).
      const list = LIST_TEMPLATE.slice();
      list.push(listener);
      this.#listeners = list;
    } else (this.#listeners as Listener[]).push(listener);
  }

  removeEventListener(_type: 'abort', listener: Listener): void {
    const listeners = this.#listeners;
    // Most often the last one added (undici's, then requestWithin's).
    const last = listeners.length - 1;
    if (last >= 0 && listeners[last] === listener) (listeners as Listener[]).pop();
    else {
      const at = listeners.indexOf(listener);
      if (at >= 0) (listeners as Listener[]).splice(at, 1);
    }
  }

  /** Fails the request or the body being read with `reason`; every listener runs once, with it. */
  #abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.#stopTimer();
    this.#detach();
    const listeners = this.#listeners;
    this.#listeners = noListeners;
    for (const listener of listeners) listener(reason);
  }

  /** The parent signal aborted (called by its followers' listener). */
  parentAborted(reason: unknown): void {
    this.#abort(reason);
  }

  /** The deadline passed (called by its queue). */
  expire(): void {
    this.#queue = undefined;
    const ms = this.#ms;
    const phase = this.#headArrived ? 'body' : 'headers';
    this.#abort(
      new AttemptTimeoutError(
        `${this.#method} ${this.#url}: attempt ${this.#attempt} was still ${phase === 'body' ? 'reading the body' : 'waiting for the response'} after ${formatDuration(ms)}, its deadline (timeout.attempt${this.#soft ? ', the default for a body read whole' : ''})`,
        {
          method: this.#method,
          url: this.#url,
          attempts: this.#attempt,
          phase,
          timeoutMs: ms,
        },
      ),
    );
  }

  /** The response head arrived: the deadline now runs until `body` closes. */
  headArrived(body: Readable): void {
    this.#headArrived = true;
    if (!this.#queue && !this.#parent) return;
    if (body.closed || body.destroyed) this.end();
    else {
      // One listener function for every body, not a closure per attempt: the body names its
      // deadline.
      (body as DeadlineBody)[BODY_DEADLINE] = this;
      body.on('close', endBodyDeadline);
    }
  }

  /** The body is handed out as a stream: a default (soft) deadline no longer applies. */
  streamed(): void {
    if (this.#soft) this.#stopTimer();
  }

  /** The attempt is over: it failed, or its body was read, drained or destroyed. */
  end(): void {
    this.#stopTimer();
    this.#detach();
  }

  #stopTimer(): void {
    this.#queue?.delete(this);
    this.#queue = undefined;
  }

  #detach(): void {
    if (this.#parent) unfollow(this.#parent, this);
    this.#parent = undefined;
  }
}
