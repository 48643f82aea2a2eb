// Pools the per-round results of several `VERBOSE=1 CONTROL=… bench/sample_overhead.sh` runs (their
// "round N ARM: … req/s, … µs CPU/req" lines) and compares the arms round by round:
//   node bench/sample_overhead_pool.js run1.log run2.log
// Prints, per pair of arms and metric, the median ratio with a bootstrap 95% interval (fixed seed) and the
// geometric mean ratio with a 95% interval from the spread of the log ratios.
const fs = require('fs');
const rows = [];
for (const [i, f] of process.argv.slice(2).entries()) {
  for (const l of fs.readFileSync(f, 'utf8').split('\n')) {
    const m = l.match(/^round (\d+) (\S+): (\d+) req\/s, (\d+) µs CPU\/req/);
    if (m) rows.push({ run: i, round: +m[1], arm: m[2].replace(':', ''), rps: +m[3], cpu: +m[4] });
  }
}
const get = (r, arm) => rows.find((x) => x.run === r.run && x.round === r.round && x.arm === arm);
const median = (a) => { const v = [...a].sort((x, y) => x - y); const m = v.length >> 1; return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2; };
const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
let seed = 12345; const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const boot = (a) => { const m = []; for (let i = 0; i < 4000; i++) m.push(median(a.map(() => a[Math.floor(rand() * a.length)]))); m.sort((x, y) => x - y); return [m[100], m[3899]]; };
const geo = (a) => { const l = a.map(Math.log), m = mean(l); const sd = Math.sqrt(l.reduce((s, x) => s + (x - m) ** 2, 0) / (l.length - 1)); const h = 1.96 * sd / Math.sqrt(l.length); return [Math.exp(m), Math.exp(m - h), Math.exp(m + h)]; };
const pct = (r) => `${r >= 1 ? '+' : ''}${(100 * (r - 1)).toFixed(1)}%`;
const keys = rows.filter((x) => x.arm === 'without');
const arms = [...new Set(rows.map((x) => x.arm))].filter((a) => a !== 'without');
const pairs = arms.map((a) => [a, 'without']);
for (let i = 0; i < arms.length; i++) for (let j = i + 1; j < arms.length; j++) pairs.push([arms[i], arms[j]]);
for (const [a, b] of pairs) {
  for (const metric of ['rps', 'cpu']) {
    const r = keys.filter((k) => get(k, a) && get(k, b)).map((k) => get(k, a)[metric] / get(k, b)[metric]);
    const [lo, hi] = boot(r), [g, gl, gh] = geo(r);
    console.log(`${a} vs ${b} ${metric} (${r.length} rounds): median ${pct(median(r))} [95% ${pct(lo)} … ${pct(hi)}], geo ${pct(g)} [${pct(gl)} … ${pct(gh)}]`);
  }
}
