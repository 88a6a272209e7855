import { DoggedError, type DoggedErrorOptions } from '../../http/errors.js';
import { brand } from '../../retry/brand.js';

/** Redis (the queue of a distributed batch) cannot be reached. */
export class QueueUnavailableError extends DoggedError {
  override name = 'QueueUnavailableError';
  override readonly code: string = 'ERR_DOGGED_QUEUE_UNAVAILABLE';
  override readonly retriable: boolean = true;
  /** The queue's URL, credentials shown as `***@`. */
  readonly where: string;
  constructor(where: string, reason: string, options: DoggedErrorOptions = {}) {
    super(
      `cannot reach Redis (--queue) at ${where}: ${reason}. Start Redis or fix --queue (see docs/scaling-out.md).`,
      { phase: 'none', ...options },
    );
    this.where = where;
  }
}
brand(QueueUnavailableError, 'QueueUnavailableError');

/** PostgreSQL (the store of a distributed batch) cannot be reached. */
export class StoreUnavailableError extends DoggedError {
  override name = 'StoreUnavailableError';
  override readonly code: string = 'ERR_DOGGED_STORE_UNAVAILABLE';
  override readonly retriable: boolean = true;
  /** The store's URL, credentials shown as `***@`. */
  readonly where: string;
  constructor(where: string, reason: string, options: DoggedErrorOptions = {}) {
    super(
      `cannot reach PostgreSQL (--store) at ${where}: ${reason}. Start PostgreSQL or fix --store (see docs/scaling-out.md).`,
      { phase: 'none', ...options },
    );
    this.where = where;
  }
}
brand(StoreUnavailableError, 'StoreUnavailableError');

/** The job name is unknown to the queue or the store (nothing was ever enqueued under it). */
export class UnknownJobError extends DoggedError {
  override name = 'UnknownJobError';
  override readonly code: string = 'ERR_DOGGED_UNKNOWN_JOB';
  readonly job: string;
  constructor(job: string, where: string, options: DoggedErrorOptions = {}) {
    super(
      `no job named ${JSON.stringify(job)} in ${where}; start it with dogged batch INPUT --queue ... --store ... --job ${job}`,
      { phase: 'none', ...options },
    );
    this.job = job;
  }
}
brand(UnknownJobError, 'UnknownJobError');
