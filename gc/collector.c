/*
 * collector.c: the collection cycle and the thread that runs it.
 *
 * A concurrent cycle (MGC_CONCURRENT=1, the default):
 *   1. Sweep termination, world running: sweep what the last cycle left
 *      unswept (sweep_finish); capture the data segments (the loader's
 *      lock must not be taken with the world stopped).
 *   2. Mark setup, world stopped: turn on the write barrier and allocate
 *      black, copy every root word that may point into the heap (stacks,
 *      registers, data, explicit roots), snapshot the current words of
 *      cached spans (alloc/mcache.c), restart the world; then grey what
 *      the copied words name.
 *   3. Concurrent mark: the collector thread and MGC_MARK_WORKERS - 1
 *      helpers drain grey work; mutators flush barrier buffers and assist
 *      (gc/pacer.c).
 *   4. Mark termination, tried once the pool is empty, world stopped: if a
 *      mutator is in the middle of mark work (a barrier flush or an assist:
 *      in_mark_work), restart the world and try again shortly (not counted
 *      as an attempt: assists are frequent, and counting them sent whole
 *      drains into the stop, 26 ms on binary-trees).  Grey every barrier
 *      buffer; if that found new objects, restart the world and go back to
 *      3 (at most TERMINATION_RETRIES times, then drain with the world
 *      stopped).  Then
 *      MGC_VERIFY's re-mark, barrier and black allocation off, a new sweep
 *      generation, restart.
 *   5. Sweeping runs lazily in the allocator and in the background sweeper.
 * With MGC_CONCURRENT=0, steps 2-4 are one stop: roots and the whole graph
 * are marked with the world stopped, on all CPUs.
 *
 * No stopped thread may hold a lock the stopped-world code takes: the
 * collector takes threads_lock and the roots lock before stopping, marking
 * reads span state without locks, no span is being swept (step 1), and the
 * work pool's lock is only ever taken by marking code, which a stopped
 * mutator can only be running with in_mark_work set (step 4 waits for it).
 *
 * The collector thread: started by gc_init, blocks every signal, never
 * registered.  Allocation slow paths over the trigger wake it
 * (collector_request); gc_collect asks for a forced cycle and waits.
 * gc_lock (rank LOCK_GC) is held for a whole cycle and by the settings.
 */
#include "gc/collector.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "mgc.h"

#include "alloc/heaplive.h"
#include "gc/barrier.h"
#include "gc/ephemeron.h"
#include "gc/finalizer.h"
#include "gc/mark.h"
#include "gc/pacer.h"
#include "gc/stats.h"
#include "gc/sweep.h"
#include "gc/verify.h"
#include "runtime/config.h"
#include "runtime/init.h"
#include "runtime/lock.h"
#include "runtime/os.h"
#include "runtime/roots.h"
#include "runtime/stw.h"
#include "runtime/thread.h"
#include "runtime/throw.h"

/* Termination attempts that may send marking back to the concurrent phase
 * before the rest is drained with the world stopped. */
#define TERMINATION_RETRIES 8
/* Wait between attempts when a mutator is in the middle of mark work. */
#define TERMINATION_BACKOFF_NS 20000
/* Before a stop, wait at most this many backoffs, with the world running,
 * for no mutator to be in mark work (await_mark_work_quiet). */
#define QUIET_POLLS 50
/* Allocating threads wait for the cycle when the heap is this far over
 * its goal (the assists could not keep up, or marking is stopped-world). */
#define HEAP_HARD_FACTOR 2

/* A request made on a swept heap stands while heap_live is at most this
 * far under the trigger it crossed (see run_cycle): the dips of a program
 * that frees as it allocates are a span's worth or two (spans of up to
 * 88 KiB), while one that has freed much more since needs no cycle. */
#define REQUEST_STANDS_WITHIN ((uintptr_t)512 << 10)

