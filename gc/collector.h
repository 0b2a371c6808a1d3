/*
 * collector.h: the collection cycle and its trigger.
 */
#ifndef MGC_COLLECTOR_H
#define MGC_COLLECTOR_H

#include <stdbool.h>

#include "runtime/atomics.h"
#include "runtime/testhold.h"

/* Set up the collector (from gc_init, once). */
int collector_init(void);
/* Run one cycle.  forced: collect even if the heap is under its trigger. */
void collector_run(bool forced);
/* fork(): no cycle runs across it. */
void collector_fork_prepare(void);
void collector_fork_parent(void);
void collector_after_fork_child(void);

/* Requests for a cycle the collector served without one: the heap was
 * under its trigger when it looked, swept or not (read by tests). */
extern MGC_HIDDEN atomic_word collector_idle_wakes;

/* Hold point (runtime/testhold.h) between mark setup (barrier on, roots
 * scanned) and draining: tests make stores during marking there. */
extern MGC_HIDDEN struct test_hold collector_hold_after_setup;
/* Hold point: a request for a cycle taken, the trigger not yet tested. */
extern MGC_HIDDEN struct test_hold collector_hold_before_trigger_test;

#endif /* MGC_COLLECTOR_H */
