#!/usr/bin/env bash
# callgrind_fastpath.sh: instructions per allocation on mgc's fast path.
#
# Runs the fastpath_* programs (tools/bench/fastpath.c) under
# valgrind --tool=callgrind for two allocation counts K1 < K2 and reports
#
#   Ir per allocation = (Ir(K2) - Ir(K1)) / (K2 - K1)
#
# from the "totals:" line of each callgrind output; the difference cancels
# start-up and exit.  The figure is amortised: it includes span refills and
# any collection the extra objects trigger, so it is an upper bound on the
# pure fast path.  It is computed for gc_alloc(16) ("scan") and
# gc_alloc_atomic(64) ("atomic"), and for the malloc reference builds
# (fastpath_glibc, fastpath_mimalloc, fastpath_jemalloc) when they exist.
#
# usage: callgrind_fastpath.sh [builddir]      (default build/; builds nothing)
# environment:
#   FASTPATH_K1, FASTPATH_K2   the two counts (default 100000, 200000)
#   FASTPATH_KEEP              keep the callgrind.out files in this directory,
#                              for callgrind_annotate
#   FASTPATH_RAW               also append one machine-readable line per cell
#                              to this file (for tools/bench/run):
#                              "fastpath variant=<v> mode=<scan|atomic>
#                              ir_per_alloc=<x or -> k1=<K1> k2=<K2>"
set -euo pipefail

builddir=${1:-build}
benchdir=$builddir/tools/bench
k1=${FASTPATH_K1:-100000}
k2=${FASTPATH_K2:-200000}
variants=(mgc glibc mimalloc jemalloc)
modes=(scan atomic)

if ! [[ $k1 =~ ^[0-9]+$ && $k2 =~ ^[0-9]+$ ]] || ((k2 <= k1)); then
  echo "callgrind_fastpath.sh: need integers FASTPATH_K1 < FASTPATH_K2," \
    "got $k1 and $k2" >&2
  exit 64
fi
command -v valgrind >/dev/null || {
  echo "callgrind_fastpath.sh: valgrind not found" >&2
  exit 1
}

if [[ -n ${FASTPATH_KEEP:-} ]]; then
  outdir=$FASTPATH_KEEP
  mkdir -p "$outdir"
else
  outdir=$(mktemp -d)
  trap 'rm -rf "$outdir"' EXIT
fi

# total_ir EXE MODE K: the program's total instruction count.
total_ir() {
  local out
  out=$outdir/callgrind.out.$(basename "$1").$2.$3
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$1" "$2" "$3" >/dev/null 2>"$out.log" || {
    echo "callgrind_fastpath.sh: $1 $2 $3 failed, see below" >&2
    cat "$out.log" >&2
    return 1
  }
  awk '/^totals:/ { print $2; found = 1 } END { exit !found }' "$out"
}

# per_alloc EXE MODE: Ir per allocation from the two runs.
per_alloc() {
  local ir1 ir2
  if ! ir1=$(total_ir "$1" "$2" "$k1") ||
    ! ir2=$(total_ir "$1" "$2" "$k2"); then
    echo "-"
    return
  fi
  awk -v a="$ir1" -v b="$ir2" -v k1="$k1" -v k2="$k2" \
    'BEGIN { printf "%.1f", (b - a) / (k2 - k1) }'
}

found=0
echo "Ir per allocation, (Ir(K=$k2) - Ir(K=$k1)) / $((k2 - k1)):"
echo
echo "| allocator | gc_alloc 16 B (scan) | gc_alloc_atomic 64 B (atomic) |"
echo "| --- | ---: | ---: |"
for v in "${variants[@]}"; do
  exe=$benchdir/fastpath_$v
  if [[ ! -x $exe ]]; then
    echo "# $v: not built ($exe), skipped" >&2
    continue
  fi
  found=1
  row="| $v"
  for m in "${modes[@]}"; do
    ir=$(per_alloc "$exe" "$m")
    row="$row | $ir"
    if [[ -n ${FASTPATH_RAW:-} ]]; then
      echo "fastpath variant=$v mode=$m ir_per_alloc=$ir k1=$k1 k2=$k2" >>"$FASTPATH_RAW"
    fi
  done
  echo "$row |"
done
if ((!found)); then
  echo "callgrind_fastpath.sh: no fastpath_* executable in $benchdir" >&2
  exit 1
fi
echo
echo "(glibc/mimalloc/jemalloc rows call malloc(16) and malloc(64))"
