import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { batchCommand } from './commands/batch.js';
import { chaosCommand } from './commands/chaos.js';
import { exportCommand } from './commands/export.js';
import { getCommand } from './commands/get.js';
import { planCommand } from './commands/plan.js';
import { reportCommand } from './commands/report.js';
import { retryFailedCommand } from './commands/retry-failed.js';
import { statusCommand } from './commands/status.js';
import { workerCommand } from './commands/worker.js';
import { redacted } from './redaction.js';

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** `dogged batch`, `dogged`: the command as typed. */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** The line printed under a usage error: where the options are, not all of them. */
export function usageHint(command: Command): string {
  return `Run '${commandPath(command)} --help' for the options.`;
}

/**
 * commander exits 1 for usage errors; dogged reserves 2 for bad usage, like curl. A usage
 * error prints its one-line message and one hint line, not the whole help.
 */
function usageExitCodes(command: Command): Command {
  // commander echoes a rejected value in its message: it goes through the redactor too.
  command.configureOutput({ outputError: (text, write) => write(redacted(text)) });
  return command.showHelpAfterError(usageHint(command)).exitOverride((err) => {
    if (
      err.code === 'commander.helpDisplayed' ||
      err.code === 'commander.version' ||
      err.exitCode === 0
    ) {
      process.exit(0);
    }
    process.exit(2);
  });
}

/** The `dogged` command line. Each subcommand lives in its own file under `commands/`. */
export function createProgram(): Command {
  const program = new Command('dogged')
    .description(
      'HTTP work that survives the real network: retries, backoff, Retry-After, durable batches.',
    )
    .version(packageVersion());
  usageExitCodes(program);
  program.addCommand(chaosCommand());
  program.addCommand(getCommand());
  program.addCommand(planCommand());
  program.addCommand(batchCommand());
  program.addCommand(statusCommand());
  program.addCommand(exportCommand());
  program.addCommand(reportCommand());
  program.addCommand(retryFailedCommand());
  program.addCommand(workerCommand());
  // addCommand() does not pass the parent's settings on: every subcommand gets the same policy.
  for (const command of program.commands) usageExitCodes(command);
  return program;
}