static struct mgc_lock gc_lock = MGC_LOCK_INITIALIZER(LOCK_GC);
static int disable_count;                /* under gc_lock */
static uint64_t last_cycle_end_ns;       /* under gc_lock */
static uintptr_t last_marked_live;       /* under gc_lock */

/* Requests, under req_mutex (taken with lock_mutex: a registered thread
 * waits for it parked, runtime/lock.h). */
static pthread_mutex_t req_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t req_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static bool trigger_pending;
/* The sweep generation and trigger of the last request that found that
 * generation swept through: heap_live had reached the trigger by
 * allocation, not by garbage waiting to be swept (see run_cycle). */
static uintptr_t trigger_swept_gen, trigger_swept_at;
static uint64_t forced_requested;        /* forced cycles asked for */
static uint64_t forced_done;             /* requests served by finished cycles */
static uint64_t cycles_done;
static atomic_word cycle_running;
atomic_word collector_idle_wakes;

static void sleep_ns(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  nanosleep(&ts, NULL);
}

struct test_hold collector_hold_after_setup, collector_hold_before_trigger_test;

static unsigned stw_mark_workers(void) {
  if (config.mark_workers_set) return (unsigned)config.mark_workers;
  int n = os_cpu_count();
  return (unsigned)(n > 8 ? 8 : n);
}

static void record_root_range(uintptr_t lo, uintptr_t hi, void *ctx) { mark_record_root_range(ctx, lo, hi); }
static void grey_root_range(uintptr_t lo, uintptr_t hi, void *ctx) { mark_grey_range(ctx, lo, hi); }

static uint64_t max_stop_latency_ns; /* of the current cycle, for MGC_TRACE=2 */

/* Returns when the world began to stop: a pause is counted from there,
 * not from before the locks.  Waiting for threads_lock (a thread
 * registering, or gc_get_stats reading every mcache, preempted while it
 * holds the lock) stops nobody, and it had made the reported setup pauses
 * of a 7-thread soak 1-4 ms long when the threads were stopped for
 * 0.1 ms. */
static uint64_t stop_world(void) {
  lock_acquire(&threads_lock);
  roots_lock_for_stw();
  uint64_t began = os_nanotime();
  stw_stop();
  if (stw_last_stop_latency_ns > max_stop_latency_ns) max_stop_latency_ns = stw_last_stop_latency_ns;
  return began;
}

/* Returns when the world was released (see stw_start). */
static uint64_t start_world(void) {
  uint64_t released_at = stw_start();
  roots_unlock_after_stw();
  lock_release(&threads_lock);
  return released_at;
}

static bool mutator_in_mark_work(void);

/* A stop that finds a mutator in mark work (an assist, a barrier flush)
 * is wasted: the world restarts at once, and the program paid a pause for
 * nothing; with assists doing much of the marking such stops were several
 * per cycle.  So before stopping, wait with the world running for a moment
 * when no mutator is in mark work.  Racy by design (a thread may enter
 * right after), bounded (QUIET_POLLS), and the stop checks again. */
static void await_mark_work_quiet(void) {
  for (int i = 0; i < QUIET_POLLS; i++) {
    lock_acquire(&threads_lock);
    bool busy = mutator_in_mark_work();
    lock_release(&threads_lock);
    if (!busy) return;
    sleep_ns(TERMINATION_BACKOFF_NS);
  }
}

/* Stop the world at a moment when no sweep is half done (a stopped
 * sweeper would clear mark bits the new mark sets) and no thread is in the
 * middle of allocating a large object (its address may be in no root).
 * Every thread's free memo is forgotten and its spans' free keys cleared:
 * from here on the barrier may be on, and the sweep generation will move
 * (alloc/mcache.c, "The free memo"; runtime/api.c, "Free keys"). */
