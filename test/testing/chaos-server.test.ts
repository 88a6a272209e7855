import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { startChaosServer } from '../../src/testing/index.js';
import { fetchAll, rawExchange } from './chaos-support.js';

describe('startChaosServer', () => {
  it('binds 127.0.0.1 on a free port by default, with a second origin', async () => {
    const chaos = await startChaosServer();
    try {
      expect(chaos.host).toBe('127.0.0.1');
      expect(chaos.url).toBe(`http://127.0.0.1:${chaos.port}`);
      expect(chaos.secondaryUrl).toBe(`http://127.0.0.1:${chaos.secondaryPort}`);
      expect(chaos.port).not.toBe(chaos.secondaryPort);
      expect(chaos.seed).toBe(1);
    } finally {
      await chaos.close();
    }
  });

  it('refuses a non-loopback host unless explicitly allowed', async () => {
    await expect(startChaosServer({ host: '0.0.0.0' })).rejects.toThrow(/not a loopback address/);
    await expect(startChaosServer({ host: 'example.com' })).rejects.toThrow(/allowNonLoopback/);
  });

  it('accepts any 127.0.0.0/8 address and localhost', async () => {
    const chaos = await startChaosServer({ host: '127.0.0.3' });
    try {
      expect(chaos.url).toBe(`http://127.0.0.3:${chaos.port}`);
      expect((await fetchAll(`${chaos.url}/status/200`)).status).toBe(200);
    } finally {
      await chaos.close();
    }
  });

  it('validates its options loudly', async () => {
    await expect(startChaosServer({ port: -1 })).rejects.toThrow(TypeError);
    await expect(startChaosServer({ seed: 1.5 })).rejects.toThrow(/seed/);
    await expect(startChaosServer({ logLimit: 0 })).rejects.toThrow(/logLimit/);
  });

  it('rejects when the port is taken', async () => {
    const chaos = await startChaosServer();
    try {
      await expect(startChaosServer({ port: chaos.port })).rejects.toMatchObject({
        code: 'EADDRINUSE',
      });
    } finally {
      await chaos.close();
    }
  });

  it('close() ends pending slow responses at once and can be called twice', async () => {
    const chaos = await startChaosServer();
    const pending = request(`${chaos.url}/delay/600000`).catch((error: unknown) => error);
    await new Promise((resolve) => setTimeout(resolve, 50));
    await Promise.all([chaos.close(), chaos.close()]);
    expect(await pending).toBeInstanceOf(Error);
    await expect(request(`${chaos.url}/status/200`)).rejects.toThrow();
  });

  it('closes through Symbol.asyncDispose (await using)', async () => {
    const chaos = await startChaosServer();
    await chaos[Symbol.asyncDispose]();
    await expect(request(`${chaos.url}/status/200`)).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });

  it('keeps connections alive between requests', async () => {
    const chaos = await startChaosServer();
    try {
      const first = await fetchAll(`${chaos.url}/status/200`);
      expect(first.headers.connection).toBe('keep-alive');
    } finally {
      await chaos.close();
    }
  });

  it('survives malformed HTTP and keeps serving', async () => {
    const chaos = await startChaosServer();
    try {
      const garbage = await rawExchange(chaos.port, 'THIS IS NOT HTTP\r\n\r\n');
      expect(garbage.head).toMatch(/^HTTP\/1\.1 400 /);
      const badPath = await rawExchange(
        chaos.port,
        'GET /flaky/%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      );
      expect(badPath.head).toMatch(/^HTTP\/1\.1 400 /);
      expect((await fetchAll(`${chaos.url}/status/200`)).status).toBe(200);
    } finally {
      await chaos.close();
    }
  });

  it('survives clients that vanish mid-response', async () => {
    const chaos = await startChaosServer();
    try {
      const sockets: Socket[] = [];
      for (const path of ['/drip?bytes=100&interval=5', '/delay/50', '/bytes/10000000']) {
        const socket = connect(chaos.port, '127.0.0.1');
        socket.on('error', () => {});
        socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
        sockets.push(socket);
      }
      await new Promise((resolve) => setTimeout(resolve, 30));
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect((await fetchAll(`${chaos.url}/status/200`)).status).toBe(200);
    } finally {
      await chaos.close();
    }
  });

  it('serves 1,000 concurrent connections', async () => {
    const chaos = await startChaosServer();
    const agent = new HttpAgent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
    try {
      // Every connection is open before any request is sent: the server holds 1,000 at once.
      const sockets = await Promise.all(
        Array.from(
          { length: 1000 },
          () =>
            new Promise<Socket>((resolve, reject) => {
              const socket = connect(chaos.port, '127.0.0.1', () => resolve(socket));
              socket.once('error', reject);
            }),
        ),
      );
      const statuses = await Promise.all(
        sockets.map(
          (socket, i) =>
            new Promise<string>((resolve, reject) => {
              const chunks: Buffer[] = [];
              socket.on('data', (chunk: Buffer) => chunks.push(chunk));
              socket.once('error', reject);
              socket.once('close', () =>
                resolve(Buffer.concat(chunks).toString('latin1').slice(0, 12)),
              );
              socket.write(
                `GET /status/200?key=c${i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
              );
            }),
        ),
      );
      expect(statuses.filter((s) => s === 'HTTP/1.1 200').length).toBe(1000);
      expect(new Set(chaos.log().map((a) => a.connectionId)).size).toBe(1000);
      // And through an ordinary client, all at once.
      const viaClient = await Promise.all(
        Array.from(
          { length: 1000 },
          () =>
            new Promise<number>((resolve, reject) => {
              httpRequest(`${chaos.url}/status/204`, { agent }, (res) => {
                res.resume();
                resolve(res.statusCode ?? 0);
              })
                .on('error', reject)
                .end();
            }),
        ),
      );
      expect(viaClient.every((s) => s === 204)).toBe(true);
    } finally {
      agent.destroy();
      await chaos.close();
    }
  });
});
