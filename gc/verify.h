/*
 * verify.h: MGC_VERIFY=1, checking the concurrent mark against a
 * stop-the-world re-mark.
 */
#ifndef MGC_VERIFY_H
#define MGC_VERIFY_H

#include <stdint.h>

/* World stopped, marking finished, barrier still on.  Re-marks everything
 * reachable now (with the check bitmaps) and reports on stderr every
 * object the concurrent mark did not cover, with the address that points
 * to it.  Missed objects are then marked, so they survive.  Returns the
 * number of misses. */
uintptr_t verify_mark_stw(void);

/* Checker, world stopped at mark start: no mark bit is set anywhere.
 * Returns the number of words with stale marks (reported). */
uintptr_t verify_no_marks_stw(void);

#endif /* MGC_VERIFY_H */
