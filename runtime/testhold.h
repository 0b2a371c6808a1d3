/*
 * testhold.h: places in the runtime where a test can hold threads.
 *
 * Some races need one thread stopped at an exact point while others go on:
 * a mark between its setup and its draining, a sweep before it takes a
 * span, a new span before it is published.  Each such place is a hold
 * point, a `struct test_hold` defined by the module that owns the place
 * and passed to test_hold_point there.  A test turns the hold on, waits
 * until a thread is holding, does what the race needs, and turns the hold
 * off.  Turned off (always, outside tests) a hold point costs one load and
 * a branch.
 *
 * Threads hold by sleeping 100 µs at a time, not by blocking on a lock:
 * the point may be reached with runtime locks held or the mark phase held
 * still, and the thread must still answer a stop of the world (its
 * signal handler runs on the sleep).
 */
#ifndef MGC_RUNTIME_TESTHOLD_H
#define MGC_RUNTIME_TESTHOLD_H

#include <stdbool.h>

#include "runtime/atomics.h"
#include "runtime/compiler.h"

struct test_hold {
  atomic_word requested;  /* hold threads that reach the point */
  atomic_word holding;    /* how many are holding now */
};

/* Slow part of test_hold_point: hold while the hold is requested. */
void test_hold_wait(struct test_hold *h);

MGC_INLINE void test_hold_point(struct test_hold *h) {
  if (unlikely(atomic_load_acquire(&h->requested))) test_hold_wait(h);
}

/* Tests: request (on) or release (off) the hold at h's point. */
void test_hold_set(struct test_hold *h, bool on);
/* Tests: is a thread holding at h's point now? */
bool test_hold_is_holding(const struct test_hold *h);

#endif /* MGC_RUNTIME_TESTHOLD_H */
