/*
 * pacer.c: the heap goal, the trigger, mark assists and the memory limit.
 *
 * Goal (as Go): goal = marked * (1 + GOGC/100), never under HEAP_GOAL_MIN,
 * plus the caches' slack at the last mark end (heap_cache_slack: free
 * slots heap_live counts as allocated because an mcache holds their span).
 * Go counts cached spans whole as well, but its spans for objects of
 * 240 bytes to 8 KiB are one to six pages, most one or two; ours are
 * eight or more
 * (64 KiB: fewer refills), so a thread allocating objects of every size
 * holds up to 4 MiB of slack per kind (scanned, atomic).  Without it in the goal, a
 * program with 1.3 MB live sat at 3.7 MB of heap_live against a 4 MB
 * goal: it collected after 0.3 MB of garbage instead of 2.7 MB, and
 * heap_live, rising with each refill and falling with each batch of
 * frees, crossed the trigger and woke the collector for nothing some 27
 * times per cycle (alloc_bench's ring_mix with gc_alloc_atomic, whose
 * tiny objects are left to the collector: 35-40 collections per 20
 * million operations and about 12% of its time; 3 collections with the
 * slack in the goal).  The goal so bounds the program's objects, not the
 * caches' reserve.  The figure is the one at the last mark end, before
 * the threads give their spans back for the new sweep generation: a
 * program that has just stopped using some size classes (or threads) gets
 * one cycle's goal too large by their spans.
 * With a memory limit L the goal is also held under
 *   L - metadata - headroom,   headroom = max(3% of L, 1 MiB),
 * but never under the live heap: a program that needs more than L gets it.
 *
 * Trigger: concurrent marking must end near the goal, so it starts early by
 * the runway: the program's allocation rate while no mark ran (bytes per
 * ns between cycles) times how long the last mark took, scaled by how the
 * live heap changed, plus RUNWAY_MARGIN.  Using the rate outside marking
 * keeps assists (which slow allocation during the mark) from shrinking the
 * runway cycle after cycle.  The trigger is clamped between 95% and 98% of
 * the way from marked to goal; with MGC_CONCURRENT=0 the trigger is the
 * goal itself.  Go's lower bound is 70%, to keep assists rare.  Here a
 * late start costs little: assists are bounded (100 µs each, then a rest)
 * and the background credit pays much of them.  An early one costs
 * cycles: objects allocated during the mark are black and fill the next
 * cycle's room, so the longer the mark runs before the goal, the less the
 * program allocates per cycle.  Binary-trees depth 20 (it allocates
 * faster than one worker marks, so the runway exceeds the way and the
 * trigger sits at its lower bound): at 70%, 165-180 cycles against the
 * stop-the-world mode's 137; at 85%, 157, and 1.12x the stop-the-world
 * time; at 95%, 1.06x (and GCBench 1.30x -> 1.16x, interleaved runs).
 * The pause probe's longest gaps were no worse at 95% than at 85%.  When
 * the memory limit sets the goal, the lower bound stays at 85%
 * (TRIGGER_MIN_FRACTION_AT_LIMIT): there an overshoot costs memory the
 * program asked not to use, not just cycles.
 *
 * Assists: while marking, a thread that caches a span (or allocates a large
 * object) owes assist_ratio scan bytes per byte; once its debt passes
 * ASSIST_MIN_WORK it pays what it can from the scan work the background
 * workers banked (mark_take_background_credit, as Go's background credit)
 * and scans the rest itself.  Every allocated byte is then paid for by
 * someone's scanning, so the mark still ends by the goal, but a program
 * thread no longer marks what the workers already marked for it: with
 * its own scanning only, binary-trees' main thread did about half of all
 * marking (perf), and concurrent mode took 1.1-1.35x the stop-the-world
 * mode's time; with the bank about 10% less (interleaved runs).  assist_ratio =
 * expected scan work / bytes left to the goal, recomputed at mark start,
 * so the heap cannot run past the goal while grey work remains.  Grey work
 * an assist can take must be in the shared pool: an assist that finds it
 * empty asks the workers to share (workpool_assist_wanted, read by
 * gcwork_balance), and past the goal it waits a little for work instead of
 * allocating on (park_assist), then scans what came.  Without both, a
 * single mark worker kept every grey object in its own buffers and the
 * heap reached twice the goal at every mark (tests/concurrent/test_pacer.c).
 *
 * CPU cap near the limit: a leaky bucket fills with collector CPU time and
 * drains at half the machine's CPU.  While it holds more than one second per
 * CPU, the limit is ignored for the goal (GOGC rules) and assists stop, so
 * a program stuck at its limit runs at least at half speed instead of
 * collecting back to back.
 *
 * State is written under the gc lock (or with the world stopped);
 * assist_ratio and the bucket are atomics read by assisting threads.
 */
