#!/usr/bin/env node
// npm `preinstall`: in this repository better-sqlite3 is compiled from source
// (.prebuild-installrc: buildFromSource=true), which needs make, a C++ compiler and Python 3.
// Without them node-gyp fails after a while in a wall of `gyp ERR!` lines that bury the cause;
// this says it first, in one line, and stops the install. Installed as a dependency (no
// .prebuild-installrc here: better-sqlite3 downloads a prebuilt binary) it checks nothing.
// DOGGED_SKIP_BUILD_TOOLS_CHECK=1 skips the check. No dependencies: it runs before any exist.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function buildsFromSource() {
  try {
    return /^\s*buildFromSource\s*=\s*true\s*$/m.test(
      readFileSync(join(root, '.prebuild-installrc'), 'utf8'),
    );
  } catch {
    return false;
  }
}

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Whether `command` (a name looked up on PATH, or a path) can be run. */
function found(command) {
  if (!command) return false;
  const name = command.trim().split(/\s+/)[0] ?? '';
  if (isAbsolute(name) || name.includes('/')) return executable(name);
  return (process.env.PATH ?? '')
    .split(delimiter)
    .some((dir) => dir && executable(join(dir, name)));
}

function main() {
  if (process.platform === 'win32' || !buildsFromSource()) return 0;
  const skip = process.env.DOGGED_SKIP_BUILD_TOOLS_CHECK;
  if (skip && skip !== '0' && skip !== 'false') return 0;
  const env = process.env;
  const missing = [];
  if (![env.MAKE, 'make', 'gmake'].some(found)) missing.push('make');
  if (![env.CXX, 'g++', 'c++', 'clang++'].some(found)) missing.push('a C++ compiler (g++)');
  if (![env.npm_config_python, env.PYTHON, 'python3', 'python'].some(found))
    missing.push('python3');
  if (missing.length === 0) return 0;
  const fix =
    process.platform === 'darwin'
      ? 'xcode-select --install'
      : 'sudo apt-get install -y make g++ python3 (Debian/Ubuntu; Fedora: sudo dnf install make gcc-c++ python3)';
  console.error(
    `dogged: npm install compiles better-sqlite3 from source and needs ${missing.join(', ')}: ${fix}, then run npm install again (DOGGED_SKIP_BUILD_TOOLS_CHECK=1 skips this check).`,
  );
  return 1;
}

process.exitCode = main();
