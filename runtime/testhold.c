/*
 * testhold.c: hold points for tests (see testhold.h).
 */
#include "runtime/testhold.h"

#include <time.h>

void test_hold_wait(struct test_hold *h) {
  atomic_fetch_add(&h->holding, 1);
  while (atomic_load_acquire(&h->requested)) nanosleep(&(struct timespec){0, 100000}, NULL);
  atomic_fetch_sub(&h->holding, 1);
}

void test_hold_set(struct test_hold *h, bool on) { atomic_store_release(&h->requested, on); }

bool test_hold_is_holding(const struct test_hold *h) { return atomic_load_acquire(&h->holding) != 0; }
