// Calls the addon's leaking function from a named JS function every 100 ms, amid Buffer/JSON churn.
const addon = require(process.argv[2]);
const runMs = Number(process.argv[3] || 3000);
function callLeakyAddon() {
  for (let i = 0; i < 200; i++) addon.leak(4096);
}
function churn() {
  let s = 0;
  for (let i = 0; i < 300; i++) s += JSON.stringify({ i, b: Buffer.alloc(8192).length }).length;
  return s;
}
const start = Date.now();
const t = setInterval(() => {
  churn();
  callLeakyAddon();
  if (Date.now() - start > runMs) {
    clearInterval(t);
    console.log('done');
  }
}, 100);
