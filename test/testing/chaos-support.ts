import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { request } from 'undici';

/** How a raw connection ended: an orderly close (FIN), a reset (RST), or still open. */
export type Ending = 'fin' | 'rst' | 'open';

/** What a raw socket received for one request. */
export interface RawExchange {
  /** Status line and headers, without the blank line. */
  readonly head: string;
  /** Every byte after the blank line, exactly as received (chunk framing included). */
  readonly body: Buffer;
  readonly ending: Ending;
}

/**
 * Sends `requestText` on a fresh TCP connection and records every byte until the server ends
 * the connection (or `idleMs` pass without an ending).
 *
 * libuv reports a reset that arrives together with data as a plain end of stream, so on 'end'
 * the socket (half-open) writes one more byte: after an RST the kernel refuses it at once
 * (ECONNRESET), after a FIN it is accepted. That tells the two endings apart deterministically.
 */
export function rawExchange(
  port: number,
  requestText: string,
  options: { host?: string; idleMs?: number } = {},
): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ending: Ending | undefined;
    const socket = connect({ port, host: options.host ?? '127.0.0.1', allowHalfOpen: true });
    socket.on('connect', () => socket.write(requestText));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => {
      socket.write('\r\n', (error) => {
        ending ??= error ? 'rst' : 'fin';
        socket.destroy();
      });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') ending ??= 'rst';
      else reject(error);
    });
    const idle = setTimeout(() => {
      ending ??= 'open';
      socket.destroy();
    }, options.idleMs ?? 5000);
    socket.on('close', () => {
      clearTimeout(idle);
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      resolve({
        head: split < 0 ? all.toString('latin1') : all.subarray(0, split).toString('latin1'),
        body: split < 0 ? Buffer.alloc(0) : all.subarray(split + 4),
        ending: ending ?? 'fin',
      });
    });
  });
}

/** A minimal HTTP/1.1 GET for {@link rawExchange}. */
export function rawGet(path: string, headers: Record<string, string> = {}): string {
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${lines.join('')}\r\n`;
}

/** The value of a header in a raw head, case-insensitively. */
export function headerOf(head: string, name: string): string | undefined {
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

/** Status, headers and whole body of a request made with undici. */
export async function fetchAll(
  url: string,
  options: Parameters<typeof request>[1] = {},
): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  const response = await request(url, options);
  const body = Buffer.from(await response.body.arrayBuffer());
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return { status: response.statusCode, headers, body };
}

/** Like {@link fetchAll}, with the body parsed as JSON. */
export async function fetchJson(
  url: string,
  options: Parameters<typeof request>[1] = {},
): Promise<{ status: number; headers: Record<string, string>; json: Record<string, unknown> }> {
  const { status, headers, body } = await fetchAll(url, options);
  return { status, headers, json: JSON.parse(body.toString('utf8')) as Record<string, unknown> };
}

/** Runs curl; resolves with its exit code and output (never rejects on a non-zero exit). */
export function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['--silent', '--show-error', '--noproxy', '*', '--max-time', '10', ...args],
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
