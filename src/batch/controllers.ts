import { getEventListeners } from 'node:events';

/**
 * Abort controllers of the runs and jobs of this process that ended without aborting them, for
 * the next ones. Node gives each `AbortSignal` a hidden class of its own: with new controllers
 * for each run (or each job a `dogged worker` joins), V8 dropped the optimized code of every
 * function on the request path that had seen the last one's signal (the Session's checks of its
 * options, the exchange, the attempt deadline, the input reader) and compiled it again.
 */
const idle: AbortController[] = [];

/** Controllers kept at most: one each for the runs and jobs of a process at once. */
const MAX_IDLE = 16;

/** A controller nothing listens to: one an earlier run gave back, or a new one. */
export function takeController(): AbortController {
  return idle.pop() ?? new AbortController();
}

/**
 * Gives `controller` back for a later run, unless it aborted or something still listens to it
 * (a listener left behind would hear the next run's abort). Call it once nothing uses it.
 */
export function releaseController(controller: AbortController): void {
  const signal = controller.signal;
  if (signal.aborted || idle.length >= MAX_IDLE || idle.includes(controller)) return;
  if (getEventListeners(signal, 'abort').length > 0) return;
  idle.push(controller);
}
