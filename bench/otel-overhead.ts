/**
 * What OpenTelemetry costs a Session request when nothing fails, as a process that enables it
 * once sees it: each setting runs in a process of its own for its whole life, never switched on
 * and off between samples (the lifecycle channels are process-wide: switching them makes the
 * Session's code see both states, which slows every contender of a shared process, and costs each
 * sample a re-optimization):
 * - `off`: `enableOpenTelemetry()` never called (today's Session);
 * - `no SDK`: `enableOpenTelemetry()` with the API's no-op tracer and meter providers (a process
 *   that calls it but registers no SDK);
 * - `SDK, sampled out`: an SDK `BasicTracerProvider` whose sampler is `AlwaysOffSampler`, and an
 *   SDK `MeterProvider` (metrics recorded, never exported during the run).
 *
 * In each process, the default Session and the bare `Agent.request` call run in interleaved rounds
 * (64 concurrent, 1 KiB bodies, BENCH_REQUESTS requests a round, default 20,000, BENCH_ROUNDS
 * rounds, default 7; each sample on a collected heap, after BENCH_WARMUP unmeasured requests,
 * default 4,000, as in bench/http-overhead.ts). The Session's requests/s is read against the bare
 * call's in the same process (machine drift cancels), and each setting against `off`: the goals
 * are within 2% of `off` with no SDK and within 10% with an SDK sampling spans out. The processes
 * run in the order off, no SDK, SDK, SDK, no SDK, off (BENCH_OTEL_REPEAT times that, default 1);
 * the medians over a setting's processes are reported. The server runs in its own process.
 */
import { spawn } from 'node:child_process';
import { createNoopMeter, ProxyTracerProvider } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { AlwaysOffSampler, BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { Agent } from 'undici';
import { enableOpenTelemetry } from '../src/http/otel-metrics.js';
import { Session } from '../src/index.js';
import { fmt, machine, medianOf, startBenchServer, table, verdict } from './lib.js';
import { runLoad, type Send } from './peers-load.js';

const TOTAL = Number(process.env.BENCH_REQUESTS ?? 20_000);
const ROUNDS = Math.max(5, Number(process.env.BENCH_ROUNDS ?? 7));
const WARMUP = Number(process.env.BENCH_WARMUP ?? 4000);
const REPEAT = Math.max(1, Number(process.env.BENCH_OTEL_REPEAT ?? 1));
const CONCURRENCY = 64;
const BODY_BYTES = 1024;
const SETTINGS = ['off', 'no SDK', 'SDK, sampled out'] as const;
type Setting = (typeof SETTINGS)[number];
/** Set in a child: the setting it runs, and the server's URL. */
const CHILD_ENV = 'DOGGED_BENCH_OTEL_SETTING';
const URL_ENV = 'DOGGED_BENCH_OTEL_URL';

/** What a child reports: medians of its rounds. */
interface ChildResult {
  bareRps: number;
  bareCpu: number;
  sessionRps: number;
  sessionCpu: number;
}

async function child(setting: Setting, url: string): Promise<ChildResult> {
  const sdkTracers = new BasicTracerProvider({ sampler: new AlwaysOffSampler() });
  const sdkMeters = new MeterProvider();
  const handle =
    setting === 'off'
      ? undefined
      : await enableOpenTelemetry(
          setting === 'no SDK'
            ? {
                tracerProvider: new ProxyTracerProvider(),
                meterProvider: { getMeter: () => createNoopMeter() },
              }
            : { tracerProvider: sdkTracers, meterProvider: sdkMeters },
        );
  const { origin, pathname } = new URL(url);
  const agent = new Agent();
  const session = new Session();
  const contenders: [string, Send][] = [
    [
      'bare',
      async () => {
        const res = await agent.request({ origin, path: pathname, method: 'GET' });
        return res.statusCode === 200 && (await res.body.text()).length === BODY_BYTES;
      },
    ],
    [
      'session',
      async (target) => {
        const res = await session.get(target);
        return res.status === 200 && (await res.text()).length === BODY_BYTES;
      },
    ],
  ];
  const samples = new Map(contenders.map(([name]) => [name, { rps: [0], cpu: [0] }]));
  for (const s of samples.values()) {
    s.rps = [];
    s.cpu = [];
  }
  for (const [, send] of contenders)
    await runLoad(send, url, { total: WARMUP, concurrency: CONCURRENCY });
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const [name, send] of order) {
      (globalThis as { gc?: () => void }).gc?.();
      if (WARMUP > 0) await runLoad(send, url, { total: WARMUP, concurrency: CONCURRENCY });
      const run = await runLoad(send, url, { total: TOTAL, concurrency: CONCURRENCY });
      if (run.ok !== TOTAL) throw new Error(`${setting}, ${name}: ${run.ok} of ${TOTAL} succeeded`);
      samples.get(name)?.rps.push(run.settled / run.seconds);
      samples.get(name)?.cpu.push(run.cpuUs);
    }
  }
  handle?.disable();
  await Promise.all([session.close(), agent.close(), sdkTracers.shutdown(), sdkMeters.shutdown()]);
  const med = (name: string, pick: 'rps' | 'cpu'): number =>
    medianOf(samples.get(name)?.[pick] ?? [Number.NaN]);
  return {
    bareRps: med('bare', 'rps'),
    bareCpu: med('bare', 'cpu'),
    sessionRps: med('session', 'rps'),
    sessionCpu: med('session', 'cpu'),
  };
}

