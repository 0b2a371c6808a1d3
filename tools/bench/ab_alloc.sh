#!/usr/bin/env bash
# ab_alloc.sh: interleaved A/B timing of two mgc builds against mimalloc.
#
# On a small shared machine two full benchmark runs an hour apart differ
# by more than most changes to the allocator do.  This script runs the two
# builds' alloc_bench and mimalloc's in one interleaved sequence, so that
# whatever else the machine does falls on all three alike: each round runs
# A, B, mimalloc, B, A (each `alloc_bench_<variant> -r 5 -t 100`), and the
# report gives, per workload, the ratio of each build to mimalloc and of B
# to A, both for the fastest run (min over rounds of each run's minimum)
# and for the median run (median over the runs' medians).  The fastest
# runs are the steadiest figure; quote both.
#
# usage: ab_alloc.sh [-n rounds] [-v variant] build_a build_b [workload...]
#   build_a, build_b   release build directories with -Dbenchmarks=true
#                      (mimalloc's alloc_bench is taken from build_a)
#   -n rounds          rounds (default 8)
#   -v variant         mgc variant: mgc_atomic (default) or mgc
#   workloads          default: all of them (alloc_bench -l)
# environment: passed through, so MGC_GOGC=off measures the allocator
# without collections (16-byte workloads then pile up tiny blocks that only
# a collection frees, and are not meaningful).
set -euo pipefail

rounds=8
variant=mgc_atomic
while getopts "n:v:" opt; do
  case $opt in
    n) rounds=$OPTARG ;;
    v) variant=$OPTARG ;;
    *) exit 64 ;;
  esac
done
shift $((OPTIND - 1))
if [[ $# -lt 2 ]]; then
  echo "usage: ab_alloc.sh [-n rounds] [-v variant] build_a build_b [workload...]" >&2
  exit 64
fi
a=$1 b=$2
shift 2
for bin in "$a/tools/bench/alloc_bench_$variant" "$b/tools/bench/alloc_bench_$variant" "$a/tools/bench/alloc_bench_mimalloc"; do
  [[ -x $bin ]] || { echo "ab_alloc.sh: $bin not found (build with -Dbenchmarks=true)" >&2; exit 1; }
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "ab_alloc.sh: -n needs a positive integer, got $rounds" >&2; exit 64; }

raw=$(mktemp)
trap 'rm -f "$raw"' EXIT
run() { # label build allocator workloads...
  local label=$1 build=$2 alloc=$3
  shift 3
  "$build/tools/bench/alloc_bench_$alloc" -r 5 -t 100 "$@" 2>/dev/null | sed "s|^|$label |" >>"$raw"
}
for ((r = 1; r <= rounds; r++)); do
  run A "$a" "$variant" "$@"
  run B "$b" "$variant" "$@"
  run M "$a" mimalloc "$@"
  run B "$b" "$variant" "$@"
  run A "$a" "$variant" "$@"
done

python3 - "$raw" "$a" "$b" "$variant" "$rounds" <<'PY'
import collections, statistics, sys
raw, a, b, variant, rounds = sys.argv[1:]
medians, mins = collections.defaultdict(list), collections.defaultdict(list)
for line in open(raw):
    label, _alloc, workload, median_ns, min_ns = line.split()
    medians[label, workload].append(float(median_ns))
    mins[label, workload].append(float(min_ns))
print(f"A = {a}, B = {b}, {variant}, {rounds} rounds (A B mimalloc B A)")
print("| workload | fastest A/mi | fastest B/mi | B/A | median A/mi | median B/mi | B/A |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for w in sorted({w for _, w in medians}):
    fa, fb, fm = (min(mins[x, w]) for x in "ABM")
    ma, mb, mm = (statistics.median(medians[x, w]) for x in "ABM")
    print(f"| {w} | {fa / fm:.2f} | {fb / fm:.2f} | {fb / fa:.3f} | {ma / mm:.2f} | {mb / mm:.2f} | {mb / ma:.3f} |")
PY