#include "gc/pacer.h"

#include <time.h>

#include "alloc/heaplive.h"
#include "alloc/mheap.h"
#include "alloc/scavenger.h"
#include "gc/barrier.h"
#include "gc/mark.h"
#include "gc/workbuf.h"
#include "runtime/os.h"
#include "runtime/stw.h"
#include "runtime/thread.h"

#define HEAP_GOAL_MIN ((uintptr_t)4 << 20)
#define TRIGGER_MIN_FRACTION 0.95
#define TRIGGER_MAX_FRACTION 0.98
/* When the memory limit sets the goal, running past it is what the limit
 * forbids: marks may start from 85% of the way (the bound before 95%). */
#define TRIGGER_MIN_FRACTION_AT_LIMIT 0.85
#define RUNWAY_MARGIN 1.25
/* One assist scans at most this much, for at most ASSIST_MAX_NS (scan
 * speed varies tenfold with cache misses: 512 KiB of linked 64-byte nodes
 * took 2 ms); the rest of the debt waits for the next slow path, so no
 * single allocation stalls for long. */
#define ASSIST_MAX_WORK ((uintptr_t)512 << 10)
#define ASSIST_MAX_NS 100000
/* After an assist cut short by ASSIST_MAX_NS, the thread's next assist
 * waits this long (unless the heap is past its goal): one loop iteration
 * of a program may refill a dozen spans of different classes, and an
 * assist at each made a 1.4 ms gap of 100 µs pieces (gap-profile, pause
 * probe at 1 GiB).  Assists then take at most half the thread's time,
 * the rest of the debt carried.  A longer rest (400 µs) left so much
 * marking undone where two program threads kept both CPUs busy that mark
 * termination drained it with the world stopped (binary-trees on 2
 * threads: 2-4 ms stops instead of 0.3 ms). */
#define ASSIST_REST_NS 100000
/* ASSIST_BURST_*, ASSIST_MIN_WORK and ASSIST_PARK_* are in pacer.h. */
/* Fixed point for assist_ratio: scan bytes per allocated byte << 16. */
#define ASSIST_SHIFT 16

static int gogc;
static uint64_t memlimit = UINT64_MAX;
static bool disabled;
static uintptr_t marked;
static uintptr_t cache_slack;        /* heap_cache_slack at the last mark end */
static atomic_word goal = HEAP_GOAL_MIN;  /* written under the gc lock, read by allocating threads */
static uintptr_t runway;            /* bytes, from the last cycle */
static bool limit_bound;
static bool concurrent_mode = true;
static atomic_word assist_ratio;     /* fixed point, see ASSIST_SHIFT */
static atomic_word assist_ns;
/* Assists that scanned or waited since the last pacer_take_assists: how
 * many, their wall time, the longest. */
static atomic_word assist_count, assist_wall_ns, assist_max_wall_ns;
static atomic_word park_polls;
static double cpu_bucket_ns;         /* leaky bucket, under gc lock */
static atomic_word cpu_cap_active;

static void set_trigger(void) {
  if (disabled || gogc < 0) {
    if (memlimit == UINT64_MAX || disabled) {
      atomic_store_relaxed(&heap_trigger, UINTPTR_MAX);
      return;
    }
  }
  uintptr_t g = atomic_load_relaxed(&goal);
  uintptr_t trigger = g;
  if (concurrent_mode && g > marked) {
    uintptr_t span = g - marked;
    double min_fraction = limit_bound ? TRIGGER_MIN_FRACTION_AT_LIMIT : TRIGGER_MIN_FRACTION;
    uintptr_t lo = marked + (uintptr_t)(min_fraction * (double)span);
    uintptr_t hi = marked + (uintptr_t)(TRIGGER_MAX_FRACTION * (double)span);
    trigger = g > runway ? g - runway : 0;
    if (trigger < lo) trigger = lo;
    if (trigger > hi) trigger = hi;
  }
  atomic_store_relaxed(&heap_trigger, trigger);
}

