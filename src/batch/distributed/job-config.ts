import { RetryPolicy, type RetryPolicyOptions } from '../../http/policy.js';
import type { TimeoutOption } from '../../http/timeouts.js';
import { type RandomSource, seededRandom } from '../../retry/random.js';
import { wait } from '../../retry/wait.js';
import type { HostRate } from '../host-limits.js';
import { batchMaxBodySize } from '../options.js';

/** The backoff styles of a {@link RetrySpec} (as `--jitter`). */
export type RetryJitter = 'full' | 'equal' | 'none' | 'urllib3';

/**
 * A retry policy as plain data, so that every worker of a job, on any machine, applies the same
 * one (a `RetryPolicy` holds functions and cannot travel through Redis).
 */
export interface RetrySpec {
  /**
   * Retries after the first attempt.
   * @default 5
   * @example { total: 8 }
   */
  total?: number;
  /**
   * The backoff style: `full` (uniform 0..exponential), `equal`, `none` (plain exponential) or
   * `urllib3` (0, 2b, 4b, ...).
   * @default 'full'
   * @example { jitter: 'equal' }
   */
  jitter?: RetryJitter;
  /**
   * The first backoff step, ms (the exponential multiplier; urllib3's factor).
   * @default 500
   * @example { backoff: 250 }
   */
  backoff?: number;
  /**
   * The cap of each backoff delay, ms.
   * @default 30000
   * @example { maxBackoff: 10_000 }
   */
  maxBackoff?: number;
  /**
   * Statuses that are retried.
   * @default [408, 429, 500, 502, 503, 504]
   * @example { statusForcelist: [429, 503] }
   */
  statusForcelist?: number[];
}

/** Fleet-wide retry budget of a job (the `RetryBudget` model, counted in Redis). */
export interface FleetBudgetSpec {
  /**
   * Retry tokens each first attempt deposits.
   * @default 0.2
   * @example { percentCanRetry: 0.1 }
   */
  percentCanRetry: number;
  /**
   * Retries always allowed per second of the window (the reserve), per host.
   * @default 10
   * @example { minRetriesPerSecond: 2 }
   */
  minRetriesPerSecond: number;
  /**
   * The window, ms (whole seconds; counted in fixed windows).
   * @default 10000
   * @example { ttlMs: 60_000 }
   */
  ttlMs: number;
}

/**
 * What every worker of a job applies, written to Redis by `dogged batch` and read by each worker:
 * the same policy and the same limits everywhere.
 */
export interface JobConfig {
  readonly version: 1;
  readonly job: string;
  readonly perHost: number;
  /**
   * The pacing of each host: `'adaptive'`, a number (requests per second at most) or `null`
   * (none; what jobs of dogged 0.1 stored when no rate was given).
   */
  readonly rate: number | 'adaptive' | null;
  /** The longest a line may be turned away for rate limiting (absent in jobs of dogged 0.1). */
  readonly giveUpAfter?: number;
  readonly retry: RetrySpec;
  readonly maxRetryAfter: number;
  readonly timeout: TimeoutOption | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly bodies: 'db' | 'none';
  /**
   * The body limit in bytes, `null` for none (absent in jobs of dogged 0.1: the default of
   * `bodies`, as {@link jobMaxBodySize} reads it).
   */
  readonly maxBodySize?: number | null;
  readonly budget: FleetBudgetSpec | false;
  readonly cooldown: boolean;
  /** Lines per BullMQ job (absent in jobs of dogged 0.1, which queued one job per line). */
  readonly chunkSize?: number;
  /** The seed of each line's jitter (absent or null: unseeded). */
  readonly seed?: number | null;
  /** One cookie jar per host, saved in the store (absent: off). */
  readonly cookies?: boolean;
  /** Offer HTTP/2 to https hosts (absent: off). */
  readonly http2?: boolean;
  readonly input: string | null;
  readonly createdAt: string;
}

