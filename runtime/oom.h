/*
 * oom.h: what an allocation does when the heap cannot grow (see oom.c).
 */
#ifndef MGC_OOM_H
#define MGC_OOM_H

#include <stddef.h>

/* Repeats a failed allocation: the object, or NULL. */
typedef void *(*oom_retry_fn)(void *ctx);

/* Every allocation path that could not get memory from mheap ends here,
 * holding no mgc lock and not in mark work: a full collection and
 * retry(ctx); then the program's handler (gc_set_oom_handler) with
 * `request`, another collection and one more retry(ctx).  Returns what a
 * retry returned, or NULL with errno ENOMEM.  A failure on a thread that
 * is already inside this path (a retry, or the handler allocating)
 * returns NULL with ENOMEM at once.  Allocators added in gc/ (weak
 * references and the like) that take memory by other means than
 * gc_alloc* must call it too. */
void *oom_alloc_failed(size_t request, oom_retry_fn retry, void *ctx);

#endif /* MGC_OOM_H */
