/**
 * Helpers of the CLI tests about file permissions. Root reads and writes any file whatever its
 * mode, so a test running as root runs the CLI as `nobody` (uid 65534) to see what a user sees;
 * as any other user, the CLI runs as that user and a mode of 000 makes a file unreadable.
 */
import type { CliUser } from '../batch/batch-support.js';

/** uid and gid of `nobody` on Debian, Ubuntu and Alpine. */
const NOBODY = 65534;

const isRoot = (): boolean => process.getuid?.() === 0;

/** The user the CLI runs as in permission tests: `nobody` when the tests run as root. */
export function asOtherUser(): CliUser {
  return isRoot() ? { uid: NOBODY, gid: NOBODY } : {};
}

/**
 * Whether a permission test can run: as root (the CLI then runs as `nobody`) or as a user who
 * is not root (the CLI runs as that user, whom a mode of 000 or 444 stops). On Windows, no.
 */
export function otherUserCanRun(): boolean {
  return typeof process.getuid === 'function';
}

/** The mode that makes a file unreadable to the CLI of {@link asOtherUser}. */
export function unreadableMode(): number {
  return isRoot() ? 0o600 : 0o000;
}
