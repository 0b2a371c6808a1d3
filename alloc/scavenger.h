/*
 * scavenger.h: the background thread that gives long-free pages back to
 * the OS (see scavenger.c).
 */
#ifndef MGC_SCAVENGER_H
#define MGC_SCAVENGER_H

#include <stdint.h>

/* Start the thread (once, from gc_init).  Returns 0 or an errno. */
int scavenger_start(void);
/* Pages free for at least this long are released; default
 * SCAVENGE_DEFAULT_AGE_NS.  Tests shorten it. */
void scavenger_set_age(uint64_t ns);
/* Keep the memory held (committed minus released, plus metadata) under
 * this many bytes by releasing free pages at once; SIZE_MAX: no limit. */
void scavenger_set_retain_limit(uint64_t bytes);
/* Wake the thread now (after a collection freed many spans). */
void scavenger_wake(void);
/* After fork(): the child has no scavenger thread; start a new one. */
void scavenger_after_fork_child(void);

#endif /* MGC_SCAVENGER_H */
