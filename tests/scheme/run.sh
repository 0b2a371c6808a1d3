#!/bin/sh
# Runs mgscheme's program suite: every NAME.scm as a script and every
# NAME.in fed to the REPL on stdin, each in a fresh temporary directory;
# stdout and stderr together must equal NAME.out, and the exit status must
# be 0 (mgscheme exits 3 when MGC_VERIFY found a missed write barrier).
#   run.sh MGSCHEME TESTDIR [NAME...]
# meson runs it with MGC_VERIFY=1 and MGC_CONCURRENT=1.  Set
# SCHEME_TEST_UPDATE=1 to rewrite the .out files from the actual output.
set -u
mgscheme=$1
dir=$2
shift 2
case $mgscheme in /*) ;; *) mgscheme=$PWD/$mgscheme ;; esac
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
if [ $# -eq 0 ]; then
  set --
  for f in "$dir"/*.scm "$dir"/*.in; do
    [ -e "$f" ] || continue
    b=$(basename "$f"); set -- "$@" "${b%.*}"
  done
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/mgscheme-tests.XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=0
for name in "$@"; do
  run="$work/$name"
  mkdir -p "$run"
  start=$(date +%s.%N)
  if [ -e "$dir/$name.scm" ]; then
    (cd "$run" && "$mgscheme" "$dir/$name.scm") >"$run/actual" 2>&1
  else
    (cd "$run" && "$mgscheme" <"$dir/$name.in") >"$run/actual" 2>&1
  fi
  status=$?
  secs=$(echo "$start $(date +%s.%N)" | awk '{printf "%.2f", $2 - $1}')
  if [ "${SCHEME_TEST_UPDATE:-0}" = 1 ]; then cp "$run/actual" "$dir/$name.out"; fi
  if [ $status -ne 0 ]; then
    echo "FAIL $name: exit status $status (${secs}s)"
    tail -n 20 "$run/actual"
    failed=1
  elif ! diff -u "$dir/$name.out" "$run/actual" >"$run/diff"; then
    echo "FAIL $name: output differs from $name.out (${secs}s)"
    head -n 40 "$run/diff"
    failed=1
  else
    echo "ok   $name (${secs}s)"
  fi
done
exit $failed
