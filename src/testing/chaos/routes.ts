import { bytesNoRangeRoute, bytesRoute } from './endpoints/bytes.js';
import { indexRoute, logRoute, resetStateRoute } from './endpoints/control.js';
import { echoRoute } from './endpoints/echo.js';
import { failRateRoute } from './endpoints/fail-rate.js';
import {
  chunkedTruncateRoute,
  resetMidBodyRoute,
  resetRoute,
  truncateRoute,
} from './endpoints/faults.js';
import { flakyRoute } from './endpoints/flaky.js';
import { idempotentCountRoute, idempotentRoute } from './endpoints/idempotent.js';
import { banRoute, rateLimitRoute } from './endpoints/limits.js';
import { redirectRoute, redirectToRoute } from './endpoints/redirects.js';
import { statusRoute } from './endpoints/status.js';
import { delayRoute, dripRoute } from './endpoints/timing.js';
import type { Route } from './route.js';

/** Every chaos endpoint, in the order `GET /` lists them. */
export const CHAOS_ROUTES: readonly Route[] = [
  indexRoute,
  statusRoute,
  flakyRoute,
  failRateRoute,
  delayRoute,
  dripRoute,
  resetRoute,
  resetMidBodyRoute,
  truncateRoute,
  chunkedTruncateRoute,
  banRoute,
  rateLimitRoute,
  redirectRoute,
  redirectToRoute,
  echoRoute,
  bytesRoute,
  bytesNoRangeRoute,
  idempotentRoute,
  idempotentCountRoute,
  logRoute,
  resetStateRoute,
];
