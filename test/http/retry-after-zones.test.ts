import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * HTTP-dates are GMT whatever the machine's zone: a parser that read them in local time would
 * pass every test on a machine set to UTC (as CI machines are) and wait hours too long or too
 * short everywhere else. Each zone runs in a process of its own started with that TZ (a zone
 * changed inside a running test worker does not always take effect).
 */
const ZONES = [
  // [zone, its offset from UTC on 21 Oct 2026 in minutes, as getTimezoneOffset() gives it]
  ['UTC', 0],
  ['America/New_York', 240],
  ['Asia/Kolkata', -330],
] as const;

const root = fileURLToPath(new URL('../../', import.meta.url));

describe.each(ZONES)('Retry-After dates with TZ=%s', (zone, offset) => {
  it('every HTTP-date form is read as GMT', () => {
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/retry-after-zone.ts'],
      { cwd: root, env: { ...process.env, TZ: zone }, encoding: 'utf8' },
    );
    const when = Date.UTC(2026, 9, 21, 7, 28, 0);
    expect(JSON.parse(out)).toEqual({
      // The zone really is in effect (otherwise this test would prove nothing).
      offset,
      imf: when,
      rfc850: when,
      asctime: when,
      delay: 30_000,
      // Around midnight UTC the local date differs from the GMT one in both zones.
      midnight: 20 * 60_000,
    });
  });
});
