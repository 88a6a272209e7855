import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { IncompleteBodyError } from '../../src/http/index.js';
import { type ChaosServer, chaosBytes, startChaosServer } from '../../src/testing/index.js';
import { fastSession, rejectionOf } from './session-support.js';

let chaos: ChaosServer;
beforeAll(async () => {
  chaos = await startChaosServer();
});
afterAll(() => chaos.close());
beforeEach(() => chaos.reset());

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const N = 300_000;
const expected = sha(chaosBytes(N, 7));

async function streamed(body: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('resumable downloads', () => {
  it('a cut buffered download resumes with Range + If-Match and never duplicates or drops a byte', async () => {
    const { session } = fastSession();
    const res = await session.get(`${chaos.url}/bytes/${N}?seed=7&cut=100000&key=buf`);
    const data = await res.bytes();
    expect(data.length).toBe(N);
    expect(sha(data)).toBe(expected);
    const log = chaos.log();
    expect(log).toHaveLength(2);
    expect(res.status).toBe(200);
    expect(res.attempts).toBe(2);
    await session.close();
  });

  it('a cut streamed download resumes too', async () => {
    const { session } = fastSession();
    const res = await session.get(`${chaos.url}/bytes/${N}?seed=7&cut=123457&key=stream`);
    const data = await streamed(res.body);
    expect(sha(data)).toBe(expected);
    expect(chaos.log()).toHaveLength(2);
    await session.close();
  });

  it('the resumed request carries the Range and the strong ETag', async () => {
    const seen: Record<string, string | string[]>[] = [];
    const { session } = fastSession({
      hooks: { beforeRequest: (r) => void seen.push({ ...r.headers }) },
    });
    await (await session.get(`${chaos.url}/bytes/${N}?seed=7&cut=5000&key=hdr`)).bytes();
    expect(seen[1]?.range).toBe('bytes=5000-');
    expect(seen[1]?.['if-match']).toBe(`"chaos-7-${N}"`);
    await session.close();
  });

  it('a server that ignores Range: buffered restarts from byte 0 and discards the partial bytes', async () => {
    const { session } = fastSession();
    const data = await (
      await session.get(`${chaos.url}/bytes-norange/${N}?seed=7&cut=100000&key=nr1`)
    ).bytes();
    expect(sha(data)).toBe(expected);
    await session.close();
  });

  it('a server that ignores Range: streamed restarts and skips what was delivered (same ETag)', async () => {
    const { session } = fastSession();
    const res = await session.get(`${chaos.url}/bytes-norange/${N}?seed=7&cut=100000&key=nr2`);
    expect(sha(await streamed(res.body))).toBe(expected);
    await session.close();
  });

  it('without a validator a buffered download restarts from 0; a stream cannot continue and says so', async () => {
    const { session } = fastSession();
    const data = await (
      await session.get(`${chaos.url}/bytes/${N}?seed=7&etag=none&cut=100000&key=nv1`)
    ).bytes();
    expect(sha(data)).toBe(expected);
    const res = await session.get(`${chaos.url}/bytes/${N}?seed=7&etag=none&cut=100000&key=nv2`);
    const error = await rejectionOf(streamed(res.body));
    // A typed, retriable failure (not undici's raw socket error): the caller can fetch again.
    expect(error).toBeInstanceOf(IncompleteBodyError);
    expect((error as IncompleteBodyError).code).toBe('ERR_DOGGED_INCOMPLETE_BODY');
    await session.close();
  });

  it('a weak ETag is not trusted for resuming: the buffered download restarts', async () => {
    const seen: Record<string, string | string[]>[] = [];
    const { session } = fastSession({
      hooks: { beforeRequest: (r) => void seen.push({ ...r.headers }) },
    });
    const data = await (
      await session.get(`${chaos.url}/bytes/${N}?seed=7&etag=weak&cut=100000&key=weak`)
    ).bytes();
    expect(sha(data)).toBe(expected);
    expect(seen[1]?.range).toBeUndefined();
    await session.close();
  });

  it('repeated cuts each resume, within the policy', async () => {
    const { session } = fastSession({ retry: { total: 1, backoffFactor: 0 } });
    // One cut allowed by the policy; the first response is cut, the resumed one completes.
    const data = await (await session.get(`${chaos.url}/bytes/${N}?seed=7&cut=1&key=once`)).bytes();
    expect(sha(data)).toBe(expected);
    await session.close();
  });

  it('a POST body cut is not retried', async () => {
    const { session } = fastSession();
    const res = await session.post(`${chaos.url}/flaky/p1?fail=1&mode=truncate`, { body: 'x' });
    expect(await rejectionOf(res.text())).toBeInstanceOf(IncompleteBodyError);
    await session.close();
  });
});
