#!/usr/bin/env bash
# Times `leakscope leaks` on three snapshots against one `leakscope summary` of the largest and against
# `memlab find-leaks` (with a leak filter that accepts every JS object and closure, since memlab's default finds nothing in Node),
# and scores leakscope's findings against bench/gen-snapshot.truth.json.
#
#   bench/leaks.sh DIR        (DIR holds big1..3.heapsnapshot from ../shared/bench/gen-snapshot.js)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
shared=${LEAKSCOPE_SHARED:-$root/../shared}
dir=$1
bin=$root/target/release/leakscope
(cd "$root" && cargo build --release --quiet -p leakscope)
s=("$dir/big1.heapsnapshot" "$dir/big2.heapsnapshot" "$dir/big3.heapsnapshot")
t() { /usr/bin/time -o /tmp/leakscope-bench-time -f "%e s, %M KB" "$@" >/dev/null 2>&1 || true; tail -1 /tmp/leakscope-bench-time; }
echo "leakscope summary big3: $(t "$bin" summary "${s[2]}" --quiet)"
echo "leakscope leaks 1 2 3:  $(t "$bin" leaks "${s[@]}" --quiet)"
"$bin" leaks "${s[@]}" --json --quiet > /tmp/leakscope-bench-leaks.json || true
echo "score: $(node "$shared/scenarios/tools/score.js" "$here/gen-snapshot.truth.json" /tmp/leakscope-bench-leaks.json || true)"
if [[ ${MEMLAB:-1} == 1 ]]; then
  mdir=$("$shared/oracles/memlab/install.sh")
  echo "module.exports = { leakFilter: (node) => node.type === 'object' || node.type === 'closure' };" > /tmp/leakscope-accept-all.js
  echo "memlab find-leaks:      $(cd "$mdir" && t npx memlab find-leaks --baseline "${s[0]}" --target "${s[1]}" --final "${s[2]}" --leak-filter /tmp/leakscope-accept-all.js)"
fi
