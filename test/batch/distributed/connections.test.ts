import { describe, expect, it } from 'vitest';
import { parseQueueUrl, parseStoreUrl } from '../../../src/batch/distributed/connections.js';
import { assertJobName } from '../../../src/batch/distributed/job-config.js';
import { isDistributed, policyFromSpec } from '../../../src/index.js';

describe('distributed targets', () => {
  it('parses a Redis URL with its database, credentials kept out of messages', () => {
    const q = parseQueueUrl('redis://user:secret@127.0.0.1:6380/7');
    expect(q.options).toMatchObject({
      host: '127.0.0.1',
      port: 6380,
      db: 7,
      username: 'user',
      password: 'secret',
    });
    expect(q.where).toBe('redis://***@127.0.0.1:6380/7');
    expect(parseQueueUrl('redis://127.0.0.1').options).toMatchObject({ port: 6379, db: 0 });
    expect(() => parseQueueUrl('http://127.0.0.1')).toThrow(/redis:\/\//);
    expect(() => parseQueueUrl('redis://127.0.0.1/x')).toThrow(/database of --queue/);
  });

  it('parses a PostgreSQL URL and its schema parameter', () => {
    const s = parseStoreUrl('postgres://postgres:pw@127.0.0.1:5432/test?schema=crawl_1');
    expect(s.schema).toBe('crawl_1');
    expect(s.where).toBe('postgres://***@127.0.0.1:5432/test');
    expect(s.config.connectionString).not.toContain('schema=');
    expect(parseStoreUrl('postgres://127.0.0.1/test').schema).toBe('dogged');
    expect(() => parseStoreUrl('postgres://127.0.0.1/test?schema=Bad-Name')).toThrow(
      /lower-case SQL name/,
    );
  });

  it('checks job names', () => {
    expect(() => assertJobName('nightly-crawl.2')).not.toThrow();
    expect(() => assertJobName('a b')).toThrow(/a job name must be/);
    expect(() => assertJobName('')).toThrow(/a job name must be/);
  });

  it('tells a distributed batch from a local one, and rebuilds the policy from plain data', () => {
    expect(isDistributed({ db: 'run.sqlite' })).toBe(false);
    expect(
      isDistributed({ queue: 'redis://127.0.0.1', store: 'postgres://127.0.0.1/x', job: 'j' }),
    ).toBe(true);
    const policy = policyFromSpec({
      total: 3,
      jitter: 'none',
      backoff: 100,
      statusForcelist: [503],
    });
    expect(policy.remaining.total).toBe(3);
    expect(policy.isRetry('GET', 503, false)).toBe(true);
    expect(policy.isRetry('GET', 500, false)).toBe(false);
  });
});
