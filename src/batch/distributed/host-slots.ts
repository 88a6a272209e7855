import type { Redis } from 'ioredis';

/** A worker's lease of a host's slots ends this long after its last renewal (a dead worker's). */
export const LEASE_MS = 3000;
/** How often a worker renews the slots it holds. */
const RENEW_MS = 1000;
/** How often a worker renews while others wait (so that its slots beyond a fair share go back). */
const CONTENDED_RENEW_MS = 100;
/** How often a worker that wants more slots than it holds asks again. */
const ASK_MS = 50;

/**
 * Leases a worker some of a host's slots, fleet-wide (one call per renewal, not per request).
 *
 * KEYS[1]: hash worker -> "granted:expiresAt"; KEYS[2]: hash worker -> "need:at".
 * ARGV: now, worker, want, floor, perHost, leaseMs, need (the slots it uses or waits for now;
 * `want` may add headroom).
 *
 * The worker gets what it wants of the slots no other live lease holds, at most a fair share
 * (`perHost` split between the workers that want some) while others wait for slots, and never
 * less than `floor`: what it may be using until the answer comes (granted before, and counted).
 * Since a worker never uses more than it was granted, the grants of all workers never add up to
 * more than `perHost`. Returns { granted, others waiting }.
 */
const LEASE_SCRIPT = `
local now = tonumber(ARGV[1])
local me = ARGV[2]
local want = tonumber(ARGV[3])
local floor = tonumber(ARGV[4])
local perHost = tonumber(ARGV[5])
local leaseMs = tonumber(ARGV[6])
local heldByOthers = 0
local held = {}
local leases = redis.call('HGETALL', KEYS[1])
for i = 1, #leases, 2 do
  local who = leases[i]
  local n, exp = string.match(leases[i + 1], '^(%d+):([%d.]+)$')
  n = tonumber(n); exp = tonumber(exp)
  if exp == nil or exp < now then
    redis.call('HDEL', KEYS[1], who)
  elseif who ~= me then
    heldByOthers = heldByOthers + n
    held[who] = n
  end
end
local wanting = 1
local waiting = 0
local wants = redis.call('HGETALL', KEYS[2])
for i = 1, #wants, 2 do
  local who = wants[i]
  local w, at = string.match(wants[i + 1], '^(%d+):([%d.]+)$')
  w = tonumber(w); at = tonumber(at)
  if at == nil or at < now - leaseMs then
    redis.call('HDEL', KEYS[2], who)
  elseif who ~= me and w > 0 then
    wanting = wanting + 1
    if w > (held[who] or 0) then waiting = waiting + 1 end
  end
end
local granted = math.min(want, math.max(0, perHost - heldByOthers))
if waiting > 0 then granted = math.min(granted, math.ceil(perHost / wanting)) end
granted = math.max(granted, floor)
if granted > 0 then
  redis.call('HSET', KEYS[1], me, granted .. ':' .. (now + leaseMs))
else
  redis.call('HDEL', KEYS[1], me)
end
local need = tonumber(ARGV[7])
if need > 0 then
  redis.call('HSET', KEYS[2], me, need .. ':' .. now)
else
  redis.call('HDEL', KEYS[2], me)
end
redis.call('PEXPIRE', KEYS[1], leaseMs * 2)
redis.call('PEXPIRE', KEYS[2], leaseMs * 2)
return {granted, waiting}
`;

interface HostLease {
  granted: number;
  /** While a call that may shrink the grant is under way: what may be in use meanwhile. */
  limit: number | undefined;
  inUse: number;
  /** Admissions waiting for a slot, in arrival order. */
  readonly waiters: (() => void)[];
  /** The call to Redis under way, if any. */
  asking: Promise<void> | undefined;
  timer: NodeJS.Timeout | undefined;
  /** When `timer` fires (epoch ms). */
  timerAt: number;
  /** Whether other workers wait for this host's slots (as of the last call). */
  contended: boolean;
  /** When a call last granted less than this worker used (asked again no sooner than ASK_MS). */
  shortAt: number;
}

