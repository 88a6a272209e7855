/**
 * What `require('dogged')` gets: dogged is an ES module only, and Node 20 cannot require() one
 * by default. Instead of Node's bare ERR_PACKAGE_PATH_NOT_EXPORTED, a clear error that says what
 * to do.
 */
const error: Error & { code?: string } = new Error(
  "dogged is an ES module: use import, or await import('dogged') from CommonJS",
);
error.code = 'ERR_REQUIRE_ESM';
throw error;