static uint64_t stop_world_for_mark_start(void) {
  await_mark_work_quiet();
  uint64_t t0 = stop_world();
  while (atomic_load_acquire(&sweeps_in_progress) || mutator_in_mark_work()) {
    stats_record_pause(start_world() - t0); /* stopped all the same */
    sleep_ns(TERMINATION_BACKOFF_NS);
    await_mark_work_quiet();
    t0 = stop_world();
  }
#if MGC_DEBUG >= 1
  if (!sweep_all_done_stw()) mgc_throw("a span was left unswept at mark start");
#endif
  for (struct mthread *t = threads_head; t; t = t->next) {
    mcache_forget_free_memo(&t->mcache);
    mcache_revoke_free_keys(&t->mcache);
  }
  return t0;
}

static bool mutator_in_mark_work(void) {
  for (struct mthread *t = threads_head; t; t = t->next)
    if (atomic_load_acquire(&t->in_mark_work)) return true;
  return false;
}


/* Drain with the world stopped until no pending ephemeron can be resolved,
 * then clear those whose keys are dead (gc/ephemeron.c). */
static uintptr_t settle_ephemerons_stw(struct gcwork *w, unsigned workers, struct cycle_record *rec) {
  uintptr_t marked = 0;
  while (ephemerons_resolve(w, true)) marked += mark_drain_parallel(w, workers, false);
  rec->ephemerons_cleared = ephemerons_clear_dead_stw();
  return marked;
}

/* End of marking, world stopped: verify, switch off, new sweep generation. */
static void finish_mark_stw(struct cycle_record *rec) {
  if (config.verify) rec->verify_misses = verify_mark_stw();
  barrier_set_stw(0);
  atomic_store_relaxed(&alloc_black, 0);
  pacer_end_mark_stw();
  rec->heap_at_mark_end = atomic_load_relaxed(&heap_live);
  /* Now, before the threads give their spans back for the new sweep
   * generation: the slack their caches build up over a cycle.  Part of
   * heap_live by construction; bounded by it all the same, so that a
   * miscount can never make the goal unbounded. */
  uintptr_t slack = atomic_load_relaxed(&heap_cache_slack);
  rec->cache_slack_at_mark_end = slack < rec->heap_at_mark_end ? slack : rec->heap_at_mark_end;
  rec->mark_end_ns = os_nanotime();
  sweep_start_cycle_stw();
}

static uintptr_t mark_concurrent(struct cycle_record *rec) {
  struct gcwork w = {0};
  uintptr_t marked = 0;
  unsigned workers = (unsigned)config.mark_workers;
  rec->workers = workers;

  uint64_t t0 = stop_world_for_mark_start();
  rec->mark_start_ns = os_nanotime();
  rec->heap_at_mark_start = atomic_load_relaxed(&heap_live);
  if (config.verify) verify_no_marks_stw();
  barrier_set_stw(1);
  atomic_store_relaxed(&alloc_black, 1);
  pacer_start_mark_stw(rec->heap_at_mark_start);
  roots_enumerate_stw(record_root_range, &w);
  mark_snapshot_cached_words_stw();
  rec->pause_setup_ns = start_world() - t0;
  stats_record_pause(rec->pause_setup_ns);
  mark_grey_recorded_roots(&w);
  finalizers_mark_roots(&w);
  marked += w.marked_bytes;
  w.marked_bytes = 0;
  test_hold_point(&collector_hold_after_setup);

  unsigned stops = 0;
  for (unsigned attempt = 0;;) {
    marked += mark_drain_parallel(&w, workers, true);
    while (ephemerons_resolve(&w, false)) marked += mark_drain_parallel(&w, workers, true);
    /* Work an assist left in the pool meanwhile: drain it first. */
    if (workpool_has_work()) continue;
    await_mark_work_quiet();
    if (workpool_has_work()) continue;
    uint64_t t1 = stop_world();
    stops++;
    if (mutator_in_mark_work()) {
      /* Not an attempt: an assist or a barrier flush is under way, and
       * what it leaves goes to the pool, drained above. */
      uint64_t p = start_world() - t1;
      rec->pause_term_ns += p;
      stats_record_pause(p);
      sleep_ns(TERMINATION_BACKOFF_NS);
      continue;
    }
    attempt++;
    barrier_flush_all_stw(&w);
    marked += w.marked_bytes;
    w.marked_bytes = 0;
    bool more = workpool_has_work() || (w.cur && w.cur->n) || (w.spare && w.spare->n);
    if (!more) more = ephemerons_resolve(&w, false);
    if (more && attempt <= TERMINATION_RETRIES) {
      gcwork_flush(&w);
      uint64_t p = start_world() - t1;
      rec->pause_term_ns += p;
      stats_record_pause(p);
      continue;
    }
    if (more) marked += mark_drain_parallel(&w, stw_mark_workers(), false);
    marked += settle_ephemerons_stw(&w, stw_mark_workers(), rec);
    uintptr_t scanned;
    marked += mark_take_mutator_marked(&scanned);
    finish_mark_stw(rec);
    uint64_t p = start_world() - t1;
    rec->pause_term_ns += p;
    stats_record_pause(p);
    rec->termination_attempts = stops;
    break;
  }
  gcwork_dispose(&w);
  return marked;
}

