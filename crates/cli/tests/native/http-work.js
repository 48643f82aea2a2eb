// The per-request work of the HTTP stress test (server.js), also used by client.js to compute the expected body:
// JSON building and parsing, Buffers, a SHA-256 (OpenSSL allocates natively). Deterministic in n.
'use strict';
const crypto = require('crypto');

function makeBody(n) {
  const items = [];
  for (let i = 0; i < n; i++) items.push({ id: i, name: 'item-' + i, tags: ['x', String(n % 7)], v: i * 3 });
  const text = JSON.stringify(items);
  const parsed = JSON.parse(text);
  const buf = Buffer.concat([Buffer.from(text), Buffer.alloc(64 + n * 8, n % 251)]);
  let sum = 0;
  for (let i = 0; i < buf.length; i += 7) sum = (sum * 31 + buf[i]) >>> 0;
  const digest = crypto.createHash('sha256').update(buf).digest('hex');
  return JSON.stringify({ n, count: parsed.length, bytes: buf.length, sum, digest });
}

module.exports = { makeBody };
