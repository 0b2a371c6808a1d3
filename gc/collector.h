/*
 * collector.h: the collection cycle and its trigger.
 */
#ifndef MGC_COLLECTOR_H
#define MGC_COLLECTOR_H

#include <stdbool.h>

/* Set up the collector (from gc_init, once). */
int collector_init(void);
/* Run one cycle.  forced: collect even if the heap is under its trigger. */
void collector_run(bool forced);
/* fork(): no cycle runs across it. */
void collector_fork_prepare(void);
void collector_fork_parent(void);
void collector_after_fork_child(void);

/* Test hooks (tests/gc): while `on`, a concurrent cycle stops between mark
 * setup (barrier on, roots scanned) and draining, so a test can make
 * stores during marking deterministically. */
void collector_test_hold_after_setup(bool on);
bool collector_test_is_holding(void);

#endif /* MGC_COLLECTOR_H */
