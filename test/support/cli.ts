/**
 * How the tests run the command line: the built CLI (`dist/cli/main.js`, as an installed
 * `dogged` runs), not the TypeScript sources through a loader, which costs about half a second
 * of CPU per process. test/global-setup.ts brings `dist/` up to date before any test runs.
 */
export const CLI_ENTRY = 'dist/cli/main.js';
