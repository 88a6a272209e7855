import type { Redis } from 'ioredis';
import {
  parseQueueUrl,
  parseStoreUrl,
  probeQueue,
  type QueueLocation,
  type StoreLocation,
} from './connections.js';
import { PgStore } from './store.js';

/** Redis and PostgreSQL, connected. */
export interface DistributedConnections {
  readonly queue: QueueLocation;
  readonly storeLocation: StoreLocation;
  /** dogged's own commands (limits, counters); BullMQ opens its own connections. */
  readonly redis: Redis;
  readonly store: PgStore;
  close(): Promise<void>;
}

/**
 * A Redis client that rides out disconnects: commands wait for the reconnection instead of
 * failing (ioredis reconnects with backoff), so a Redis restart pauses the work, not loses it.
 */
export async function openRedis(location: QueueLocation): Promise<Redis> {
  const { Redis } = await import('ioredis');
  const redis = new Redis({
    ...location.options,
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    retryStrategy: (times) => Math.min(times * 100, 2000),
  });
  redis.on('error', () => {});
  return redis;
}

/**
 * Checks and opens both ends: Redis first, then PostgreSQL, each failing at once with an error
 * that names which one and where ({@link QueueUnavailableError}, {@link StoreUnavailableError}).
 */
export async function openConnections(
  queueUrl: string,
  storeUrl: string,
): Promise<DistributedConnections> {
  const queue = parseQueueUrl(queueUrl);
  const storeLocation = parseStoreUrl(storeUrl);
  await probeQueue(queue);
  const store = await PgStore.open(storeLocation);
  const redis = await openRedis(queue);
  return {
    queue,
    storeLocation,
    redis,
    store,
    close: async () => {
      redis.disconnect();
      await store.close();
    },
  };
}
