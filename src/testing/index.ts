export type { ChaosArrival, ChaosListenerName } from './chaos/arrival-log.js';
export { type Blackhole, type BlackholeOptions, startBlackhole } from './chaos/blackhole.js';
export { chaosBytes } from './chaos/bytes.js';
export {
  type ConnectTimeoutTarget,
  type ConnectTimeoutTargetOptions,
  startConnectTimeoutTarget,
} from './chaos/connect-timeout.js';
export type { ChaosServerOptions } from './chaos/options.js';
export { type ChaosServer, startChaosServer } from './chaos/server.js';
export {
  type ChaosStateSizes,
  MAX_STATE_KEY_LENGTH,
  MAX_STATE_KEYS,
} from './chaos/state.js';
export { FakeClock, type FakeClockOptions } from './fake-clock.js';
