/*
 * collector.c: one collection cycle, and when to run it.
 *
 * A cycle (stop-the-world marking; the world runs while sweeping):
 *   1. Sweep termination, world running: sweep whatever the last cycle
 *      left unswept (sweep_finish), and capture the data segments.
 *   2. Stop the world (runtime/stw.c), holding threads_lock and the roots
 *      lock, so that no stopped thread holds a lock the cycle needs.  The
 *      heap locks are not needed: marking reads span state lock-free, and
 *      no span is being swept (step 1 finished them all).
 *   3. Mark: grey every root range, drain on the mark workers.
 *   4. Mark termination: start a new sweep generation (every span becomes
 *      unswept), restart the world.
 *   5. Pacing: heap_goal = marked * (1 + GOGC/100), at least HEAP_GOAL_MIN;
 *      the next cycle is triggered when heap_live reaches it.
 *   6. Sweeping proceeds lazily in the allocator and in the background
 *      sweeper (gc/sweep.c).
 *
 * Who runs a cycle: the allocating thread whose slow path finds heap_live
 * over the trigger (the hook installed in alloc/heaplive.h), or
 * gc_collect.  gc_lock (rank LOCK_GC) makes cycles one at a time; a thread
 * that waited for it re-checks the trigger before collecting again.
 *
 * Shared state: gogc, disable_count and the pacer figures are written
 * under gc_lock; heap_trigger is atomic (read by every allocation slow
 * path).
 */
#include "gc/collector.h"

#include <errno.h>

#include "mgc.h"

#include "alloc/heaplive.h"
#include "gc/mark.h"
#include "gc/stats.h"
#include "gc/sweep.h"
#include "runtime/config.h"
#include "runtime/init.h"
#include "runtime/lock.h"
#include "runtime/os.h"
#include "runtime/roots.h"
#include "runtime/stw.h"
#include "runtime/thread.h"
#include "runtime/throw.h"

/* The goal never goes under 4 MiB: a tiny live heap would otherwise be
 * collected after every few allocations. */
#define HEAP_GOAL_MIN ((uintptr_t)4 << 20)

static struct mgc_lock gc_lock = MGC_LOCK_INITIALIZER(LOCK_GC);
static int gogc;                  /* under gc_lock */
static int disable_count;         /* under gc_lock */
static uintptr_t heap_goal;       /* under gc_lock */
static uintptr_t heap_marked;     /* under gc_lock */

static unsigned stw_mark_workers(void) {
  return (unsigned)(config.mark_workers > 0 ? config.mark_workers : 1);
}

/* Recompute the goal and the trigger; gc_lock held. */
static void pacer_update_locked(void) {
  if (gogc < 0) {
    heap_goal = UINTPTR_MAX;
  } else {
    uintptr_t goal = heap_marked + heap_marked / 100 * (uintptr_t)gogc +
                     heap_marked % 100 * (uintptr_t)gogc / 100;
    heap_goal = goal < HEAP_GOAL_MIN ? HEAP_GOAL_MIN : goal;
  }
  bool off = gogc < 0 || disable_count > 0;
  atomic_store_relaxed(&heap_trigger, off ? UINTPTR_MAX : heap_goal);
}

static void visit_root(uintptr_t lo, uintptr_t hi, void *ctx) {
  mark_grey_range(ctx, lo, hi);
}

/* Steps 2-4, world stopped in the middle.  Returns the marked bytes. */
static uintptr_t mark_stw(uint64_t *pause_ns, unsigned *workers) {
  lock_acquire(&threads_lock);
  roots_lock_for_stw();
  uint64_t t0 = os_nanotime();
  stw_stop();
  struct gcwork w = {0};
  roots_enumerate_stw(visit_root, &w);
  *workers = stw_mark_workers();
  uintptr_t marked = mark_drain_parallel(&w, *workers);
  gcwork_dispose(&w);
  sweep_start_cycle_stw();
  stw_start();
  *pause_ns = os_nanotime() - t0;
  roots_unlock_after_stw();
  lock_release(&threads_lock);
  return marked;
}

static void cycle_locked(bool forced) {
  struct cycle_record rec = {0};
  rec.start_ns = os_nanotime();
  rec.forced = forced;
  uint64_t cpu0 = os_thread_cpu_ns();
  sweep_finish();
  rec.heap_before = atomic_load_relaxed(&heap_live);
  roots_capture_segments();
  heap_marked = mark_stw(&rec.pause_ns, &rec.workers);
  pacer_update_locked();
  rec.heap_marked = heap_marked;
  rec.heap_goal = heap_goal;
  rec.end_ns = os_nanotime();
  rec.cpu_ns = os_thread_cpu_ns() - cpu0 + mark_take_helper_cpu_ns();
  stats_record_cycle(&rec);
  if (config.trace) stats_trace_cycle(&rec, stats_cycles());
  sweep_wake_background();
}

void collector_run(bool forced) {
  init_once();
  lock_acquire(&gc_lock);
  if (forced || atomic_load_relaxed(&heap_live) >= atomic_load_relaxed(&heap_trigger)) {
    /* The heap may be over the trigger only because the last cycle's
     * garbage is not swept yet. */
    if (!forced) sweep_finish();
    if (forced || atomic_load_relaxed(&heap_live) >= atomic_load_relaxed(&heap_trigger))
      cycle_locked(forced);
  }
  lock_release(&gc_lock);
}

static void trigger_hook(void) { collector_run(false); }

int collector_init(void) {
  gogc = config.gogc;
  heap_marked = 0;
  lock_acquire(&gc_lock);
  pacer_update_locked();
  lock_release(&gc_lock);
  stats_init();
  heap_set_trigger_hook(trigger_hook);
  int err = stw_init();
  if (!err) err = sweep_init();
  return err;
}

void collector_fork_prepare(void) { lock_acquire(&gc_lock); }
void collector_fork_parent(void) { lock_release(&gc_lock); }

void collector_after_fork_child(void) {
  lock_rank_release(&gc_lock);
  lock_reinit_after_fork(&gc_lock);
  sweep_after_fork_child();
}

GC_API void gc_collect(void) {
  collector_run(true);
  sweep_finish();
}

GC_API int gc_set_percent(int percent) {
  init_once();
  lock_acquire(&gc_lock);
  int old = gogc;
  gogc = percent < 0 ? -1 : percent;
  pacer_update_locked();
  lock_release(&gc_lock);
  return old;
}

GC_API void gc_disable(void) {
  init_once();
  lock_acquire(&gc_lock);
  disable_count++;
  pacer_update_locked();
  lock_release(&gc_lock);
}

GC_API void gc_enable(void) {
  init_once();
  lock_acquire(&gc_lock);
  if (disable_count > 0) disable_count--;
  else mgc_report("gc_enable without a matching gc_disable; ignored");
  pacer_update_locked();
  lock_release(&gc_lock);
}
