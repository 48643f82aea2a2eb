#!/usr/bin/env bash
# Live snapshot benchmark: in ONE node process holding a heap of N objects, time
#   (a) `leakscope snapshot --pid` (chunks streamed over the inspector to disk), with leakscope's max RSS, and
#   (b) `v8.writeHeapSnapshot()` inside the target (triggered by SIGUSR2),
# for the same heap. Bars (issue 5): leakscope's RSS < 64 MB for a 500 MB snapshot; time within 1.2x of (b).
#
#   bench/live-snapshot.sh [OBJECTS=2000000] [OUTDIR=/tmp/leakscope-bench]
# Uses $LEAKSCOPE (default: target-live/release/leakscope, built if missing). Needs GNU time (/usr/bin/time).
set -euo pipefail
N=${1:-2000000}
OUT=${2:-/tmp/leakscope-bench}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${LEAKSCOPE:-$ROOT/target-live/release/leakscope}
if [ ! -x "$BIN" ]; then
  (cd "$ROOT" && CARGO_TARGET_DIR=$ROOT/target-live cargo build -j1 --release -p leakscope)
fi
mkdir -p "$OUT"
rm -f "$OUT"/*.heapsnapshot
cat > "$OUT/heap.js" <<'JS'
const v8 = require('v8');
const n = Number(process.argv[2]);
globalThis.keep = Array.from({ length: n }, (_, i) => ({ i, s: 'item-' + i, a: [i, i + 1] }));
process.on('SIGUSR2', () => {
  const t = process.hrtime.bigint();
  const f = v8.writeHeapSnapshot(process.argv[3]);
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  console.log(`writeHeapSnapshot ${ms.toFixed(0)} ms ${require('fs').statSync(f).size} bytes`);
});
setInterval(() => {}, 1000);
console.log('ready ' + process.pid + ' heapUsed ' + process.memoryUsage().heapUsed);
JS
node --inspect-port=0 --max-old-space-size=8192 "$OUT/heap.js" "$N" "$OUT/node.heapsnapshot" > "$OUT/node.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do grep -q '^ready' "$OUT/node.log" && break; sleep 0.2; done
grep '^ready' "$OUT/node.log"
/usr/bin/time -f 'leakscope wall %e s, max RSS %M KB' "$BIN" snapshot --pid "$PID" --quiet -o "$OUT/leakscope.heapsnapshot" 2> "$OUT/time.log" | grep wrote
grep 'leakscope wall' "$OUT/time.log"
kill -USR2 "$PID"
for _ in $(seq 1 1200); do grep -q '^writeHeapSnapshot' "$OUT/node.log" && break; sleep 0.2; done
grep '^writeHeapSnapshot' "$OUT/node.log"
ls -l "$OUT"/*.heapsnapshot
