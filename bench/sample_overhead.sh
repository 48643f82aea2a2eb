#!/usr/bin/env bash
# Overhead of `leakscope sample` (V8's sampling heap profiler at 512 KiB) on a busy Node server.
#
# Starts `node churn.js serve` (a leak-free scenario that allocates a lot per request) on 127.0.0.1 with its
# inspector already open (so attaching costs nothing), drives it with one continuous keep-alive HTTP load
# loop (node, running until the last window ends) that counts completed requests per 100 ms, and meanwhile
# runs rounds of interleaved windows: one *without* anything attached and one *with*
# `leakscope sample --inspect … --duration W --interval INTERVAL` running (plus, with CONTROL set, one with
# `--interval CONTROL`, e.g. 1GiB: the sampler attached but taking ~no samples). The order of the windows
# rotates from round to round (A B, B A, A B, … — every arm in every position equally often), and each arm is
# compared with the *without* window of its own round, so a load change on a shared machine hits both sides
# of a pair and a slow drift cancels over the rounds. It also reads the server's CPU time (/proc/PID/stat) at
# every window boundary: CPU per request.
#
#   bench/sample_overhead.sh [ROUNDS=10] [WINDOW_SECONDS=4] [CONNECTIONS=16]
#   CONTROL=1GiB bench/sample_overhead.sh 30 5 16      # three arms per round: without, 512 KiB, 1 GiB
#
# Env: LEAKSCOPE (binary; default $CARGO_TARGET_DIR's or the target-sampling/target release, then debug
# build), SCENARIOS (default /work/shared/scenarios), INTERVAL (default 512KiB), CONTROL (unset: two arms).
# Loopback only; everything it starts is stopped.
set -euo pipefail

