/** The services and tools the tests may need (probed by services.ts, gated by needs.ts). */
export const SERVICES = [
  'redis',
  'postgres',
  'tinyproxy',
  'nginx',
  'haproxy',
  'openssl',
  'curl',
  'redis-server',
  'initdb',
  'chromium',
] as const;
export type Service = (typeof SERVICES)[number];
