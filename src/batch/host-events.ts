import { channel } from 'node:diagnostics_channel';

/**
 * What a batch knows of one host at a moment: published for metrics (`--metrics`) on
 * {@link hostsChannel}, never computed when nobody listens.
 */
export interface HostSnapshot {
  /** `host:port`. */
  readonly host: string;
  /** How long the host stays paused (a Retry-After, a throttle, an outage probe), ms; 0: not. */
  readonly pausedMs: number;
  /** Request starts per second the host is paced at; undefined when it is not paced. */
  readonly ratePerSecond: number | undefined;
  /**
   * The host is in an outage (20 failures in a row): one request at a time probes it, as a
   * circuit breaker half open; its lines wait without spending retries.
   */
  readonly down: boolean;
}

/** A snapshot of a batch's hosts (`job` for a distributed job). */
export interface HostsMessage {
  readonly job: string | undefined;
  readonly hosts: readonly HostSnapshot[];
}

/** Why a distributed line was held by its host instead of starting. */
export type HeldReason = 'cooldown' | 'busy' | 'rate' | 'budget';

/** A distributed line held back by its host (a pause, its slots, its pace, the retry budget). */
export interface HeldMessage {
  readonly job: string;
  readonly host: string;
  readonly reason: HeldReason;
}

/** Each progress report of a batch or worker publishes its hosts here (with a subscriber). */
export const hostsChannel = channel('dogged:batch:hosts');
/** Each line a worker's host held back (with a subscriber). */
export const heldChannel = channel('dogged:batch:held');
