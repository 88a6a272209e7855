import { connect, createServer } from 'node:net';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import { startBlackhole, startConnectTimeoutTarget } from '../../src/testing/index.js';

/** A loopback port nobody listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('startBlackhole', () => {
  it('accepts the connection and the request, and never answers', async () => {
    const hole = await startBlackhole();
    const agent = new Agent({ headersTimeout: 100 });
    try {
      await expect(request(`${hole.url}/anything`, { dispatcher: agent })).rejects.toMatchObject({
        code: 'UND_ERR_HEADERS_TIMEOUT',
      });
      expect(hole.connections).toBe(1);
      expect(hole.bytesReceived).toBeGreaterThan(0);
    } finally {
      await agent.close();
      await hole.close();
    }
  });

  it('refuses a non-loopback host', async () => {
    await expect(startBlackhole({ host: '0.0.0.0' })).rejects.toThrow(/loopback/);
  });
});

describe('startConnectTimeoutTarget', () => {
  it('makes an HTTP client time out while connecting', async () => {
    const target = await startConnectTimeoutTarget();
    const agent = new Agent({ connect: { timeout: 150 } });
    try {
      await expect(request(`${target.url}/`, { dispatcher: agent })).rejects.toMatchObject({
        code: 'UND_ERR_CONNECT_TIMEOUT',
      });
    } finally {
      await agent.close();
      await target.close();
    }
  });

  it('leaves a raw connect pending: neither connected nor refused', async () => {
    const target = await startConnectTimeoutTarget();
    try {
      const socket = connect(target.port, target.host);
      const events: string[] = [];
      socket.on('connect', () => events.push('connect'));
      socket.on('error', (error: NodeJS.ErrnoException) => events.push(error.code ?? 'error'));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(events).toEqual([]);
      expect(socket.connecting).toBe(true);
      socket.destroy();
    } finally {
      await target.close();
    }
  });

  it('differs from a closed port, which refuses at once', async () => {
    const port = await closedPort();
    await expect(request(`http://127.0.0.1:${port}/`)).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });

  it('keeps timing out for several clients in a row', async () => {
    const target = await startConnectTimeoutTarget();
    const agent = new Agent({ connect: { timeout: 100 } });
    try {
      for (let i = 0; i < 3; i++) {
        await expect(request(`${target.url}/${i}`, { dispatcher: agent })).rejects.toMatchObject({
          code: 'UND_ERR_CONNECT_TIMEOUT',
        });
      }
    } finally {
      await agent.close();
      await target.close();
    }
  });

  it('refuses a non-loopback host', async () => {
    await expect(startConnectTimeoutTarget({ host: '0.0.0.0' })).rejects.toThrow(/loopback/);
  });

  it('frees its port on close', async () => {
    const target = await startConnectTimeoutTarget();
    await target.close();
    await target.close();
    await expect(request(`${target.url}/`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
