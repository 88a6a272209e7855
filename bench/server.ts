/**
 * A plain keep-alive HTTP server for the benchmarks, run in its own process so that it does not
 * share the client's event loop. Prints its port on stdout. Every response carries a 1 KiB body.
 */
import { createServer } from 'node:http';

const body = Buffer.alloc(1024, 'x');
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address === 'object') process.stdout.write(`${address.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('disconnect', () => process.exit(0));
