#!/usr/bin/env bash
# Times `leakscope summary` against memlab's full analysis and Chrome DevTools' own worker (the oracle) on the
# same snapshot, in one run: median wall time of RUNS runs, and peak RSS.
#
#   bench/compare.sh FILE.heapsnapshot [FILE ...]      (RUNS=3 PEERS=memlab,devtools by default)
#
# Files: node ../shared/bench/gen-snapshot.js DIR 20000 (third snapshot ≈ 340 MB), ... DIR 70000 (≈ 1.2 GB).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
shared=${LEAKSCOPE_SHARED:-$root/../shared}
runs=${RUNS:-3}
peers=${PEERS:-memlab,devtools}
bin=${CARGO_TARGET_DIR:-$root/target}/release/leakscope
(cd "$root" && cargo build --release --quiet -p leakscope)

measure() { # label, command...: prints "median_seconds peak_rss_mb"
  local label=$1; shift
  local times=() rss=0
  for _ in $(seq "$runs"); do
    local out
    /usr/bin/time -o /tmp/leakscope-bench-time -f "%e %M" "$@" >/dev/null 2>/dev/null || true
    out=$(tail -1 /tmp/leakscope-bench-time)
    times+=("${out%% *}")
    local r=${out##* }
    (( r > rss )) && rss=$r
  done
  local median
  median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  echo "$median $((rss / 1024))"
}

echo "| file | size | tool | median wall (s) | peak RSS (MB) | RSS / file |"
echo "|---|---|---|---|---|---|"
for file in "$@"; do
  size_mb=$(( $(stat -c %s "$file") / 1024 / 1024 ))
  row() { echo "| $(basename "$file") | ${size_mb} MB | $1 | $2 | $3 | $(awk -v r="$3" -v s="$size_mb" 'BEGIN{printf "%.2f", r/s}') |"; }
  read -r t m < <(measure leakscope "$bin" summary "$file" --quiet)
  row "leakscope summary" "$t" "$m"
  if [[ $peers == *memlab* ]]; then
    dir=$("$shared/oracles/memlab/install.sh")
    read -r t m < <(measure memlab node --max-old-space-size=16000 "$dir/dump.js" "$file" /tmp/leakscope-bench-memlab.tsv)
    row "memlab (full analysis)" "$t" "$m"
  fi
  if [[ $peers == *devtools* ]]; then
    dir=$("$shared/oracles/devtools/install.sh")
    read -r t m < <(measure devtools node --max-old-space-size=16000 "$dir/dist/oracle.cjs" --no-nodes "$file" /tmp/leakscope-bench-devtools)
    row "DevTools worker (oracle)" "$t" "$m"
  fi
done
