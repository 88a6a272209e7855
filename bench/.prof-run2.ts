import { Agent } from 'undici';
import { Session } from '../dist/index.js';
import { startBenchServer } from './lib.js';
import dc from 'node:diagnostics_channel';
let connects = 0;
dc.subscribe('undici:client:connected', () => { connects++; });
const server = await startBenchServer();
const which = process.argv[2] ?? 'session';
const session = new Session({ logger: false });
const agent = new Agent({ connections: 64 });
const u = new URL(server.url);
const N = Number(process.argv[3] ?? 60000);
let next = 0;
async function worker() {
  while (next < N) {
    next++;
    if (which === 'session') {
      const res = await session.get(`${server.url}/data`);
      await res.arrayBuffer();
    } else {
      const res = await agent.request({ origin: u.origin, path: '/data', method: 'GET' });
      await res.body.arrayBuffer();
    }
  }
}
// warm
const t0 = process.cpuUsage();
const s = performance.now();
await Promise.all(Array.from({ length: 64 }, worker));
const cpu = process.cpuUsage(t0);
console.log(which, ((cpu.user + cpu.system) / N).toFixed(1), 'µs/req', (N / ((performance.now() - s) / 1000)).toFixed(0), 'req/s', connects, 'connects');
await session.close(); await agent.close(); server.stop();