static void compute_goal(void) {
  uintptr_t g;
  if (gogc < 0) {
    g = UINTPTR_MAX;
  } else {
    g = marked + (uintptr_t)((double)marked * (double)gogc / 100.0);
    if (g < HEAP_GOAL_MIN) g = HEAP_GOAL_MIN;
    g = g > UINTPTR_MAX - cache_slack ? UINTPTR_MAX : g + cache_slack;
  }
  limit_bound = false;
  if (memlimit != UINT64_MAX && !atomic_load_relaxed(&cpu_cap_active)) {
    struct mheap_stats h;
    mheap_read_stats(&h);
    uint64_t headroom = memlimit / 100 * 3;
    if (headroom < ((uint64_t)1 << 20)) headroom = (uint64_t)1 << 20;
    uint64_t overhead = h.metadata + headroom;
    uint64_t lg = memlimit > overhead ? memlimit - overhead : 0;
    if (lg < marked) lg = marked;
    if (lg < g) {
      g = (uintptr_t)lg;
      limit_bound = true;
    }
  }
  atomic_store_relaxed(&goal, g);
  set_trigger();
}

void pacer_init(int gogc_setting, uint64_t limit) {
  gogc = gogc_setting;
  memlimit = limit;
  scavenger_set_retain_limit(limit == UINT64_MAX ? UINT64_MAX : limit / 100 * 95);
  compute_goal();
}

void pacer_settings_changed(void) { compute_goal(); }

/* The largest GOGC taken (MGC_GOGC's bound too): the goal stays far from
 * overflow. */
#define GOGC_MAX 1000000

int pacer_set_gogc(int v) {
  int old = gogc;
  gogc = v < 0 ? -1 : v > GOGC_MAX ? GOGC_MAX : v;
  compute_goal();
  return old;
}

uint64_t pacer_memlimit(void) { return __atomic_load_n(&memlimit, __ATOMIC_RELAXED); }

uint64_t pacer_set_memlimit(uint64_t v) {
  uint64_t old = memlimit;
  __atomic_store_n(&memlimit, v, __ATOMIC_RELAXED); /* read by gc_get_stats */
  scavenger_set_retain_limit(v == UINT64_MAX ? UINT64_MAX : v / 100 * 95);
  compute_goal();
  return old;
}

void pacer_set_disabled(bool d) {
  disabled = d;
  set_trigger();
}

uintptr_t pacer_goal(void) { return atomic_load_relaxed(&goal); }
uintptr_t pacer_marked(void) { return marked; }
bool pacer_limit_bound(void) { return limit_bound; }

void pacer_end_cycle(const struct pacer_cycle *c, bool concurrent) {
  concurrent_mode = concurrent;
  double rate = c->mutator_ns ? (double)c->alloc_before_mark / (double)c->mutator_ns : 0.0;
  double r = rate * (double)c->mark_wall_ns * RUNWAY_MARGIN;
  if (marked && c->marked) r *= (double)c->marked / (double)marked; /* next mark scans this much */
  if (r < (double)c->alloc_during_mark) r = (double)c->alloc_during_mark;
  runway = r > (double)UINTPTR_MAX / 2 ? UINTPTR_MAX / 2 : (uintptr_t)r;
  marked = c->marked;
  cache_slack = c->cache_slack;
  /* Leaky bucket: collector CPU in, half the machine's CPU out. */
  double ncpu = (double)os_cpu_count();
  cpu_bucket_ns += (double)c->gc_cpu_ns - 0.5 * ncpu * (double)c->wall_ns;
  if (cpu_bucket_ns < 0) cpu_bucket_ns = 0;
  double cap = 1e9 * ncpu;
  if (cpu_bucket_ns > 2 * cap) cpu_bucket_ns = 2 * cap;
  atomic_store_relaxed(&cpu_cap_active, memlimit != UINT64_MAX && cpu_bucket_ns > cap);
  compute_goal();
  if (memlimit != UINT64_MAX) {
    /* Near the limit, free pages go back to the OS at once. */
    struct mheap_stats h;
    mheap_read_stats(&h);
    uint64_t held = h.sys - h.released + h.metadata;
    if (held > memlimit / 100 * 95) mheap_scavenge(held - memlimit / 100 * 95, 0);
  }
}

