// HTTP server for the stress test: JSON/Buffer work per request (http-work.js). Listens on 127.0.0.1 (a free
// port, written to argv[2]); GET /quit closes it (and its keep-alive connections) so the process exits normally.
// Prints the number of /work requests served at exit.
'use strict';
const http = require('http');
const fs = require('fs');
const { makeBody } = require('./http-work');

let served = 0;
const server = http.createServer((req, res) => {
  if (req.url === '/quit') {
    res.end('bye\n', () => {
      server.close();
      server.closeAllConnections();
    });
    return;
  }
  const n = Number(new URL(req.url, 'http://localhost').searchParams.get('n') || 10);
  const body = makeBody(n);
  served++;
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => {
  const tmp = process.argv[2] + '.tmp';
  fs.writeFileSync(tmp, String(server.address().port));
  fs.renameSync(tmp, process.argv[2]);
});
process.on('exit', () => console.log(`served ${served}`));
