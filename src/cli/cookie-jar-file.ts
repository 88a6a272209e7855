import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { CookieJar } from 'tough-cookie';
import { jarFromNetscape, netscapeFromJar } from '../http/cookies.js';

/**
 * `--cookie-jar FILE`: the jar of a Netscape cookie file (curl's `-b` / `-c` format), empty when
 * the file does not exist yet. Any other read failure is the caller's usage error.
 */
export async function loadCookieJar(path: string): Promise<CookieJar> {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new Error(`--cookie-jar: cannot read ${path}: ${(error as Error).message}`);
  }
  return jarFromNetscape(text);
}

/**
 * Writes the jar back to `path` (mode 0600: cookies are credentials), through a temporary file
 * renamed into place, so an interrupted write never leaves half a cookie file.
 */
export async function saveCookieJar(path: string, jar: CookieJar): Promise<void> {
  const text = await netscapeFromJar(jar);
  const temp = join(dirname(path), `.${randomBytes(6).toString('hex')}.cookies.tmp`);
  try {
    writeFileSync(temp, text, { mode: 0o600, flag: 'wx' });
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw new Error(`--cookie-jar: cannot write ${path}: ${(error as Error).message}`);
  }
}
