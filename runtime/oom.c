/*
 * oom.c: running out of memory (gc_set_oom_handler, include/mgc.h).
 *
 * An allocation fails when mheap cannot grow: the OS refuses address space
 * (an arena reservation, RLIMIT_AS) or a commit.  Every allocation path
 * then calls oom_alloc_failed, which
 *   1. runs a full collection (gc_collect: marking, then sweeping all of
 *      the heap, so the pages of dead objects are back in mheap) and
 *      retries;
 *   2. if the program set a handler, calls it with the size asked for and
 *      then collects and retries once more;
 *   3. returns NULL with errno ENOMEM.
 * The handler runs on the allocating thread, as a normal registered thread
 * holding no mgc lock: it may drop references, allocate, collect.
 *
 * Where allocations fail:
 *   small objects   mcache_refill (alloc/mcache.c) when mcentral has no
 *                   span to give: mcache_refill_failed below; the size
 *                   reported is the object's size class;
 *   large objects   alloc_large (runtime/api.c) when mheap has no run;
 * gc_alloc, gc_alloc_atomic, gc_alloc_typed, gc_realloc, gc_strdup and the
 * weak-reference and ephemeron allocators all reach one of the two.
 *
 * Reentry: `oom_depth` (per thread) is nonzero while a thread is inside the
 * path.  A failure then (the retry itself, or an allocation made by the
 * handler) returns NULL at once instead of collecting again or calling the
 * handler from itself.  Threads that fail at the same time each run the
 * path; the collector merges collections requested together.
 *
 * The handler pointer is one atomic word: gc_set_oom_handler exchanges it,
 * the path loads it once.
 */
#include "runtime/oom.h"

#include <errno.h>

#include "mgc.h"

#include "alloc/mcache.h"
#include "alloc/sizeclasses.h"
#include "runtime/atomics.h"
#include "runtime/compiler.h"
#include "runtime/init.h"
#include "runtime/thread.h"

static atomic_word oom_handler;   /* gc_oom_fn, or 0 */
static MGC_TLS unsigned oom_depth;

GC_API gc_oom_fn gc_set_oom_handler(gc_oom_fn fn) {
  init_once();
  return (gc_oom_fn)atomic_exchange(&oom_handler, (uintptr_t)fn);
}

MGC_COLD void *oom_alloc_failed(size_t request, oom_retry_fn retry, void *ctx) {
  if (oom_depth > 0) {
    errno = ENOMEM;
    return NULL;
  }
  oom_depth++;
  gc_collect();
  void *p = retry(ctx);
  gc_oom_fn handler = (gc_oom_fn)atomic_load_acquire(&oom_handler);
  if (!p && handler) {
    handler(request);
    gc_collect();
    p = retry(ctx);
  }
  oom_depth--;
  if (!p) errno = ENOMEM;
  return p;
}

struct small_request {
  unsigned spc;
  bool zero;
};

/* The thread's mcache again: the handler cannot unregister a thread in
 * the middle of its allocation, but reading it afresh costs nothing. */
static void *retry_small(void *ctx) {
  const struct small_request *r = ctx;
  return mcache_alloc(mcache_current, r->spc, r->zero);
}

void *mcache_refill_failed(unsigned spc, bool zero) {
  struct small_request r = {spc, zero};
  return oom_alloc_failed(sizeclass_size[spanclass_sizeclass(spc)], retry_small, &r);
}
