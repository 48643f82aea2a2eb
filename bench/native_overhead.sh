#!/usr/bin/env bash
# Overhead of leakscope's native sampling profiler (LD_PRELOAD, default 512 KiB interval) on a C malloc loop and a
# Node JSON/Buffer-heavy loop, against no profiler, heaptrack and valgrind massif (same commands, same run).
#
#   bench/native_overhead.sh                          # RUNS=3 MASSIF_RUNS=3 AB_RUNS=21
#   C_ITERS=10000000 NODE_ROUNDS=300 bench/native_overhead.sh
#   OLD_LIB=/path/to/older/libleakscope_preload.so bench/native_overhead.sh   # + that library in the A/B rounds
#
# 1. "Median of RUNS": wall and CPU seconds of each tool, median of RUNS runs each.
# 2. "Interleaved A/B": AB_RUNS rounds of (baseline, leakscope, leakscope hooks only) back to back, CPU time
#    (user + system of the process, microsecond precision from wait4). Reports each configuration's median and
#    the median over rounds of the per-round ratio to the baseline: a round's runs see the same machine load, so
#    the ratio cancels most of the drift on a shared machine. "hooks only" = the library loaded with an interval
#    so large that nothing is sampled (the cost of the interposed fast paths alone). Also the ratio of the minimum
#    CPU times (the least disturbed run of each).
# 3. Instructions executed under callgrind (CALLGRIND=0 to skip): deterministic, whatever the machine's load.
#
# Needs cc, node, heaptrack, valgrind; builds crates/preload with cargo (CARGO_TARGET_DIR is honoured). Prints
# Markdown.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
MASSIF_RUNS=${MASSIF_RUNS:-$RUNS}
AB_RUNS=${AB_RUNS:-21}
C_ITERS=${C_ITERS:-10000000}
NODE_ROUNDS=${NODE_ROUNDS:-300}
INTERVAL=${INTERVAL:-524288}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=$(mktemp -d /tmp/leakscope-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cargo build -q -j1 --release -p leakscope-preload
LIB=${LEAKSCOPE_PRELOAD:-$(realpath "$TARGET/release/libleakscope_preload.so")}
cc -O2 -fno-omit-frame-pointer -o "$WORK/malloc_loop" bench/native/malloc_loop.c
cc -O2 -o "$WORK/cputime" bench/native/cputime.c

echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "library: $LIB"
echo

# median_time RUNS CMD... : prints "WALL CPU", the medians over RUNS runs of wall-clock seconds and of CPU seconds
# (user + system of the process and its children).
median_time() {
  local runs=$1; shift
  local walls=() cpus=()
  for _ in $(seq "$runs"); do
    /usr/bin/time -o "$WORK/time.txt" -f "%e %U %S" "$@" >/dev/null 2>&1 </dev/null || true
    local line
    line=$(tail -n 1 "$WORK/time.txt")
    walls+=("$(echo "$line" | awk '{print $1}')")
    cpus+=("$(echo "$line" | awk '{print $2 + $3}')")
  done
  local w c
  w=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]}')
  c=$(printf '%s\n' "${cpus[@]}" | sort -g | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]}')
  echo "$w $c"
}

# cpu_ms CMD... : CPU milliseconds (user + system) of one run, microsecond precision.
cpu_ms() {
  "$WORK/cputime" "$@" 3>"$WORK/cpu.txt" >/dev/null 2>&1 </dev/null || true
  awk '{printf "%.1f", ($1 + $2) / 1000}' "$WORK/cpu.txt"
}

median() { sort -g | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]}'; }
minimum() { sort -g | head -n 1; }

PRELOAD=(env LD_PRELOAD="$LIB" LEAKSCOPE_INTERVAL="$INTERVAL" LEAKSCOPE_OUTPUT="$WORK/dump-%p.jsonl")
HOOKS_ONLY=(env LD_PRELOAD="$LIB" LEAKSCOPE_INTERVAL=1024g LEAKSCOPE_OUTPUT="$WORK/dump-%p.jsonl")
HEAPTRACK=(heaptrack -o "$WORK/ht")
MASSIF=(valgrind --tool=massif --massif-out-file="$WORK/massif.out")

workload() {
  if [ "$1" = c ]; then
    cmd=("$WORK/malloc_loop" "$C_ITERS"); name="C malloc loop ($C_ITERS iterations)"
  else
    cmd=(node "$(pwd)/bench/native/json_buffer.js" "$NODE_ROUNDS"); name="node JSON/Buffer loop ($NODE_ROUNDS rounds)"
  fi
}

echo "### Median of $RUNS (massif: $MASSIF_RUNS)"
echo
echo "| workload | measure | baseline | leakscope 512 KiB | heaptrack | valgrind massif |"
echo "|---|---|---|---|---|---|"
for w in c node; do
  workload "$w"
  read -r base_w base_c < <(median_time "$RUNS" "${cmd[@]}")
  read -r ls_w ls_c < <(median_time "$RUNS" "${PRELOAD[@]}" "${cmd[@]}")
  read -r ht_w ht_c < <(median_time "$RUNS" "${HEAPTRACK[@]}" "${cmd[@]}")
  read -r ms_w ms_c < <(median_time "$MASSIF_RUNS" "${MASSIF[@]}" "${cmd[@]}")
  rel() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f×", a / b}'; }
  echo "| $name | wall s | $base_w | $ls_w ($(rel "$ls_w" "$base_w")) | $ht_w ($(rel "$ht_w" "$base_w")) | $ms_w ($(rel "$ms_w" "$base_w")) |"
  echo "| | CPU s (user+sys) | $base_c | $ls_c ($(rel "$ls_c" "$base_c")) | $ht_c ($(rel "$ht_c" "$base_c")) | $ms_c ($(rel "$ms_c" "$base_c")) |"