void pacer_start_mark_stw(uintptr_t live_now) {
  uintptr_t expected_work = marked ? marked : live_now;
  uintptr_t g = atomic_load_relaxed(&goal);
  uintptr_t left = g > live_now ? g - live_now : 0;
  uintptr_t floor = g / 20 + 1; /* past the goal: assist hard, not infinitely */
  if (left < floor) left = floor;
  uintptr_t ratio = (uintptr_t)(((double)expected_work / (double)left) * (double)(1 << ASSIST_SHIFT));
  if (atomic_load_relaxed(&cpu_cap_active)) ratio = 0;
  atomic_store_relaxed(&assist_ratio, ratio);
  mark_reset_background_credit();
}

void pacer_end_mark_stw(void) {
  atomic_store_relaxed(&assist_ratio, 0);
  mark_reset_background_credit();
}

/* Assists hold the goal: past it they neither rest nor give up. */
static bool heap_past_goal(void) { return atomic_load_relaxed(&heap_live) > atomic_load_relaxed(&goal); }

/* The part of t's debt one assist (or one wait in park_assist) pays. */
static uintptr_t debt_due_now(const struct mthread *t) {
  if (t->assist_debt <= 0) return 0;
  return (uintptr_t)t->assist_debt < ASSIST_MAX_WORK ? (uintptr_t)t->assist_debt : ASSIST_MAX_WORK;
}

/* Past the goal, an assist found no grey work to take: the workers hold
 * it in their own buffers, and one of them may not even be running (two
 * CPUs, busy mutators).  Give them the CPU: sleep in short polls until the
 * pool has work, the workers' scanning since has paid the debt (up to
 * ASSIST_MAX_WORK of it; the rest is forgiven), the mark ends or
 * ASSIST_PARK_POLLS polls pass.  The program then allocates at the pace
 * the workers mark, instead of waiting for the end of the mark (once no
 * worker marks, it does not wait at all): the last grey objects of a mark
 * are often a few long chains no assist can share (gap-profile: pause
 * probe gaps of 4 ms asleep here).  Inside a blocking region, so that a
 * stop of the world does not wait for us.  Returns true when grey work
 * came while part of the debt is still owed: t->assist_debt is then that
 * part, for the caller to scan; otherwise the debt is forgiven. */
static bool park_assist(struct mthread *t, uint64_t burst_end) {
  const struct timespec poll = {0, ASSIST_PARK_POLL_NS};
  uintptr_t owed = debt_due_now(t);
  for (int i = 0; i < ASSIST_PARK_POLLS; i++) {
    if (!atomic_load_relaxed(&alloc_black) || workpool_has_work()) break;
    if (os_nanotime() + ASSIST_PARK_POLL_NS > burst_end) break;
    if (!heap_past_goal()) break;
    /* No worker marks: what is left is mark termination's, and waiting
     * only stretches the gap (gap-profile: 3-4 ms gaps asleep here while
     * the collector terminated the mark). */
    if (!mark_background_draining()) break;
    owed -= mark_take_background_credit(owed);
    if (owed == 0) break;
    atomic_fetch_add(&park_polls, 1);
    stw_blocking_begin(t);
    nanosleep(&poll, NULL);
    stw_blocking_end(t);
  }
  bool work_came = owed != 0 && atomic_load_relaxed(&alloc_black) && workpool_has_work();
  t->assist_debt = work_came ? (intptr_t)owed : 0;
  return work_came;
}

/* Scan toward t's debt, for at most ASSIST_MAX_NS from start and not past
 * burst_end.  Returns true when the pool ran dry with the heap past its
 * goal (the thread is starved: park_assist). */