/** The defaults of a fleet-wide retry budget (Finagle's, as `RetryBudget`). */
export const FLEET_BUDGET_DEFAULTS: FleetBudgetSpec = Object.freeze({
  percentCanRetry: 0.2,
  minRetriesPerSecond: 10,
  ttlMs: 10_000,
});

const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** Throws a `TypeError` unless `name` is a usable job name. */
export function assertJobName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !JOB_NAME.test(name))
    throw new TypeError(
      `a job name must be 1 to 100 letters, digits, '.', '_' or '-' (starting with a letter or digit), got ${JSON.stringify(name)}`,
    );
}

/** The RetryPolicy options a {@link RetrySpec} describes. */
export function policyOptionsFromSpec(spec: RetrySpec): RetryPolicyOptions {
  const multiplier = spec.backoff ?? 500;
  const max = spec.maxBackoff ?? 30_000;
  const jitter = spec.jitter ?? 'full';
  const style: RetryPolicyOptions =
    jitter === 'urllib3'
      ? { backoffFactor: multiplier, backoffMax: max }
      : {
          backoff:
            jitter === 'full'
              ? wait.fullJitter({ multiplier, max })
              : jitter === 'equal'
                ? wait.equalJitter({ multiplier, max })
                : wait.exponential({ multiplier, max }),
        };
  return {
    total: spec.total ?? 5,
    ...style,
    ...(spec.statusForcelist && { statusForcelist: spec.statusForcelist }),
  };
}

/** The RetryPolicy a {@link RetrySpec} describes (its jitter drawn from `random` if given). */
export function policyFromSpec(spec: RetrySpec, random?: RandomSource): RetryPolicy {
  return new RetryPolicy({ ...policyOptionsFromSpec(spec), ...(random && { random }) });
}

/**
 * The jitter of a seeded job: each line's backoff after its attempt n is drawn from a source
 * seeded by (seed, line, n), so a line waits the same whichever worker runs it, in whatever
 * order. {@link LineJitter.at} picks the line and attempt before each decision.
 */
export class LineJitter {
  readonly #seed: number;
  #source: RandomSource;

  constructor(seed: number) {
    this.#seed = seed >>> 0;
    this.#source = seededRandom(this.#seed);
  }

  /** What `random` draws from until the next call: the source of `line` after `attempts`. */
  at(line: number, attempts: number): void {
    let h = Math.imul(this.#seed ^ 0x9e3779b9, 0x85ebca6b);
    h = Math.imul(h ^ (line >>> 0) ^ (h >>> 13), 0xc2b2ae35);
    h = Math.imul(h ^ (attempts >>> 0) ^ (h >>> 16), 0x27d4eb2f);
    this.#source = seededRandom((h ^ (h >>> 15)) >>> 0);
  }

  /** The random source to give the policy. */
  readonly random: RandomSource = () => this.#source();
}

/** Parses a stored config, refusing one written by an incompatible dogged. */
export function parseJobConfig(text: string, job: string): JobConfig {
  const value = JSON.parse(text) as JobConfig;
  if (value.version !== 1)
    throw new TypeError(
      `job ${job} was written by another version of dogged (config v${String(value.version)})`,
    );
  return value;
}

/** The body limit a job's config asks for (undefined: none). */
export function jobMaxBodySize(
  config: Pick<JobConfig, 'maxBodySize' | 'bodies'>,
): number | undefined {
  if (config.maxBodySize === undefined) return batchMaxBodySize('job', undefined, config.bodies);
  return config.maxBodySize ?? undefined;
}

/** Lines per BullMQ job unless the job says otherwise. */
export const CHUNK_SIZE = 250;

/** The lines per BullMQ job of a job's config. */
export function jobChunkSize(config: Pick<JobConfig, 'chunkSize'>): number {
  return config.chunkSize ?? CHUNK_SIZE;
}

/** The pacing a job's config asks for, as the runner's `HostRate`. */
export function hostRateOf(config: Pick<JobConfig, 'rate'>): HostRate {
  return config.rate ?? 'none';
}