/** Runs one setting in a fresh process; resolves with what it reported. */
function runChild(setting: Setting, url: string): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', new URL(import.meta.url).pathname],
      {
        env: { ...process.env, [CHILD_ENV]: setting, [URL_ENV]: url },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    proc.once('error', reject);
    proc.once('exit', (code, signal) => {
      if (code !== 0) return reject(new Error(`${setting}: exited with ${code ?? signal}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '') as ChildResult);
      } catch {
        reject(new Error(`${setting}: no result in ${JSON.stringify(out.slice(-200))}`));
      }
    });
  });
}

async function main(): Promise<void> {
  const server = await startBenchServer();
  const url = `${server.url}/data`;
  const results = new Map<Setting, ChildResult[]>(SETTINGS.map((s) => [s, []]));
  try {
    for (let r = 0; r < REPEAT; r++)
      for (const setting of [...SETTINGS, ...[...SETTINGS].reverse()])
        results.get(setting)?.push(await runChild(setting, url));
  } finally {
    server.stop();
  }
  const summary = SETTINGS.map((setting) => {
    const list = results.get(setting) ?? [];
    return {
      setting,
      ratio: medianOf(list.map((c) => c.sessionRps / c.bareRps)),
      rps: medianOf(list.map((c) => c.sessionRps)),
      cpu: medianOf(list.map((c) => c.sessionCpu)),
      extra: medianOf(list.map((c) => c.sessionCpu - c.bareCpu)),
    };
  });
  const off = summary[0] as (typeof summary)[number];
  console.log(
    `\n## OpenTelemetry overhead: the default Session, no failures, ${CONCURRENCY} concurrent, 1 KiB bodies, each setting in processes of its own (${2 * REPEAT} each), ${ROUNDS} rounds of ${fmt(TOTAL)} requests per process (${machine()})\n`,
  );
  console.log(
    table(
      [
        'OpenTelemetry',
        'Session requests/s',
        '× bare Agent.request',
        'vs off',
        'CPU µs/req',
        'CPU − bare',
      ],
      summary.map((s) => [
        s.setting,
        fmt(s.rps),
        fmt(s.ratio, 3),
        s === off ? '–' : `${((s.ratio / off.ratio - 1) * 100).toFixed(1)}%`,
        fmt(s.cpu, 1),
        `+${s.extra.toFixed(1)}`,
      ]),
    ),
  );
  console.log(
    '\nRequests/s against the bare call in the same process, medians over the processes of a setting; CPU is the client process’s user + system time per request.',
  );
  const goal = (setting: Setting, within: number): void => {
    const s = summary.find((x) => x.setting === setting);
    if (!s) return;
    const change = s.ratio / off.ratio - 1;
    console.log(
      `Goal (${setting}: Session requests/s within ${within * 100}% of OpenTelemetry off): ${verdict(change >= -within)} (${(change * 100).toFixed(1)}%)`,
    );
  };
  goal('no SDK', 0.02);
  goal('SDK, sampled out', 0.1);
}

const setting = process.env[CHILD_ENV] as Setting | undefined;
if (setting) {
  if (!SETTINGS.includes(setting)) throw new Error(`unknown setting ${setting}`);
  console.log(JSON.stringify(await child(setting, process.env[URL_ENV] ?? '')));
  process.exit(0);
} else await main();