static bool assist_drain(struct mthread *t, uint64_t start, uint64_t burst_end) {
  bool starved = false;
  atomic_store_release(&t->in_mark_work, 1);
  atomic_fence();
  if (atomic_load_relaxed(&alloc_black)) {
    mark_assist_begin();
    uintptr_t want = debt_due_now(t);
    uint64_t deadline = start + ASSIST_MAX_NS < burst_end ? start + ASSIST_MAX_NS : burst_end;
    uintptr_t done = mark_drain_budget(&t->gcw, want, deadline);
    uint64_t end = os_nanotime();
    bool dry = done < want && end < deadline;
    if (done < want && !dry) t->assist_rest_until = end + ASSIST_REST_NS;
    /* The pool ran dry: the workers are asked to share what they hold
     * (gcwork_balance), so that the next assist finds work; else a single
     * busy worker keeps all the grey work and the program allocates on
     * unchecked, far past the goal.  The debt is forgiven, unless the heap
     * is past its goal: then the thread waits for the workers to pay it
     * (park_assist). */
    if (dry) {
      atomic_store_relaxed(&workpool_assist_wanted, 1);
      starved = heap_past_goal();
    }
    t->assist_debt = dry && !starved ? 0 : t->assist_debt - (intptr_t)done;
    gcwork_flush(&t->gcw);
    mark_assist_end();
    mark_account_mutator(&t->gcw);
  } else {
    t->assist_debt = 0;
  }
  atomic_store_release(&t->in_mark_work, 0);
  return starved;
}

void pacer_assist(uintptr_t bytes) {
  uintptr_t ratio = atomic_load_relaxed(&assist_ratio);
  struct mthread *t = thread_current;
  if (!ratio || !t || !atomic_load_relaxed(&alloc_black)) return;
  t->assist_debt += (intptr_t)((bytes * (uint64_t)ratio) >> ASSIST_SHIFT);
  if (t->assist_debt < ASSIST_MIN_WORK) return;
  t->assist_debt -= (intptr_t)mark_take_background_credit((uintptr_t)t->assist_debt);
  if (t->assist_debt < ASSIST_MIN_WORK) return;
  uint64_t start = os_nanotime();
  if (start < t->assist_rest_until && !heap_past_goal()) return;
  if (start - t->assist_burst_last_end >= ASSIST_BURST_REST_NS) t->assist_burst_ns = 0;
  else if (t->assist_burst_ns >= ASSIST_BURST_MAX_NS) return; /* rests: the debt is carried */
  uint64_t burst_end = start + (ASSIST_BURST_MAX_NS - t->assist_burst_ns);
  uint64_t t0 = os_thread_cpu_ns();
  /* A park that ends because the workers shared grey work is followed by
   * a drain of it, not by forgiving the debt: the thread then marks beside
   * the workers where it slept (GCBench: 1.34 s instead of 1.49, medians of
   * 6 interleaved runs; binary-trees and the pause probe no worse, within
   * this machine's noise).  Starved again, it does not park twice, so one
   * call takes at most 100 + 400 + 100 µs, and a burst of calls at most
   * ASSIST_BURST_MAX_NS. */
  if (assist_drain(t, start, burst_end) && park_assist(t, burst_end) &&
      assist_drain(t, os_nanotime(), burst_end))
    t->assist_debt = 0;
  uint64_t end = os_nanotime();
  atomic_fetch_add(&assist_ns, os_thread_cpu_ns() - t0);
  t->assist_burst_ns += end - start;
  t->assist_burst_last_end = end;
  atomic_fetch_add(&assist_count, 1);
  atomic_fetch_add(&assist_wall_ns, end - start);
  uintptr_t longest = atomic_load_relaxed(&assist_max_wall_ns);
  while (end - start > longest && !atomic_cas(&assist_max_wall_ns, longest, end - start))
    longest = atomic_load_relaxed(&assist_max_wall_ns);
}

void pacer_take_assists(struct pacer_assists *out) {
  out->cpu_ns = atomic_exchange(&assist_ns, 0);
  out->count = atomic_exchange(&assist_count, 0);
  out->wall_ns = atomic_exchange(&assist_wall_ns, 0);
  out->max_wall_ns = atomic_exchange(&assist_max_wall_ns, 0);
}

uint64_t pacer_take_park_polls(void) { return atomic_exchange(&park_polls, 0); }
