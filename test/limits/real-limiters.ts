/**
 * REAL rate limiters on loopback, for tests and benches: Debian's nginx (`nginx-light`, its
 * `limit_req` module) and HAProxy 2.6 (a stick table with `http_req_rate`), each one process
 * tree per limiter, in a temporary directory of its own (configuration, pid, logs), listening
 * on a free 127.0.0.1 port. Both share ONE limit between every client (the key is a constant,
 * not the client address), so several client processes compete for the same budget, as the
 * workers of a distributed batch do against a real API.
 *
 * Counting what the limiter saw:
 * - nginx writes one access-log line per request (`$msec $status $request_uri`, unbuffered);
 *   `stats()` / `arrivals()` parse it.
 * - HAProxy cannot log to a file, but it can log to its own stdout (`log stdout format raw`):
 *   it runs in the foreground (`-db`) and this module reads that pipe, one line per request
 *   (`%Ts.%ms %ST %HU`); `stats()` / `arrivals()` parse it. HAProxy's own counters are there
 *   too: `counters()` reads its stats page (a second loopback port, `;csv`: `req_tot`,
 *   `hrsp_2xx`..., `dreq` of the frontend), as a cross-check.
 *
 * Nothing here downloads anything; a missing binary is an error that says what to install
 * (the tests fail, they never skip).
 *
 * This file is the entry point; the pieces: nginx-limiter.ts, haproxy-limiter.ts, upstream.ts
 * (an origin to put behind them), limiter-process.ts (what both limiters share: binaries, ports,
 * processes), limiter-log.ts (what they saw).
 */

export {
  type HaproxyCounters,
  type HaproxyLimiter,
  type HaproxyLimiterOptions,
  startHaproxyLimiter,
} from './haproxy-limiter.js';
export { type Arrival, type LimiterStats, summarizeArrivals } from './limiter-log.js';
export { haproxyPath, haproxyVersion, nginxPath, nginxVersion } from './limiter-process.js';
export {
  type NginxLimiter,
  type NginxLimiterOptions,
  startNginxLimiter,
} from './nginx-limiter.js';
export { startUpstream, type Upstream } from './upstream.js';
