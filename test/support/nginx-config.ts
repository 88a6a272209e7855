import { join } from 'node:path';

/**
 * The top of an nginx.conf for a test's own nginx in `dir`: in the foreground, one worker (as
 * root, workers would run as "nobody" and could not use the 0700 temporary directory), its pid
 * file and error log in `dir`, and the `events` block.
 */
export function nginxMain(dir: string, workerConnections: number): string[] {
  return [
    'daemon off;',
    'master_process on;',
    'worker_processes 1;',
    ...(process.getuid?.() === 0 ? ['user root;'] : []),
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} notice;`,
    `events { worker_connections ${workerConnections}; }`,
  ];
}

/** The `http` block's temporary paths, all under `tmp` (nginx's defaults are not writable). */
export function nginxTempPaths(tmp: string): string[] {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
    (kind) => `  ${kind}_temp_path ${join(tmp, kind === 'client_body' ? 'body' : kind)};`,
  );
}
