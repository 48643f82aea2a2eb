#!/usr/bin/env bash
# Overhead of `leakscope sample` (V8's sampling heap profiler at 512 KiB) on a busy Node server.
#
# Starts `node churn.js serve` (a leak-free scenario that allocates a lot per request) on 127.0.0.1 with its
# inspector already open (so attaching costs nothing), drives it with one continuous keep-alive HTTP load
# loop (node, bounded in time) that counts completed requests per 100 ms, and meanwhile alternates windows
# without and with `leakscope sample --inspect … --duration W` running. Each "with" window is compared with
# the "without" windows next to it in time, which keeps the comparison fair on a shared, noisy machine.
# It also reads the server's CPU time (/proc/PID/stat) at every window boundary: CPU per request.
#
#   bench/sample_overhead.sh [PAIRS=10] [WINDOW_SECONDS=4] [CONNECTIONS=16]
#
# Env: LEAKSCOPE (binary; default the target-sampling or target build), SCENARIOS (default
# /work/shared/scenarios), INTERVAL (default 512KiB). Loopback only; everything it starts is stopped.
set -euo pipefail

PAIRS=${1:-10}
WINDOW=${2:-4}
CONNS=${3:-16}
INTERVAL=${INTERVAL:-512KiB}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SCENARIOS=${SCENARIOS:-/work/shared/scenarios}
if [[ -z "${LEAKSCOPE:-}" ]]; then
  for candidate in "$ROOT/target-sampling/release/leakscope" "$ROOT/target-sampling/debug/leakscope" \
    "$ROOT/target/release/leakscope" "$ROOT/target/debug/leakscope"; do
    if [[ -x "$candidate" ]]; then LEAKSCOPE=$candidate; break; fi
  done
fi
[[ -x "${LEAKSCOPE:-}" ]] || { echo "build leakscope first (cargo build -p leakscope)" >&2; exit 2; }

