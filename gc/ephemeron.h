/*
 * ephemeron.h: weak references and ephemerons, as the marker sees them
 * (the public side is in mgc.h; the design is in ephemeron.c).
 */
#ifndef MGC_EPHEMERON_H
#define MGC_EPHEMERON_H

#include <stdbool.h>
#include <stdint.h>

#include "gc/types.h"
#include "gc/workbuf.h"

/* The marker reached the ephemeron whose user part starts at obj. */
void ephemeron_scan(struct gcwork *w, uintptr_t obj, types_mark_fn mark);

/* For MGC_VERIFY's re-mark, after termination: the value only.  A key is
 * weak: a live one is reachable some other way. */
void ephemeron_visit_value(struct gcwork *w, uintptr_t obj, types_mark_fn mark);

/* Mark the values of pending ephemerons whose keys are now alive (and drop
 * them from the list).  `final` (mark termination, world stopped): a key
 * allocated black in a thread's current word counts as alive though its
 * mark bit is not set yet.  Returns true if anything new was greyed into w: the caller
 * drains and resolves again. */
bool ephemerons_resolve(struct gcwork *w, bool final);

/* Mark termination, world stopped, after the last resolve: every pending
 * ephemeron has a dead key; set its key and value to NULL.  Returns how
 * many were cleared. */
uintptr_t ephemerons_clear_dead_stw(void);

#endif /* MGC_EPHEMERON_H */
