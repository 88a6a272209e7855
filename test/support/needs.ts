/**
 * Gates for tests that need a service or a tool (Redis, PostgreSQL, tinyproxy, nginx, HAProxy,
 * openssl, curl, redis-server, initdb). The preflight (test/global-setup.ts) probed them all:
 *
 *     needs('redis', 'postgres')('a distributed batch', () => { ... });   // a describe
 *     const describe = needs('redis', 'postgres');   // every suite of a file: describe(...)
 *     describe.concurrent('concurrent ones', () => { ... });
 *     needs.it('curl')('makes curl report a partial transfer', async () => { ... });
 *     if (!available('redis')) return;   // in a file-level beforeAll
 *
 * When something is missing, the suite is skipped and its name says why; when CI is set, it
 * is replaced by one test that fails at once with the reason (CI never passes by skipping).
 * Without the preflight's answer (a config without the global setup) everything counts as
 * available, as before.
 */
import { describe, inject, it, type SuiteOptions } from 'vitest';
import { ciIsSet } from './ci.js';
import { type Availability, describeMissing, type Service } from './services.js';

type Body = () => void;
type TestBody = () => unknown;
type SuiteFn = (name: string, body: Body, options?: SuiteOptions) => void;
/** A gated `describe`; `.concurrent` as vitest's. */
type Suite = SuiteFn & { concurrent: (name: string, body: Body) => void };

function suite(fn: SuiteFn): Suite {
  return Object.assign(fn, {
    concurrent: (name: string, body: Body) => fn(name, body, { concurrent: true }),
  });
}
type Test = (name: string, body: TestBody, timeout?: number) => void;

function availability(): Partial<Availability> {
  return (inject('services') as Availability | undefined) ?? {};
}

/** Why `services` cannot be used here (in full, with the fixes), or undefined when all can. */
export function missing(...services: Service[]): string | undefined {
  const found = availability();
  const reasons = services.flatMap((s) => found[s] ?? []);
  return reasons.length === 0 ? undefined : reasons.map(describeMissing).join('; ');
}

/** The short reason a skipped test's name carries (the fix is on the preflight's line). */
function shortReason(services: Service[]): string {
  const found = availability();
  return services.flatMap((s) => found[s]?.what ?? []).join('; ');
}

/** Whether every one of `services` is there (for file-level hooks: skip the setup if not). */
export function available(...services: Service[]): boolean {
  return missing(...services) === undefined;
}

function failure(services: Service[], reason: string): Error {
  return new Error(
    `needs ${services.join(', ')}, and CI is set (a missing service fails, never skips): ${reason}`,
  );
}

/** `describe` when every one of `services` is there; else skipped, or failing at once on CI. */
export function needs(...services: Service[]): Suite {
  const reason = missing(...services);
  if (reason === undefined)
    return suite((name, body, options = {}) => describe(name, options, body));
  if (ciIsSet())
    return suite((name) =>
      describe(name, () => {
        it(`needs ${services.join(', ')}`, () => {
          throw failure(services, reason);
        });
      }),
    );
  return suite((name, body) => describe.skip(`${name} [skipped: ${shortReason(services)}]`, body));
}

/** `it` when every one of `services` is there; else skipped, or failing at once on CI. */
needs.it = (...services: Service[]): Test => {
  const reason = missing(...services);
  if (reason === undefined) return (name, body, timeout) => it(name, body, timeout);
  if (ciIsSet())
    return (name) =>
      it(name, () => {
        throw failure(services, reason);
      });
  return (name, body) => it.skip(`${name} [skipped: ${shortReason(services)}]`, body);
};
