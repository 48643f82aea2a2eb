// Leaks 64 KiB Buffers from leakyBuffers() every 100 ms while churning JSON and Buffers; runs for RUN_MS.
const keep = [];
function leakyBuffers(n) {
  for (let i = 0; i < n; i++) keep.push(Buffer.allocUnsafeSlow(64 * 1024));
}
function churn() {
  let s = 0;
  for (let i = 0; i < 300; i++) {
    const b = Buffer.alloc(16384 + (i % 100));
    s += b.length + JSON.parse(JSON.stringify({ a: i, b: 'x'.repeat(200) })).a;
  }
  return s;
}
const runMs = Number(process.argv[2] || 3000);
const start = Date.now();
const timer = setInterval(() => {
  churn();
  leakyBuffers(40);
  if (Date.now() - start > runMs) {
    clearInterval(timer);
    console.log('done', keep.length);
  }
}, 100);
