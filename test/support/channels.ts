import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterEach } from 'vitest';

const subscriptions: [string, (message: unknown) => void][] = [];
afterEach(() => {
  for (const [name, fn] of subscriptions.splice(0)) unsubscribe(name, fn);
});

/** The messages of a diagnostics channel from now on (unsubscribed after the test). */
export function listen(name: string): unknown[] {
  const seen: unknown[] = [];
  const fn = (message: unknown) => seen.push(message);
  subscribe(name, fn);
  subscriptions.push([name, fn]);
  return seen;
}