done

echo
echo "### Interleaved A/B, $AB_RUNS rounds (CPU ms, user+sys)"
echo
echo "| workload | baseline median (min) | leakscope median (min) | hooks only median (min) | leakscope overhead: median per-round ratio (ratio of mins) | hooks only overhead |"
echo "|---|---|---|---|---|---|"
for w in c node; do
  workload "$w"
  a=(); b=(); h=(); o=(); rb=(); rh=(); ro=()
  for _ in $(seq "$AB_RUNS"); do
    ca=$(cpu_ms "${cmd[@]}")
    cb=$(cpu_ms "${PRELOAD[@]}" "${cmd[@]}")
    ch=$(cpu_ms "${HOOKS_ONLY[@]}" "${cmd[@]}")
    a+=("$ca"); b+=("$cb"); h+=("$ch")
    rb+=("$(awk -v x="$ca" -v y="$cb" 'BEGIN {printf "%.5f", y / x}')")
    rh+=("$(awk -v x="$ca" -v y="$ch" 'BEGIN {printf "%.5f", y / x}')")
    if [ -n "${OLD_LIB:-}" ]; then
      co=$(cpu_ms env LD_PRELOAD="$OLD_LIB" LEAKSCOPE_INTERVAL="$INTERVAL" LEAKSCOPE_OUTPUT="$WORK/dump-%p.jsonl" "${cmd[@]}")
      o+=("$co"); ro+=("$(awk -v x="$ca" -v y="$co" 'BEGIN {printf "%.5f", y / x}')")
    fi
  done
  if [ -n "${OLD_LIB:-}" ]; then
    mo=$(printf '%s\n' "${o[@]}" | median); no=$(printf '%s\n' "${o[@]}" | minimum)
    oo=$(printf '%s\n' "${ro[@]}" | sort -g | awk '{x[NR]=$1} END {printf "%+.1f%%", 100 * (x[int((NR+1)/2)] - 1)}')
    old_row="| $name, OLD_LIB (same rounds) | | $mo ($no) | | $oo | |"
  fi
  ma=$(printf '%s\n' "${a[@]}" | median); na=$(printf '%s\n' "${a[@]}" | minimum)
  mb=$(printf '%s\n' "${b[@]}" | median); nb=$(printf '%s\n' "${b[@]}" | minimum)
  mh=$(printf '%s\n' "${h[@]}" | median); nh=$(printf '%s\n' "${h[@]}" | minimum)
  ob=$(printf '%s\n' "${rb[@]}" | sort -g | awk '{x[NR]=$1} END {printf "%+.1f%%", 100 * (x[int((NR+1)/2)] - 1)}')
  oh=$(printf '%s\n' "${rh[@]}" | sort -g | awk '{x[NR]=$1} END {printf "%+.1f%%", 100 * (x[int((NR+1)/2)] - 1)}')
  pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.1f%%", 100 * (b - a) / a}'; }
  echo "| $name | $ma ($na) | $mb ($nb) | $mh ($nh) | $ob ($(pct "$na" "$nb")) | $oh ($(pct "$na" "$nh")) |"
  if [ -n "${OLD_LIB:-}" ]; then echo "$old_row"; fi
done

# Instructions executed (valgrind callgrind): deterministic, unaffected by the machine's load; it does not see
# cache or lock effects, only the work added by the hooks and the sampling.
if [ "${CALLGRIND:-1}" = 1 ]; then
  CG_ITERS=${CG_ITERS:-2000000}
  echo
  echo "### Instructions executed (callgrind), C malloc loop ($CG_ITERS iterations)"
  echo
  echo "| baseline | leakscope 512 KiB | hooks only |${OLD_LIB:+ OLD_LIB |}"
  echo "|---|---|---|${OLD_LIB:+---|}"
  instr() {
    "$@" valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" "$WORK/malloc_loop" "$CG_ITERS" \
      >/dev/null 2>"$WORK/cg.err" </dev/null || true
    grep -o 'Collected : [0-9]*' "$WORK/cg.err" | awk '{print $3}'
  }
  ia=$(instr env)
  # FOLLOW_CHILDREN: valgrind's launcher is a process of its own, and the library removes itself from
  # LD_PRELOAD in the processes it is loaded into unless asked to keep it.
  ib=$(instr env LD_PRELOAD="$LIB" LEAKSCOPE_FOLLOW_CHILDREN=1 LEAKSCOPE_INTERVAL="$INTERVAL" \
    LEAKSCOPE_OUTPUT="$WORK/dump-%p.jsonl")
  ih=$(instr env LD_PRELOAD="$LIB" LEAKSCOPE_FOLLOW_CHILDREN=1 LEAKSCOPE_INTERVAL=1024g \
    LEAKSCOPE_OUTPUT="$WORK/dump-%p.jsonl")
  if [ -n "${OLD_LIB:-}" ]; then
    io=$(instr env LD_PRELOAD="$OLD_LIB" LEAKSCOPE_FOLLOW_CHILDREN=1 LEAKSCOPE_INTERVAL="$INTERVAL" \
      LEAKSCOPE_OUTPUT="$WORK/dump-%p.jsonl")
  fi
  pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%+.1f%%", 100 * (b - a) / a}'; }
  echo "| $ia | $ib ($(pct "$ia" "$ib")) | $ih ($(pct "$ia" "$ih")) |${OLD_LIB:+ $io ($(pct "$ia" "$io")) |}"
fi
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