ROUNDS=${1:-10}
WINDOW=${2:-4}
CONNS=${3:-16}
INTERVAL=${INTERVAL:-512KiB}
CONTROL=${CONTROL:-}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SCENARIOS=${SCENARIOS:-/work/shared/scenarios}
if [[ -z "${LEAKSCOPE:-}" ]]; then
  for candidate in ${CARGO_TARGET_DIR:+"$CARGO_TARGET_DIR/release/leakscope"} \
    "$ROOT/../target-sampling/release/leakscope" "$ROOT/target/release/leakscope" \
    ${CARGO_TARGET_DIR:+"$CARGO_TARGET_DIR/debug/leakscope"} "$ROOT/../target-sampling/debug/leakscope" \
    "$ROOT/target/debug/leakscope"; do
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
// Keep-alive GET loop against 127.0.0.1:PORT with CONNS requests in flight until SIGTERM (or SECONDS at most);
// then prints "EPOCH_MS COUNT" for every 100 ms bucket.
const http = require('http');
const [port, seconds, conns] = process.argv.slice(2).map(Number);
const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
const end = Date.now() + seconds * 1000;
const buckets = new Map();
let active = conns;
function report() {
  for (const [t, n] of [...buckets].sort((a, b) => a[0] - b[0])) process.stdout.write(`${t} ${n}\n`);
  agent.destroy();
  process.exit(0);
}
process.on('SIGTERM', report);
function one() {
  if (Date.now() >= end) {
    if (--active === 0) report();
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
ARMS=(without "with:$INTERVAL")
[[ -n "$CONTROL" ]] && ARMS+=("with:$CONTROL")
echo "# server pid $SERVER_PID port $PORT inspector $INSPECT; $ROUNDS rounds of ${#ARMS[@]} interleaved ${WINDOW}s windows (${ARMS[*]}), $CONNS connections"
echo "# leakscope: $LEAKSCOPE; $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
now_ms() { date +%s%3N; }

WARMUP=6
node "$WORK/load.js" "$PORT" 86400 "$CONNS" > "$WORK/buckets.txt" &
LOAD_PID=$!
sleep "$WARMUP"

: > "$WORK/windows.txt"   # ROUND ARM START_MS END_MS TICKS0 TICKS1
for r in $(seq "$ROUNDS"); do
  # Rotate the order: round r starts with arm (r-1) mod #arms.
  for k in $(seq 0 $((${#ARMS[@]} - 1))); do
    arm=${ARMS[$(((r - 1 + k) % ${#ARMS[@]}))]}
    t0=$(now_ms); k0=$(ticks)
    if [[ $arm == without ]]; then
      sleep "$WINDOW"
    else
      "$LEAKSCOPE" sample --inspect "$INSPECT" --duration "${WINDOW}s" --interval "${arm#with:}" \
        -o "$WORK/p.heapprofile" --top 1 -q > /dev/null 2> "$WORK/sample.err" \
        || { echo "leakscope sample failed:" >&2; cat "$WORK/sample.err" >&2; exit 1; }
      [[ -s "$WORK/p.heapprofile" ]] || { echo "no profile written" >&2; exit 1; }
      rm -f "$WORK/p.heapprofile"
    fi
    t1=$(now_ms); k1=$(ticks)
    echo "$r $arm $t0 $t1 $k0 $k1" >> "$WORK/windows.txt"
    sleep 1   # gap: attach/detach edges fall outside the windows
  done
done
kill -TERM "$LOAD_PID"
wait "$LOAD_PID" || true
LOAD_PID=""

node -e '
const fs = require("fs");
const buckets = fs.readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => l.split(" ").map(Number));
const hz = Number(process.argv[3]);
const windows = fs.readFileSync(process.argv[2], "utf8").trim().split("\n").map((l) => {
  const [round, arm, t0, t1, k0, k1] = l.split(" ");
  // Whole 100 ms buckets inside the window, skipping 300 ms at each edge.
  const from = Number(t0) + 300, to = Number(t1) - 300;
  const inside = buckets.filter(([t]) => t >= from && t + 100 <= to);
  const reqs = inside.reduce((s, [, n]) => s + n, 0);
  const secs = inside.length / 10;
  const allReqs = buckets.filter(([t]) => t >= Number(t0) && t < Number(t1)).reduce((s, [, n]) => s + n, 0);
  return { round: Number(round), arm, rps: reqs / secs, cpuUs: ((Number(k1) - Number(k0)) / hz) * 1e6 / Math.max(1, allReqs) };
});
const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
const median = (a) => { const v = [...a].sort((x, y) => x - y); const m = v.length >> 1; return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2; };
const pct = (r) => `${r >= 1 ? "+" : ""}${(100 * (r - 1)).toFixed(1)}%`;
// 95% interval of the median ratio: percentile bootstrap over rounds (fixed seed, reproducible).
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
function bootMedian(a) {
  const meds = [];
  for (let i = 0; i < 2000; i++) meds.push(median(a.map(() => a[Math.floor(rand() * a.length)])));
  meds.sort((x, y) => x - y);
  return [meds[50], meds[1949]];
}
// Geometric mean ratio with a 95% interval from the spread of the log ratios.
function geo(a) {
  const logs = a.map(Math.log), m = mean(logs);
  const sd = Math.sqrt(logs.reduce((s, x) => s + (x - m) ** 2, 0) / Math.max(1, logs.length - 1));
  const half = 1.96 * sd / Math.sqrt(logs.length);
  return [Math.exp(m), Math.exp(m - half), Math.exp(m + half)];
}
const rounds = [...new Set(windows.map((w) => w.round))];
const arms = [...new Set(windows.map((w) => w.arm))].filter((a) => a !== "without");
const base = windows.filter((w) => w.arm === "without");
console.log(`without: mean ${mean(base.map((w) => w.rps)).toFixed(0)} req/s, ${mean(base.map((w) => w.cpuUs)).toFixed(0)} µs server CPU/request`);
for (const arm of arms) {
  const tput = [], cpu = [];
  for (const r of rounds) {
    const a = windows.find((w) => w.round === r && w.arm === arm), b = windows.find((w) => w.round === r && w.arm === "without");
    if (!a || !b || !(a.rps > 0) || !(b.rps > 0)) continue;
    tput.push(a.rps / b.rps); cpu.push(a.cpuUs / b.cpuUs);
  }
  const mine = windows.filter((w) => w.arm === arm);
  const [tl, th] = bootMedian(tput), [cl, ch] = bootMedian(cpu);
  const [tg, tgl, tgh] = geo(tput), [cg, cgl, cgh] = geo(cpu);
  console.log(`${arm} (${tput.length} rounds): mean ${mean(mine.map((w) => w.rps)).toFixed(0)} req/s, ${mean(mine.map((w) => w.cpuUs)).toFixed(0)} µs CPU/request`);
  console.log(`  throughput vs without, same round: median ${pct(median(tput))} [95% ${pct(tl)} … ${pct(th)}], geometric mean ${pct(tg)} [${pct(tgl)} … ${pct(tgh)}], rounds from ${pct(Math.min(...tput))} to ${pct(Math.max(...tput))}, slower in ${tput.filter((x) => x < 1).length}/${tput.length}`);
  console.log(`  server CPU per request vs without: median ${pct(median(cpu))} [95% ${pct(cl)} … ${pct(ch)}], geometric mean ${pct(cg)} [${pct(cgl)} … ${pct(cgh)}], higher in ${cpu.filter((x) => x > 1).length}/${cpu.length}`);
}
if (process.env.VERBOSE) for (const w of windows) console.log(`round ${w.round} ${w.arm}: ${w.rps.toFixed(0)} req/s, ${w.cpuUs.toFixed(0)} µs CPU/req`);
' "$WORK/buckets.txt" "$WORK/windows.txt" "$(getconf CLK_TCK)"