WORK=$(mktemp -d)
SERVER_PID=""
LOAD_PID=""
cleanup() {
  [[ -n "$LOAD_PID" ]] && kill "$LOAD_PID" 2>/dev/null && wait "$LOAD_PID" 2>/dev/null
  [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/load.js" <<'JS'
// Keep-alive GET loop against 127.0.0.1:PORT for SECONDS with CONNS requests in flight; prints
// "EPOCH_MS COUNT" for every 100 ms bucket.
const http = require('http');
const [port, seconds, conns] = process.argv.slice(2).map(Number);
const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
const end = Date.now() + seconds * 1000;
const buckets = new Map();
let active = conns;
function one() {
  if (Date.now() >= end) {
    if (--active === 0) {
      for (const [t, n] of [...buckets].sort((a, b) => a[0] - b[0])) process.stdout.write(`${t} ${n}\n`);
      agent.destroy();
    }
    return;
  }
  http.get({ host: '127.0.0.1', port, path: '/cart', agent }, (res) => {
    res.resume();
    res.on('end', () => {
      const b = Math.floor(Date.now() / 100) * 100;
      buckets.set(b, (buckets.get(b) || 0) + 1);
      one();
    });
  }).on('error', () => setTimeout(one, 10));
}
for (let i = 0; i < conns; i++) one();
JS

node --inspect=127.0.0.1:0 "$SCENARIOS/churn.js" serve --port 0 > "$WORK/server.out" 2> "$WORK/server.err" &
SERVER_PID=$!
for _ in $(seq 100); do grep -q '^listening' "$WORK/server.out" 2>/dev/null && break; sleep 0.1; done
PORT=$(awk '/^listening/{print $2}' "$WORK/server.out")
INSPECT=$(sed -n 's#.*ws://\([0-9.]*:[0-9]*\)/.*#\1#p' "$WORK/server.err" | head -1)
[[ -n "$PORT" && -n "$INSPECT" ]] || { echo "server did not start" >&2; cat "$WORK/server.out" "$WORK/server.err" >&2; exit 1; }
echo "# server pid $SERVER_PID port $PORT inspector $INSPECT; $PAIRS pairs of ${WINDOW}s windows, $CONNS connections, interval $INTERVAL"
echo "# leakscope: $LEAKSCOPE; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
now_ms() { date +%s%3N; }

WARMUP=6
TOTAL=$((WARMUP + PAIRS * 2 * (WINDOW + 1) + 4))
node "$WORK/load.js" "$PORT" "$TOTAL" "$CONNS" > "$WORK/buckets.txt" &
LOAD_PID=$!
sleep "$WARMUP"

: > "$WORK/windows.txt"   # MODE START_MS END_MS TICKS0 TICKS1
for p in $(seq "$PAIRS"); do
  for mode in without with; do
    t0=$(now_ms); k0=$(ticks)
    if [[ $mode == without ]]; then
      sleep "$WINDOW"
    else
      "$LEAKSCOPE" sample --inspect "$INSPECT" --duration "${WINDOW}s" --interval "$INTERVAL" \
        -o "$WORK/p$p.heapprofile" --top 1 -q > /dev/null 2> "$WORK/sample.err" \
        || { echo "leakscope sample failed:" >&2; cat "$WORK/sample.err" >&2; exit 1; }
      [[ -s "$WORK/p$p.heapprofile" ]] || { echo "no profile written" >&2; exit 1; }
    fi
    t1=$(now_ms); k1=$(ticks)
    echo "$mode $t0 $t1 $k0 $k1" >> "$WORK/windows.txt"
    sleep 1   # gap: attach/detach edges fall outside the windows
  done
done
wait "$LOAD_PID"
LOAD_PID=""

node -e '
const fs = require("fs");
const buckets = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => l.split(" ").map(Number));
const hz = Number(process.argv[3]);
const windows = fs.readFileSync(process.argv[2], "utf8").trim().split("\n").map((l) => {
  const [mode, t0, t1, k0, k1] = l.split(" ");
  // Whole 100 ms buckets inside the window, skipping 300 ms at each edge.
  const from = Number(t0) + 300, to = Number(t1) - 300;
  const inside = buckets.filter(([t]) => t >= from && t + 100 <= to);
  const reqs = inside.reduce((s, [, n]) => s + n, 0);
  const secs = inside.length / 10;
  const allReqs = buckets.filter(([t]) => t >= Number(t0) && t < Number(t1)).reduce((s, [, n]) => s + n, 0);
  return { mode, rps: reqs / secs, cpuUs: ((Number(k1) - Number(k0)) / hz) * 1e6 / Math.max(1, allReqs) };
});
const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
const median = (a) => { const v = [...a].sort((x, y) => x - y); const m = v.length >> 1; return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2; };
const ratios = [], cpuRatios = [];
for (let i = 0; i < windows.length; i++) {
  const w = windows[i];
  if (w.mode !== "with") continue;
  // Compare with the mean of the neighbouring "without" windows (before and after).
  const nb = [windows[i - 1], windows[i + 1]].filter((x) => x && x.mode === "without");
  const base = mean(nb.map((x) => x.rps)), baseCpu = mean(nb.map((x) => x.cpuUs));
  ratios.push(w.rps / base); cpuRatios.push(w.cpuUs / baseCpu);
  console.log(`pair ${ratios.length}: without ${base.toFixed(0)} req/s (${baseCpu.toFixed(0)} µs CPU/req), with sample ${w.rps.toFixed(0)} req/s (${w.cpuUs.toFixed(0)} µs CPU/req)`);
}
const wo = windows.filter((w) => w.mode === "without"), wi = windows.filter((w) => w.mode === "with");
console.log(`mean throughput: without ${mean(wo.map((w) => w.rps)).toFixed(0)} req/s, with sample ${mean(wi.map((w) => w.rps)).toFixed(0)} req/s`);
const q = (a, p) => { const v = [...a].sort((x, y) => x - y); return v[Math.min(v.length - 1, Math.floor(p * v.length))]; };
console.log(`throughput change with sampling: median ${(100 * (median(ratios) - 1)).toFixed(2)}% (pairs from ${(100 * (q(ratios, 0) - 1)).toFixed(1)}% to ${(100 * (q(ratios, 1) - 1)).toFixed(1)}%)`);
console.log(`server CPU per request change with sampling: median ${(100 * (median(cpuRatios) - 1)).toFixed(2)}%`);
' "$WORK/buckets.txt" "$WORK/windows.txt" "$(getconf CLK_TCK)"
