/** The prefix of every Redis key dogged writes (BullMQ's keys included). */
export const PREFIX = 'dogged';

/** The set of job names, for workers that serve every job. */
export const JOBS_KEY = `${PREFIX}:jobs`;

/** dogged's own Redis keys of one job, next to BullMQ's `dogged:<job>:*` keys. */
export function jobKeys(job: string) {
  const base = `${PREFIX}:${job}:x`;
  return {
    /** JSON {@link JobConfig}. */
    config: `${base}:config`,
    /** Hash of counters: lines, done, failed, invalid, `h:<host>:<field>`, input_complete. */
    stats: `${base}:stats`,
    /** Bitmap: the line has been counted as added. */
    added: `${base}:added`,
    /** Bitmap: the line has been counted as finished. */
    finished: `${base}:finished`,
    /** Prefix of per-second finish counters (`<prefix>:<epoch second>`). */
    rate: `${base}:rate`,
    /** Prefix of per-host pauses (hash: until, since, throttles): Retry-After and throttles. */
    pause: `${base}:pause`,
    /** Key prefix of the per-host in-flight semaphores. */
    slots: `${base}:slots`,
    /** Key prefix of the per-host start slots (GCRA: the next free start, epoch ms). */
    pace: `${base}:pace`,
    /** Key prefix of the per-host adaptive pace (JSON `AdaptiveRateState`). */
    limit: `${base}:limit`,
    /** Key prefix of the per-host retry budgets (rate-limiter-flexible). */
    budget: `${base}:budget`,
    /** Hash: worker id -> JSON heartbeat. */
    workers: `${base}:workers`,
  };
}

export type JobKeys = ReturnType<typeof jobKeys>;
