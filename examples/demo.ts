/**
 * `npm run demo`: the retry engine on a local flaky task, no network needed.
 *
 * A pretend API fails the way real ones do (resets, a temporary-failure JSON body), and dogged
 * retries it with full-jitter backoff, logging each retry, then reports its statistics.
 */
import { logBeforeSleep, RetryError, Retrying, retryIf, seededRandom, stop, wait } from 'dogged';

type Body = { error?: string; rows?: number };

const random = seededRandom(2026);
const script: Array<() => Body> = [
  () => {
    throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  },
  () => ({ error: 'temporary_failure' }),
  () => ({ rows: 1280 }),
];

function makeFlakyApi() {
  let call = 0;
  return async (): Promise<Body> => {
    const step = script[Math.min(call++, script.length - 1)] as () => Body;
    await new Promise((resolve) => setTimeout(resolve, 5));
    return step();
  };
}

const polite = new Retrying<Body>({
  name: 'fetchReport',
  stop: stop.afterAttempt(5).or(stop.beforeDelay(10_000)),
  wait: wait.fullJitter({ multiplier: 100, max: 2000 }),
  retry: retryIf.transient.or(retryIf.result((body: Body) => body.error === 'temporary_failure')),
  beforeSleep: logBeforeSleep(console),
  random,
});

console.log(
  'dogged demo: a flaky task that resets, then answers "temporary_failure", then succeeds\n',
);
const body = await polite.run(makeFlakyApi());
console.log(`\nresult: ${JSON.stringify(body)}`);
console.log('statistics:', polite.statistics);

console.log('\nand a task that never recovers gives up cleanly after 3 attempts:\n');
try {
  await polite.with({ stop: stop.afterAttempt(3) }).run(async () => {
    throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
  });
} catch (error) {
  if (!(error instanceof RetryError)) throw error;
  console.log(`RetryError: ${error.message}`);
}