static uintptr_t mark_stopped_world(struct cycle_record *rec) {
  struct gcwork w = {0};
  uint64_t t0 = stop_world_for_mark_start();
  rec->mark_start_ns = os_nanotime();
  rec->heap_at_mark_start = atomic_load_relaxed(&heap_live);
  if (config.verify) verify_no_marks_stw();
  mark_snapshot_cached_words_stw(); /* marks each thread's tiny block too */
  roots_enumerate_stw(grey_root_range, &w);
  finalizers_mark_roots(&w); /* no mutator holds its lock now (finalizer.c) */
  rec->workers = stw_mark_workers();
  uintptr_t marked = mark_drain_parallel(&w, rec->workers, false);
  marked += settle_ephemerons_stw(&w, rec->workers, rec);
  finish_mark_stw(rec);
  rec->pause_setup_ns = start_world() - t0;
  stats_record_pause(rec->pause_setup_ns);
  gcwork_dispose(&w);
  return marked;
}

static void cycle_locked(bool forced) {
  struct cycle_record rec = {0};
  rec.start_ns = os_nanotime();
  rec.forced = forced;
  rec.concurrent = config.concurrent;
  uint64_t cpu0 = os_thread_cpu_ns();
  struct pacer_assists assists;
  pacer_take_assists(&assists);
  mark_take_helper_cpu_ns();
  sweep_finish();
  rec.heap_before = atomic_load_relaxed(&heap_live);
  roots_capture_segments();
  atomic_store_relaxed(&cycle_running, 1);
  rec.heap_marked = config.concurrent ? mark_concurrent(&rec) : mark_stopped_world(&rec);
  atomic_store_relaxed(&cycle_running, 0);
  rec.end_ns = os_nanotime();
  rec.max_stop_latency_ns = max_stop_latency_ns;
  max_stop_latency_ns = 0;
  pacer_take_assists(&assists);
  rec.assist_ns = assists.cpu_ns;
  rec.assists = assists.count;
  rec.assist_wall_ns = assists.wall_ns;
  rec.assist_max_ns = assists.max_wall_ns;
  rec.cpu_ns = os_thread_cpu_ns() - cpu0 + mark_take_helper_cpu_ns() + rec.assist_ns;
  struct pacer_cycle pc = {
    .marked = rec.heap_marked,
    .cache_slack = rec.cache_slack_at_mark_end,
    .alloc_during_mark = rec.heap_at_mark_end > rec.heap_at_mark_start
                             ? rec.heap_at_mark_end - rec.heap_at_mark_start : 0,
    .gc_cpu_ns = rec.cpu_ns,
    .mark_wall_ns = rec.mark_end_ns - rec.mark_start_ns,
    .mutator_ns = last_cycle_end_ns && rec.mark_start_ns > last_cycle_end_ns
                      ? rec.mark_start_ns - last_cycle_end_ns : 0,
    .alloc_before_mark = rec.heap_at_mark_start > last_marked_live
                             ? rec.heap_at_mark_start - last_marked_live : 0,
    .wall_ns = last_cycle_end_ns ? rec.end_ns - last_cycle_end_ns : rec.end_ns - rec.start_ns,
  };
  pacer_end_cycle(&pc, config.concurrent);
  last_cycle_end_ns = rec.end_ns;
  last_marked_live = rec.heap_marked;
  rec.heap_goal = pacer_goal();
  stats_record_cycle(&rec);
  if (config.trace) stats_trace_cycle(&rec, stats_cycles());
  sweep_wake_background();
  finalizers_after_cycle();
}

