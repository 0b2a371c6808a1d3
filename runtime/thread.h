/*
 * thread.h: the registry of threads that use the heap.
 *
 * Each registered thread has an mthread record: its mcache, its stack
 * bounds (scanned as roots), and the state the stop-the-world handshake
 * uses (runtime/stw.c).  The calling thread's record is in thread-local
 * storage; the registry links all of them under threads_lock.
 *
 * Lifetime: a record is created by gc_thread_register (or implicitly on a
 * thread's first allocation), and destroyed by gc_thread_unregister or, if
 * the thread exits without it, by the thread-exit destructor.  Destroying
 * gives the mcache's spans back to mcentral and unlinks the record under
 * threads_lock, so a collection never sees a half-gone thread.
 */
#ifndef MGC_THREAD_H
#define MGC_THREAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <ucontext.h>

#include "alloc/mcache.h"
#include "gc/workbuf.h"
#include "runtime/atomics.h"
#include "runtime/compiler.h"
#include "runtime/lock.h"

/* Write-barrier buffer entries per thread: 2 KiB, flushed in one go. */
#define WBBUF_ENTRIES 256

/* x86-64 and AArch64 (not x32 or ILP32) enter and leave blocking regions
 * through assembly stubs that save the caller's registers
 * (runtime/stw.c). */
#if defined(__x86_64__) && defined(__LP64__)
#define MGC_BLOCKING_STUBS 1
#define BLOCKING_REGS 6   /* rbx, rbp, r12, r13, r14, r15 */
#elif defined(__aarch64__) && defined(__LP64__)
#define MGC_BLOCKING_STUBS 1
#define BLOCKING_REGS 20  /* x19-x28, x29, d8-d15, a zero word (16-byte frame) */
#else
#define MGC_BLOCKING_STUBS 0
#endif

/* The callee-saved registers of the caller of gc_blocking_begin or
 * gc_blocking_end (runtime/stw.c). */
struct blocking_regs {
#if MGC_BLOCKING_STUBS
  uintptr_t regs[BLOCKING_REGS];
#else
  ucontext_t context;
#endif
};

struct mthread {
  struct mcache mcache;           /* owner: this thread */
  struct mthread *next;           /* registry list, under threads_lock */
  struct mthread *prev;
  pthread_t pthread;
  uintptr_t stack_lo;             /* lowest address of the stack mapping */
  uintptr_t stack_hi;             /* one past the highest (stack base) */
  /* Stop-the-world state (runtime/stw.c). */
  atomic_word stopped_sp;         /* stack pointer saved on parking for a stop */
  atomic_word stop_signalled;     /* the last stop that signalled us (its number) */
  atomic_word stop_acked;         /* the last stop we acknowledged */
  atomic_word acking;             /* inside acknowledge_stop (runtime/stw.c) */
  atomic_word blocking;           /* inside gc_blocking_begin/end */
  atomic_word blocking_sp;        /* stack pointer published on entry */
  /* The caller's registers on entering a blocking region, and those of
   * the caller of its end (the thread's own thread-local copy, written
   * by the exit stub; NULL without stubs): scanned as roots while the
   * thread is in the region.  (A stopped thread's registers are in its
   * signal frame, on its stack.) */
  struct blocking_regs blocking_regs;
  struct blocking_regs *blocking_exit_regs;
  unsigned blocking_depth;        /* nesting of gc_blocking_begin */
  /* Write barrier buffer (gc/barrier.c): old values of overwritten
   * slots.  The owner appends (entry first, then the count); the collector
   * reads and empties it with the world stopped. */
  uintptr_t wbbuf[WBBUF_ENTRIES];
  atomic_word wbbuf_n;
  /* Marking done by this mutator: barrier flushes and assists.  While
   * in_mark_work is set the thread holds grey work in gcw, and mark
   * termination waits for it to finish. */
  struct gcwork gcw;
  atomic_word in_mark_work;
  intptr_t assist_debt;           /* scan bytes owed (gc/pacer.c) */
  uint64_t assist_rest_until;     /* os_nanotime; no assist before (gc/pacer.c) */
  uint64_t assist_burst_ns;       /* time in assists of the current burst (gc/pacer.c) */
  uint64_t assist_burst_last_end; /* os_nanotime at the end of its last assist */
  bool is_main;                   /* registered by gc_init */
};

extern MGC_TLS struct mthread *thread_current;
/* The calling thread's mcache, or the placeholder when it is not
 * registered (never NULL: the allocation fast path does not test it). */
extern MGC_TLS struct mcache *mcache_current;
extern MGC_HIDDEN struct mgc_lock threads_lock;
extern MGC_HIDDEN struct mthread *threads_head;   /* under threads_lock */
extern MGC_HIDDEN atomic_word threads_count;

/* The calling thread's record, registering it first if needed; NULL when
 * out of memory. */
struct mthread *thread_register_current(void);
void thread_unregister_current(void);
int thread_registry_init(void);
/* Every record but the caller's after fork(): the child has one thread. */
void thread_registry_after_fork_child(void);

/* A section in which no mark can start or end.  Mark setup and mark
 * termination stop the world and retry while any thread has in_mark_work
 * set (gc/collector.c), so gc_barrier_on read inside the section stays
 * what it was for the whole section.  Sections nest: enter returns what
 * leave restores.  t may be NULL (an unregistered thread), which protects
 * nothing. */
MGC_INLINE uintptr_t thread_mark_phase_enter(struct mthread *t) {
  if (!t) return 0;
  uintptr_t was = atomic_load_relaxed(&t->in_mark_work);
  atomic_store_relaxed(&t->in_mark_work, 1);
  __asm__ __volatile__("" ::: "memory"); /* a stop landing after here sees the flag */
  return was;
}

MGC_INLINE void thread_mark_phase_leave(struct mthread *t, uintptr_t was) {
  if (!t) return;
  __asm__ __volatile__("" ::: "memory");
  atomic_store_release(&t->in_mark_work, was);
}

/* The calling thread's own mcache, or NULL when it is not registered. */
MGC_INLINE struct mcache *thread_mcache(void) {
  struct mthread *t = thread_current;
  return t ? &t->mcache : NULL;
}

#endif /* MGC_THREAD_H */
