#!/usr/bin/env bash
# Overhead of leakscope's native sampling profiler (LD_PRELOAD, 512 KiB interval) against no profiler, heaptrack
# and valgrind massif, on a C malloc loop and a Node JSON/Buffer-heavy loop. Median of RUNS wall-clock runs.
#
#   bench/native_overhead.sh            # RUNS=3; MASSIF_RUNS=3 (massif is slow: set MASSIF_RUNS=1 to save time)
#   C_ITERS=20000000 NODE_ROUNDS=300 bench/native_overhead.sh
#
# Needs cc, node, heaptrack, valgrind; builds crates/preload with cargo. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
MASSIF_RUNS=${MASSIF_RUNS:-$RUNS}
C_ITERS=${C_ITERS:-20000000}
NODE_ROUNDS=${NODE_ROUNDS:-300}
INTERVAL=${INTERVAL:-524288}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d /tmp/leakscope-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cargo build -q -j1 --release -p leakscope-preload
LIB=${LEAKSCOPE_PRELOAD:-$(realpath "$TARGET/release/libleakscope_preload.so")}
cc -O2 -fno-omit-frame-pointer -o "$WORK/malloc_loop" bench/native/malloc_loop.c

# median_time RUNS CMD... : prints "WALL CPU", the medians over RUNS runs of wall-clock seconds and of CPU seconds
# (user + system, the process and its children). CPU time is the steadier figure on a shared machine.
median_time() {
  local runs=$1; shift
  local walls=() cpus=()
  for _ in $(seq "$runs"); do
    local line
    /usr/bin/time -o "$WORK/time.txt" -f "%e %U %S" "$@" >/dev/null 2>&1 || true
    line=$(tail -n 1 "$WORK/time.txt")
    walls+=("$(echo "$line" | awk '{print $1}')")
    cpus+=("$(echo "$line" | awk '{print $2 + $3}')")
  done
  local w c
  w=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]}')
  c=$(printf '%s\n' "${cpus[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]}')
  echo "$w $c"
}

PRELOAD=(env LD_PRELOAD="$LIB" LEAKSCOPE_INTERVAL="$INTERVAL" LEAKSCOPE_OUTPUT="$WORK/dump-%p.jsonl")
HEAPTRACK=(heaptrack -o "$WORK/ht")
MASSIF=(valgrind --tool=massif --massif-out-file="$WORK/massif.out")

echo "| workload | measure | baseline | leakscope 512 KiB | heaptrack | valgrind massif |"
echo "|---|---|---|---|---|---|"
for w in c node; do
  if [ "$w" = c ]; then
    cmd=("$WORK/malloc_loop" "$C_ITERS"); name="C malloc loop ($C_ITERS allocations)"
  else
    cmd=(node "$(pwd)/bench/native/json_buffer.js" "$NODE_ROUNDS"); name="node JSON/Buffer loop ($NODE_ROUNDS rounds)"
  fi
  read -r base_w base_c < <(median_time "$RUNS" "${cmd[@]}")
  read -r ls_w ls_c < <(median_time "$RUNS" "${PRELOAD[@]}" "${cmd[@]}")
  read -r ht_w ht_c < <(median_time "$RUNS" "${HEAPTRACK[@]}" "${cmd[@]}")
  read -r ms_w ms_c < <(median_time "$MASSIF_RUNS" "${MASSIF[@]}" "${cmd[@]}")
  rel() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f×", a / b}'; }
  echo "| $name | wall s | $base_w | $ls_w ($(rel "$ls_w" "$base_w")) | $ht_w ($(rel "$ht_w" "$base_w")) | $ms_w ($(rel "$ms_w" "$base_w")) |"
  echo "| | CPU s (user+sys) | $base_c | $ls_c ($(rel "$ls_c" "$base_c")) | $ht_c ($(rel "$ht_c" "$base_c")) | $ms_c ($(rel "$ms_c" "$base_c")) |"
done

# Interleaved A/B (baseline, leakscope, baseline, …) with more runs: on a shared machine this cancels most drift.
AB_RUNS=${AB_RUNS:-11}
echo
echo "Interleaved A/B, median of $AB_RUNS pairs (CPU s, user+sys):"
echo
echo "| workload | baseline | leakscope 512 KiB | overhead |"
echo "|---|---|---|---|"
for w in c node; do
  if [ "$w" = c ]; then
    cmd=("$WORK/malloc_loop" "$C_ITERS"); name="C malloc loop"
  else
    cmd=(node "$(pwd)/bench/native/json_buffer.js" "$NODE_ROUNDS"); name="node JSON/Buffer loop"
  fi
  a=(); b=()
  for _ in $(seq "$AB_RUNS"); do
    read -r _ ca < <(median_time 1 "${cmd[@]}")
    read -r _ cb < <(median_time 1 "${PRELOAD[@]}" "${cmd[@]}")
    a+=("$ca"); b+=("$cb")
  done
  ma=$(printf '%s\n' "${a[@]}" | sort -g | awk '{x[NR]=$1} END {printf "%.3f", x[int((NR+1)/2)]}')
  mb=$(printf '%s\n' "${b[@]}" | sort -g | awk '{x[NR]=$1} END {printf "%.3f", x[int((NR+1)/2)]}')
  echo "| $name | $ma | $mb | $(awk -v a="$ma" -v b="$mb" 'BEGIN {printf "%+.1f%%", 100 * (b - a) / a}') |"
done
