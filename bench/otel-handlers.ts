/**
 * The CPU cost of dogged's OpenTelemetry subscriber alone, without the network: one logical
 * request's events (dogged's request and attempt events and undici's request events, as one
 * successful attempt publishes them) are published in a loop, and the CPU time per request is
 * measured with process.cpuUsage, for: no subscriber; `enableOpenTelemetry` with the API's no-op
 * providers; an SDK tracer whose sampler drops every span (`AlwaysOffSampler`); an SDK meter
 * provider; both. Medians of 7 rounds of 100,000 requests. Steadier than bench/http-overhead.ts
 * on a shared machine, where the noise of a loopback run is larger than these few µs.
 *
 *     npx tsx bench/otel-handlers.ts
 */
import { channel } from 'node:diagnostics_channel';
import { createNoopMeter, ProxyTracerProvider } from '@opentelemetry/api';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { AlwaysOffSampler, BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import {
  publishAttemptEnd,
  publishAttemptStart,
  publishRequestEnd,
  publishRequestStart,
} from '../src/http/observe.js';
import { enableOpenTelemetry, type OpenTelemetryOptions } from '../src/http/otel-metrics.js';
import { medianOf } from './lib.js';

const ROUNDS = 7;
const PER_ROUND = 100_000;
const create = channel('undici:request:create');
const headers = channel('undici:request:headers');
const trailers = channel('undici:request:trailers');
const target = {
  method: 'GET',
  url: 'http://127.0.0.1:8080/data',
  origin: 'http://127.0.0.1:8080',
};
const sent = { 'user-agent': 'dogged' };

/** One logical request with one successful attempt, as the Session and undici publish it. */
function requests(n: number): void {
  for (let i = 0; i < n; i++) {
    const request = {};
    const undiciRequest = { origin: target.origin, method: 'GET' };
    if (channel('dogged:request:start').hasSubscribers) publishRequestStart(request, target);
    if (channel('dogged:attempt:start').hasSubscribers)
      publishAttemptStart(request, target, 1, sent);
    if (create.hasSubscribers) create.publish({ request: undiciRequest });
    if (headers.hasSubscribers)
      headers.publish({ request: undiciRequest, response: { statusCode: 200 } });
    if (channel('dogged:attempt:end').hasSubscribers) publishAttemptEnd(request, 1, 200, undefined);
    if (channel('dogged:request:end').hasSubscribers) publishRequestEnd(request, 1, 200, undefined);
    if (trailers.hasSubscribers) trailers.publish({ request: undiciRequest });
  }
}

async function measure(name: string, options: OpenTelemetryOptions | undefined): Promise<void> {
  const handle = options ? await enableOpenTelemetry(options) : undefined;
  requests(PER_ROUND / 2); // warm up
  const samples: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const before = process.cpuUsage();
    requests(PER_ROUND);
    const used = process.cpuUsage(before);
    samples.push((used.user + used.system) / PER_ROUND);
  }
  handle?.disable();
  const sorted = [...samples].sort((a, b) => a - b);
  console.log(
    `| ${name} | ${medianOf(samples).toFixed(2)} | ${sorted[0]?.toFixed(2)}–${sorted.at(-1)?.toFixed(2)} |`,
  );
}

const noopMeters = { getMeter: () => createNoopMeter() };
console.log('| subscriber | CPU µs/request (median) | range |\n| --- | --- | --- |');
await measure('none (OpenTelemetry not enabled)', undefined);
await measure('enableOpenTelemetry, no SDK (no-op providers)', {
  tracerProvider: new ProxyTracerProvider(),
  meterProvider: noopMeters,
});
await measure('SDK tracer, spans sampled out; no-op meter', {
  tracerProvider: new BasicTracerProvider({ sampler: new AlwaysOffSampler() }),
  meterProvider: noopMeters,
});
await measure('no-op tracer; SDK meter provider', {
  tracerProvider: new ProxyTracerProvider(),
  meterProvider: new MeterProvider(),
});
await measure('SDK tracer (sampled out) and SDK meter provider', {
  tracerProvider: new BasicTracerProvider({ sampler: new AlwaysOffSampler() }),
  meterProvider: new MeterProvider(),
});
