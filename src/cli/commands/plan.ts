import { Command } from 'commander';
import { RetryPolicy } from '../../http/policy.js';
import { formatDuration } from '../../retry/describe.js';
import { integer } from '../parse.js';
import { addRetryFlags, policyOptions, type RetryFlags, retryFlags } from '../retry-flags.js';

interface PlanCliOptions extends Partial<RetryFlags> {
  samples: number;
  width: number;
  json?: boolean;
}

/** Min, median and max of each retry's wait, and of the time each attempt starts. */
export interface RetryPlan {
  readonly retries: number;
  readonly samples: number;
  readonly backoff: string;
  readonly steps: readonly {
    readonly retry: number;
    readonly wait: { min: number; median: number; max: number };
    readonly startsAt: { min: number; median: number; max: number };
  }[];
}

function quantiles(values: Float64Array): { min: number; median: number; max: number } {
  const sorted = Float64Array.from(values).sort();
  const mid = sorted.length >> 1;
  const median =
    sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return { min: sorted[0] ?? 0, median, max: sorted[sorted.length - 1] ?? 0 };
}

/**
 * Samples the waits of the policy the flags describe: each sample runs the real `RetryPolicy`
 * through `retries` failures (a 503 each time, no Retry-After) and records the backoffs, so the
 * plan is exactly what `dogged get` and `dogged batch` would wait.
 */
export function planRetries(flags: RetryFlags, samples: number): RetryPlan {
  // The seed (1 by default) makes the plan the same on every run.
  const options = policyOptions({ ...flags, seed: flags.seed ?? 1 });
  const policy = new RetryPolicy({ ...options, raiseOnStatus: false });
  const n = flags.retries;
  const waits = Array.from({ length: n }, () => new Float64Array(samples));
  const starts = Array.from({ length: n }, () => new Float64Array(samples));
  const response = { status: 503, url: 'http://plan.invalid/', headers: new Headers() };
  for (let s = 0; s < samples; s++) {
    let p = policy;
    let elapsed = 0;
    for (let r = 0; r < n; r++) {
      p = p.increment({ method: 'GET', url: response.url, response });
      const delay = p.getBackoffTime();
      elapsed += delay;
      (waits[r] as Float64Array)[s] = delay;
      (starts[r] as Float64Array)[s] = elapsed;
    }
  }
  const description =
    flags.jitter === 'urllib3'
      ? `urllib3 (backoffFactor ${formatDuration(flags.backoff)}, max ${formatDuration(flags.maxBackoff)})`
      : ((options.backoff as { description?: string } | undefined)?.description ??
        String(flags.jitter));
  return {
    retries: n,
    samples,
    backoff: description,
    steps: waits.map((w, i) => ({
      retry: i + 1,
      wait: quantiles(w),
      startsAt: quantiles(starts[i] as Float64Array),
    })),
  };
}

/** The plan as a table and an ASCII timeline of when each attempt starts. */
export function formatPlan(plan: RetryPlan, width: number): string {
  const out: string[] = [];
  const d = (ms: number): string => formatDuration(ms);
  out.push(
    `${plan.retries} ${plan.retries === 1 ? 'retry' : 'retries'} (${plan.retries + 1} attempts), backoff ${plan.backoff}; ${plan.samples.toLocaleString('en-US')} samples`,
  );
  if (plan.retries === 0) return `${out.join('\n')}\nno retries: the first failure is final\n`;
  out.push('');
  const header = ['retry', 'wait min', 'median', 'max', 'attempt starts (median)'];
  const rows = plan.steps.map((s) => [
    String(s.retry),
    d(s.wait.min),
    d(s.wait.median),
    d(s.wait.max),
    `+${d(s.startsAt.median)}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('   ');
  out.push(line(header));
  for (const r of rows) out.push(line(r));
  const last = plan.steps[plan.steps.length - 1];
  const end = last?.startsAt.max ?? 0;
  out.push('');
  out.push(
    `worst case: the last attempt starts ${d(end)} after the first (median ${d(last?.startsAt.median ?? 0)}), plus the attempts' own time`,
  );
  out.push('');
  out.push(`timeline, 0 to ${d(end)} (|---o---| = min, median, max start of each attempt):`);
  const scale = (ms: number): number => (end > 0 ? Math.round((ms / end) * (width - 1)) : 0);
  const label = (k: number): string =>
    `attempt ${String(k).padStart(String(plan.retries + 1).length)}  `;
  out.push(`${label(1)}o`);
  for (const s of plan.steps) {
    const a = scale(s.startsAt.min);
    const m = scale(s.startsAt.median);
    const b = scale(s.startsAt.max);
    const cells: string[] = Array.from({ length: b + 1 }, (_, i) => (i < a ? ' ' : '-'));
    if (b > a) {
      cells[a] = '|';
      cells[b] = '|';
    }
    cells[m] = 'o';
    out.push(`${label(s.retry + 1)}${cells.join('')}`);
  }
  return `${out.join('\n')}\n`;
}

/** `dogged plan`: what a retry policy will wait, before it waits it. */
export function planCommand(): Command {
  const command = new Command('plan')
    .description(
      'Print the wait schedule of a retry policy: min / median / max of each retry with jitter, and an ASCII timeline.',
    )
    .option('--samples <n>', 'how many schedules to sample', integer(1, 1_000_000), 10_000)
    .option('--width <n>', 'width of the timeline, in characters', integer(10, 400), 60)
    .option('--json', 'print the plan as JSON');
  addRetryFlags(command, { retries: 3 });
  command.addHelpText(
    'after',
    `
Example:
  dogged plan --retries 5 --backoff 1s --jitter full`,
  );
  command.action((options: PlanCliOptions) => {
    const flags = retryFlags(options, { retries: 3 });
    const plan = planRetries(flags, options.samples);
    process.stdout.write(
      options.json ? `${JSON.stringify(plan)}\n` : formatPlan(plan, options.width),
    );
  });
  return command;
}
