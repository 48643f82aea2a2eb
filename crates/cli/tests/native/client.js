// Load for the HTTP stress test: CONC concurrent keep-alive connections to 127.0.0.1:PORT issue /work?n=… requests
// and compare every body with the expected one (computed here, outside the profiled process). Prints
// "progress N" every 200 responses; stops issuing requests when stdin closes, after MAX requests or MAX_MS, and
// prints "done N bad B" (exit 1 if any response was wrong).
'use strict';
const http = require('http');
const { makeBody } = require('./http-work');

const [port, conc, max, maxMs] = process.argv.slice(2).map(Number);
const agent = new http.Agent({ keepAlive: true, maxSockets: conc });
const expected = new Map();
const start = Date.now();
let next = 0, done = 0, bad = 0, inflight = 0, stopping = false;

process.stdin.on('end', () => { stopping = true; });
process.stdin.on('data', () => {});

function finish() {
  agent.destroy();
  console.log(`done ${done} bad ${bad}`);
  process.exitCode = bad ? 1 : 0;
}

function settle() {
  inflight--;
  done++;
  if (done % 200 === 0) console.log(`progress ${done}`);
  one();
}

function one() {
  if (stopping || next >= max || Date.now() - start > maxMs) {
    if (inflight === 0) finish();
    return;
  }
  const n = 20 + (next * 37) % 300;
  next++;
  inflight++;
  http.get({ host: '127.0.0.1', port, path: '/work?n=' + n, agent }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      let exp = expected.get(n);
      if (exp === undefined) {
        exp = makeBody(n);
        expected.set(n, exp);
      }
      if (res.statusCode !== 200 || body !== exp) {
        bad++;
        if (bad <= 5) console.error(`mismatch for n=${n}: status ${res.statusCode}, body ${body.slice(0, 120)}`);
      }
      settle();
    });
  }).on('error', (e) => {
    bad++;
    if (bad <= 5) console.error(`request error: ${e.message}`);
    settle();
  });
}

for (let k = 0; k < conc; k++) one();
