/*
 * barrier.h: the write barrier's collector side (GC_WRITE is in mgc.h).
 */
#ifndef MGC_BARRIER_H
#define MGC_BARRIER_H

#include "runtime/thread.h"

/* Turn the barrier on or off; world stopped. */
void barrier_set_stw(int on);
/* Grey the buffered old values of every thread into w; world stopped. */
void barrier_flush_all_stw(struct gcwork *w);
/* Grey the caller's own buffer (thread exit, assists). */
void barrier_flush_own(struct mthread *t);

#endif /* MGC_BARRIER_H */