/* Run one cycle if it is still wanted.  swept_gen, swept_at: the sweep
 * generation and the trigger of the last request that found the heap
 * swept through (trigger_swept_gen, trigger_swept_at).
 *
 * A request made before the sweep may be over the trigger only by the
 * last cycle's garbage: the heap is swept and the trigger tested again.
 * A request made after it stands, if no cycle and no change of trigger
 * came since, even if heap_live has dipped a little under the trigger by
 * now.  A program that frees what it allocates moves heap_live up by a
 * span's free slots at each refill and down at each batch of frees; near
 * the trigger every rise asked for a cycle, and the test made a moment
 * later often fell in a trough: the collector woke and slept again, in
 * alloc_bench's ring_mix with gc_alloc_atomic 32 to 208 times in 20
 * million operations that ran 3 cycles. */
static void run_cycle(bool forced, uintptr_t swept_gen, uintptr_t swept_at) {
  test_hold_point(&collector_hold_before_trigger_test);
  lock_acquire(&gc_lock);
  uintptr_t trigger = atomic_load_relaxed(&heap_trigger);
  bool go = forced || (swept_gen == atomic_load_relaxed(&mheap_sweepgen) && swept_at == trigger &&
                       atomic_load_relaxed(&heap_live) + REQUEST_STANDS_WITHIN >= trigger);
  if (!go && atomic_load_relaxed(&heap_live) >= trigger) {
    sweep_finish(); /* the trigger stays: the pacer sets it under gc_lock */
    go = atomic_load_relaxed(&heap_live) >= trigger;
  }
  if (go) cycle_locked(forced);
  else atomic_fetch_add(&collector_idle_wakes, 1);
  lock_release(&gc_lock);
}

static void *collector_main(void *arg) {
  (void)arg;
  os_name_thread("mgc-collect");
  lock_mutex(&req_mutex);
  for (;;) {
    while (!trigger_pending && forced_requested == forced_done) pthread_cond_wait(&req_cond, &req_mutex);
    uint64_t serving = forced_requested;
    bool forced = serving != forced_done;
    uintptr_t swept_gen = trigger_swept_gen, swept_at = trigger_swept_at;
    trigger_pending = false;
    pthread_mutex_unlock(&req_mutex);

    run_cycle(forced, swept_gen, swept_at);

    lock_mutex(&req_mutex);
    forced_done = serving;
    cycles_done++;
    pthread_cond_broadcast(&done_cond);
  }
  return NULL;
}

/* Wait for the cycle count to pass `target` (or for forced request `ticket`
 * to be served), parked as a blocking thread so the cycle can stop the
 * world without us. */
static void wait_for(uint64_t ticket, uint64_t cycles_target) {
  struct mthread *t = thread_current;
  if (t) stw_blocking_begin(t);
  lock_mutex(&req_mutex);
  while (ticket ? forced_done < ticket : cycles_done < cycles_target)
    pthread_cond_wait(&done_cond, &req_mutex);
  pthread_mutex_unlock(&req_mutex);
  if (t) stw_blocking_end(t);
}

