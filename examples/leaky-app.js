'use strict';
// A small leaky service for trying leakscope: every "request" subscribes a listener to a long-lived
// EventEmitter and caches a session that is never evicted. It writes three heap snapshots, one per round.
//
//   node examples/leaky-app.js OUTDIR
const v8 = require('v8');
const path = require('path');
const fs = require('fs');
const { EventEmitter } = require('events');

const outDir = process.argv[2] || '.';
fs.mkdirSync(outDir, { recursive: true });
v8.setFlagsFromString('--expose-gc');
const gc = require('vm').runInNewContext('gc');

const bus = new EventEmitter();
bus.setMaxListeners(0);
const sessions = new Map();

class Session {
  constructor(id) {
    this.id = id;
    this.createdAt = Date.now();
    this.profile = { name: `user-${id}`, tags: ['a', 'b', 'c'], bio: 'x'.repeat(200) };
  }
}

function handleRequest(id) {
  const session = new Session(id);
  sessions.set(`sess-${id}`, session);
  bus.on('config-changed', function onConfigChanged() {
    session.stale = true;
  });
}

let next = 0;
for (let round = 1; round <= 3; round++) {
  for (let i = 0; i < 3000; i++) handleRequest(next++);
  gc();
  gc();
  const file = path.join(outDir, `app-${round}.heapsnapshot`);
  v8.writeHeapSnapshot(file);
  console.log(file);
}
