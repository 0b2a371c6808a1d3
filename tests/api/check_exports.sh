#!/bin/sh
# check_exports.sh LIB...: every global symbol a library defines is part of
# mgc's API (gc_*), so a program linking it cannot clash with mgc's
# internal names (sanitizer markers aside).  Fails, listing the others,
# if not.
set -eu
status=0
for lib in "$@"; do
  # Sanitizer builds add their own markers (__odr_asan.gc_barrier_on).
  others=$(nm -g --defined-only "$lib" | awk 'NF == 3 { print $3 }' |
           grep -v -e '^gc_' -e '^__odr_asan' -e '^__asan_' -e '^__tsan_' -e '^__ubsan_' | sort -u || true)
  count=$(nm -g --defined-only "$lib" | awk 'NF == 3 && $3 ~ /^gc_/' | wc -l)
  if [ -n "$others" ]; then
    echo "$lib exports non-API symbols:" $others >&2
    status=1
  fi
  if [ "$count" -lt 20 ]; then
    echo "$lib exports only $count gc_* symbols" >&2
    status=1
  fi
done
exit $status
