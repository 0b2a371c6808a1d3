#!/usr/bin/env bash
# callgrind_alloc.sh: instructions per operation (one allocation plus one
# free) of each alloc_bench workload, under valgrind --tool=callgrind.
#
# Runs `alloc_bench_<variant> -n K <workload>` for two op counts K1 < K2
# and reports (Ir(K2) - Ir(K1)) / (K2 - K1) from callgrind's totals: the
# difference cancels start-up, the ring's fill and empty, and exit.  Unlike
# wall time on a shared machine this repeats exactly, so it is the figure
# to compare before and after a change to the allocator.  (Instructions
# are not time: a cache miss or a locked instruction costs far more than
# one.)  mgc's count covers its collector and sweeper threads too.
#
# usage: callgrind_alloc.sh [builddir] [workload...]
#   builddir defaults to build/ (built with -Dbenchmarks=true); workloads
#   default to all of them (alloc_bench -l).
# environment:
#   ALLOC_CG_K1, ALLOC_CG_K2   the two op counts (default 100000, 300000;
#                              batch workloads use whole rounds of 10000)
#   ALLOC_CG_VARIANTS          variants to run (default "mgc mimalloc glibc")
#   ALLOC_CG_KEEP              keep the callgrind.out files in this directory
set -euo pipefail

builddir=build
if [[ $# -gt 0 && -d $1 ]]; then
  builddir=$1
  shift
fi
benchdir=$builddir/tools/bench
k1=${ALLOC_CG_K1:-100000}
k2=${ALLOC_CG_K2:-300000}
read -r -a variants <<<"${ALLOC_CG_VARIANTS:-mgc mimalloc glibc}"
if ! [[ $k1 =~ ^[0-9]+$ && $k2 =~ ^[0-9]+$ ]] || ((k2 <= k1)); then
  echo "callgrind_alloc.sh: need integers ALLOC_CG_K1 < ALLOC_CG_K2, got $k1 and $k2" >&2
  exit 64
fi
command -v valgrind >/dev/null || {
  echo "callgrind_alloc.sh: valgrind not found" >&2
  exit 1
}
if [[ -n ${ALLOC_CG_KEEP:-} ]]; then
  outdir=$ALLOC_CG_KEEP
  mkdir -p "$outdir"
else
  outdir=$(mktemp -d)
  trap 'rm -rf "$outdir"' EXIT
fi

if [[ $# -gt 0 ]]; then
  workloads=("$@")
else
  mapfile -t workloads < <("$benchdir/alloc_bench_${variants[0]}" -l)
fi

# total_ir EXE WORKLOAD K
total_ir() {
  local out=$outdir/callgrind.out.$(basename "$1").$2.$3
  valgrind --tool=callgrind --callgrind-out-file="$out" "$1" -n "$3" "$2" >/dev/null 2>"$out.log" || {
    echo "callgrind_alloc.sh: $1 -n $3 $2 failed:" >&2
    cat "$out.log" >&2
    return 1
  }
  awk '/^totals:/ { print $2; found = 1 } END { exit !found }' "$out"
}

per_op() {
  local ir1 ir2
  if ! ir1=$(total_ir "$1" "$2" "$k1") || ! ir2=$(total_ir "$1" "$2" "$k2"); then
    echo "-"
    return
  fi
  awk -v a="$ir1" -v b="$ir2" -v k1="$k1" -v k2="$k2" 'BEGIN { printf "%.1f", (b - a) / (k2 - k1) }'
}

echo "Ir per op (alloc + free), (Ir(K=$k2) - Ir(K=$k1)) / $((k2 - k1)):"
echo
head="| workload"
rule="| ---"
for v in "${variants[@]}"; do
  head="$head | $v"
  rule="$rule | ---:"
done
echo "$head |"
echo "$rule |"
for w in "${workloads[@]}"; do
  row="| $w"
  for v in "${variants[@]}"; do
    exe=$benchdir/alloc_bench_$v
    if [[ -x $exe ]]; then row="$row | $(per_op "$exe" "$w")"; else row="$row | -"; fi
  done
  echo "$row |"
done