/** The slots of a lease that may be in use now. */
function capOf(lease: HostLease): number {
  return lease.limit ?? lease.granted;
}

/**
 * A worker's share of each host's fleet-wide concurrency (`perHost` requests in flight, all
 * workers together): slots are leased from Redis a few at a time and handed out locally, so a
 * request costs no round trip. A lease lives {@link LEASE_MS} past its last renewal: the slots of
 * a worker that died are free again within seconds.
 */
export class HostSlots {
  readonly #redis: Redis;
  readonly #prefix: { readonly leases: string; readonly wants: string };
  readonly #perHost: number;
  /** The most slots of a host this worker can use: its own concurrency (at most `perHost`). */
  readonly #most: number;
  readonly #worker: string;
  readonly #hosts = new Map<string, HostLease>();
  #closed = false;

  constructor(
    redis: Redis,
    prefix: { readonly leases: string; readonly wants: string },
    perHost: number,
    worker: string,
    workerConcurrency: number = Number.POSITIVE_INFINITY,
  ) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#perHost = perHost;
    this.#most = Math.max(1, Math.min(perHost, workerConcurrency));
    this.#worker = worker;
  }

  #lease(host: string): HostLease {
    let lease = this.#hosts.get(host);
    if (!lease) {
      lease = {
        granted: 0,
        limit: undefined,
        inUse: 0,
        waiters: [],
        asking: undefined,
        timer: undefined,
        timerAt: 0,
        contended: false,
        shortAt: Number.NEGATIVE_INFINITY,
      };
      this.#hosts.set(host, lease);
    }
    return lease;
  }

  /** Takes a slot of `host` if this worker holds a free one now (no waiting, no Redis). */
  tryAcquire(host: string): boolean {
    const lease = this.#hosts.get(host);
    if (!lease || lease.inUse >= capOf(lease) || lease.waiters.length) return false;
    lease.inUse++;
    return true;
  }

  /**
   * Takes a slot of `host` now if this worker holds a free one; else waits for one (asking Redis
   * for more) until `deadline`. False when none came in time (or `signal` aborted).
   */
  async acquire(host: string, deadline: number, signal?: AbortSignal): Promise<boolean> {
    const lease = this.#lease(host);
    if (lease.inUse < capOf(lease) && lease.waiters.length === 0) {
      lease.inUse++;
      return true;
    }
    return new Promise<boolean>((resolve) => {
      let settled = false;
      const finish = (ok: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        signal?.removeEventListener('abort', onAbort);
        const at = lease.waiters.indexOf(waiter);
        if (at >= 0) lease.waiters.splice(at, 1);
        resolve(ok);
      };
      const waiter = (): void => finish(true);
      const onAbort = (): void => finish(false);
      const timeout = setTimeout(() => finish(false), Math.max(0, deadline - Date.now()));
      signal?.addEventListener('abort', onAbort, { once: true });
      lease.waiters.push(waiter);
      // Ask the fleet for more only when this worker may hold more; else a release hands out.
      // Refused a moment ago: asked again on the ASK_MS schedule, not once per new waiter.
      if (this.#wants(lease) > lease.granted)
        this.#schedule(host, lease, Math.max(0, lease.shortAt + ASK_MS - Date.now()));
    });
  }

  /** Gives a slot of `host` back (to a local waiter first). */
  release(host: string): void {
    const lease = this.#hosts.get(host);
    if (!lease) return;
    lease.inUse = Math.max(0, lease.inUse - 1);
    this.#handOut(lease);
    // Others wait for this host: give back what this worker no longer needs, soon.
    if (lease.contended && lease.inUse + lease.waiters.length < lease.granted)
      this.#schedule(host, lease, CONTENDED_RENEW_MS);
  }

  /** Local waiters take the free slots of the lease. */
  #handOut(lease: HostLease): void {
    while (lease.inUse < capOf(lease) && lease.waiters.length) {
      const waiter = lease.waiters.shift() as () => void;
      lease.inUse++;
      waiter();
    }
  }

  /** Asks Redis (now or after `delayMs`) for the slots this worker wants of `host`. */
  #schedule(host: string, lease: HostLease, delayMs: number): void {
    if (this.#closed) return;
    if (delayMs === 0) {
      if (lease.timer) clearTimeout(lease.timer);
      lease.timer = undefined;
      if (lease.asking) return;
      // Every admission of this tick counts in one request.
      lease.asking = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => this.#ask(host, lease))
        .catch(() => {})
        .finally(() => {
          lease.asking = undefined;
          this.#next(host, lease);
        });
      return;
    }
    if (lease.asking) return;
    // A call already due sooner stands; a later one (a renewal) gives way to this one.
    const at = Date.now() + delayMs;
    if (lease.timer) {
      if (lease.timerAt <= at) return;
      clearTimeout(lease.timer);
    }
    lease.timerAt = at;
    lease.timer = setTimeout(() => {
      lease.timer = undefined;
      this.#schedule(host, lease, 0);
    }, delayMs);
    lease.timer.unref();
  }

  /** What comes after a call: ask again soon while short of slots, renew while holding some. */
  #next(host: string, lease: HostLease): void {
    if (this.#closed) return;
    if (lease.waiters.length > 0 && this.#wants(lease) > lease.granted)
      this.#schedule(host, lease, ASK_MS * (0.5 + Math.random()));
    else if (lease.granted > 0)
      this.#schedule(host, lease, lease.contended ? CONTENDED_RENEW_MS : RENEW_MS);
    else this.#hosts.delete(host);
  }

  /** The slots this worker could use now (in flight and waiting), at most what it can use. */
  #wants(lease: HostLease): number {
    return Math.min(this.#most, lease.inUse + lease.waiters.length);
  }

  async #ask(host: string, lease: HostLease): Promise<void> {
    // Headroom: asking for twice the use now (and keeping what it holds) saves a call each time
    // the use grows by one, never beyond what this worker can use (its concurrency: more would
    // only keep the slots from the others); while others wait, only the use now; once idle,
    // nothing.
    const use = this.#wants(lease);
    const want =
      use === 0
        ? 0
        : lease.contended
          ? use
          : Math.min(this.#most, Math.max(lease.granted, 2 * use));
    // Keeping the whole grant: nothing changes meanwhile. Else (giving some back, or letting the
    // fleet take a fair share) no slot is taken until the answer, which may grant less.
    const keep = want >= lease.granted && !lease.contended && use > 0;
    const floor = keep ? lease.granted : lease.inUse;
    if (!keep) lease.limit = floor;
    const [granted, waiting] = (await this.#redis
      .eval(
        LEASE_SCRIPT,
        2,
        `${this.#prefix.leases}:${host}`,
        `${this.#prefix.wants}:${host}`,
        Date.now(),
        this.#worker,
        want,
        floor,
        this.#perHost,
        LEASE_MS,
        use,
      )
      .finally(() => {
        lease.limit = undefined;
      })) as [number, number];
    lease.granted = granted;
    lease.contended = waiting > 0;
    if (granted < use) lease.shortAt = Date.now();
    this.#handOut(lease);
  }

  /** Gives every lease back (this worker stops). */
  async close(): Promise<void> {
    this.#closed = true;
    const pipeline = this.#redis.pipeline();
    for (const [host, lease] of this.#hosts) {
      if (lease.timer) clearTimeout(lease.timer);
      pipeline.hdel(`${this.#prefix.leases}:${host}`, this.#worker);
      pipeline.hdel(`${this.#prefix.wants}:${host}`, this.#worker);
    }
    this.#hosts.clear();
    await pipeline.exec().catch(() => {});
  }
}