static void trigger_hook(void) {
  lock_mutex(&req_mutex);
  uint64_t target = cycles_done + 1;
  uintptr_t sg = atomic_load_acquire(&mheap_sweepgen), trigger = atomic_load_relaxed(&heap_trigger);
  if (sweep_walked_generation() == sg && atomic_load_relaxed(&heap_live) >= trigger) {
    trigger_swept_gen = sg;
    trigger_swept_at = trigger;
  }
  if (!trigger_pending) {
    trigger_pending = true;
    pthread_cond_signal(&req_cond);
  }
  pthread_mutex_unlock(&req_mutex);
  /* Stopped-world marking, or a heap far past its goal: wait. */
  uintptr_t goal = pacer_goal();
  bool far_over = goal < UINTPTR_MAX / HEAP_HARD_FACTOR &&
                  atomic_load_relaxed(&heap_live) > goal * HEAP_HARD_FACTOR;
  if (!config.concurrent || far_over) wait_for(0, target);
}

int collector_init(void) {
  pacer_init(config.gogc, config.memlimit);
  stats_init();
  heap_set_trigger_hook(trigger_hook);
  heap_assist_hook = pacer_assist;
  int err = stw_init();
  if (!err) err = sweep_init();
  if (err) return err;
  return os_start_background_thread(collector_main, NULL);
}

void collector_fork_prepare(void) {
  lock_mutex(&req_mutex);
  lock_acquire(&gc_lock);
}

void collector_fork_parent(void) {
  lock_release(&gc_lock);
  pthread_mutex_unlock(&req_mutex);
}

void collector_after_fork_child(void) {
  lock_rank_release(&gc_lock);
  lock_reinit_after_fork(&gc_lock);
  pthread_mutex_init(&req_mutex, NULL);
  pthread_cond_init(&req_cond, NULL);
  pthread_cond_init(&done_cond, NULL);
  trigger_pending = false;
  trigger_swept_gen = 0;
  forced_done = forced_requested;
  mark_after_fork_child();
  sweep_after_fork_child();
  os_start_background_thread(collector_main, NULL);
}

GC_API void gc_collect(void) {
  init_once();
  lock_mutex(&req_mutex);
  uint64_t ticket = ++forced_requested;
  pthread_cond_signal(&req_cond);
  pthread_mutex_unlock(&req_mutex);
  wait_for(ticket, 0);
  sweep_finish();
  /* sweep_finish passes over spans another thread is sweeping: wait for
   * those to be done too, so that what the collection found unreachable
   * is free on return, as mgc.h says (and gc_release_memory finds the
   * pages). */
  while (atomic_load_acquire(&sweeps_in_progress)) sleep_ns(TERMINATION_BACKOFF_NS);
}

GC_API int gc_set_percent(int percent) {
  init_once();
  lock_acquire(&gc_lock);
  int old = pacer_set_gogc(percent);
  lock_release(&gc_lock);
  return old;
}

GC_API size_t gc_set_memory_limit(size_t bytes) {
  init_once();
  lock_acquire(&gc_lock);
  uint64_t old = pacer_set_memlimit(bytes == SIZE_MAX ? UINT64_MAX : bytes);
  lock_release(&gc_lock);
  return old == UINT64_MAX ? SIZE_MAX : (size_t)old;
}

GC_API void gc_disable(void) {
  init_once();
  lock_acquire(&gc_lock);
  disable_count++;
  pacer_set_disabled(true);
  lock_release(&gc_lock);
}

GC_API void gc_enable(void) {
  init_once();
  lock_acquire(&gc_lock);
  if (disable_count > 0) disable_count--;
  else mgc_report("gc_enable without a matching gc_disable; ignored");
  pacer_set_disabled(disable_count > 0);
  lock_release(&gc_lock);
}
