'use strict';
// leakscope's demo app: a small order service with two memory leaks and two things that only look like
// leaks. Run by `leakscope demo`; `node app.js --port 3000` serves it on its own.
//
//   LEAK 1  every request subscribes to the module-level `priceFeed` emitter and never unsubscribes: each
//           listener closure keeps the request's whole context (quote and line items) alive.
//   LEAK 2  rendered receipts are cached in `receiptCache` under a fresh id per request: never hit, never
//           evicted.
//   fine    `recentUsers` is an LRU capped at 200 entries (churns, does not grow).
//   fine    JSON parsing, string building and promises per request are garbage by the next GC.
const http = require('http');
const crypto = require('crypto');
const { EventEmitter } = require('events');

const priceFeed = new EventEmitter();
priceFeed.setMaxListeners(0); // "fixed" the MaxListenersExceededWarning
const receiptCache = new Map();
const recentUsers = new Map();
const USER_CAP = 200;

class OrderContext {
  constructor(id, user) {
    this.id = id;
    this.user = user;
    this.items = Array.from({ length: 4 }, (_, k) => ({ sku: `SKU-${(id * 7 + k) % 997}`, qty: 1 + (k % 3) }));
    this.quote = { currency: 'EUR', total: 0, history: [] };
  }
}

function rememberUser(user) {
  recentUsers.delete(user);
  recentUsers.set(user, { user, seen: Date.now() });
  if (recentUsers.size > USER_CAP) recentUsers.delete(recentUsers.keys().next().value);
}

function renderReceipt(order) {
  const lines = order.items.map((it) => `${it.sku} × ${it.qty}`).join('\n');
  return { orderId: order.id, text: `Receipt #${order.id}\n${lines}\n`, renderedAt: Date.now() };
}

let nextId = 0;
function handleOrder(user) {
  const order = new OrderContext(nextId++, user);
  // BUG (leak 1): should be removed when the response finishes.
  priceFeed.on('price', function onPrice(update) {
    order.quote.history.push(update);
  });
  // BUG (leak 2): keyed by a fresh id, so the cache only ever grows.
  const receipt = renderReceipt(order);
  receiptCache.set(crypto.randomUUID(), receipt);
  rememberUser(user);
  const churn = JSON.parse(JSON.stringify({ order: order.items, at: new Date().toISOString() }));
  return { id: order.id, items: churn.order.length, receipt: receipt.text.length };
}

const server = http.createServer((req, res) => {
  req.resume();
  const user = `user-${Math.floor(Math.random() * 1000)}`;
  const body = JSON.stringify(handleOrder(user));
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 24 * 3600 * 1000;
server.requestTimeout = 0;

const flag = process.argv.indexOf('--port');
const port = flag >= 0 ? Number(process.argv[flag + 1]) : Number(process.env.PORT || 0);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
