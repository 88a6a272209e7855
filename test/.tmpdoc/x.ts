import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBatch } from '../../src/index.js';
import { startChaosServer } from '../../src/testing/index.js';

// An API that takes 50 requests/s per client (bursts of 5) and answers 429 + Retry-After beyond.
const api = await startChaosServer();
const urls = Array.from({ length: 150 }, (_, i) => `${api.url}/ratelimit?rps=50&burst=5&key=${i}`);
const db = join(mkdtempSync(join(tmpdir(), 'dogged-')), 'run.sqlite');
const started = Date.now();
const result = await runBatch({ input: urls, db }); // rate: 'adaptive', the default
const turnedAway = result.summary.held.reduce((n, h) => n + h.count, 0);
console.log(result.counts.done, 'done,', result.counts.failed, 'failed,', turnedAway, '429s');
console.log(`${((Date.now() - started) / 1000).toFixed(1)} s for 150 requests at 50/s`);
await api.close();
