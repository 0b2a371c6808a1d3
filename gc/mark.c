/*
 * mark.c: scanning, greying and the parallel drain (see mark.h).
 *
 * Finding objects.  A word v is a candidate pointer when it lies in the
 * reserved heap range [arena_lo, arena_hi); span_of_heap() then finds its
 * in-use span, the slot index comes from one multiplication, and the slot
 * must be allocated (mcache_slot_is_allocated, which counts the current
 * word of a span some thread is allocating from as allocated).  Interior
 * pointers therefore keep their whole object alive.
 *
 * Parallel drain.  Workers pop from their own buffers, then from the pool.
 * A worker with nothing to do increments workpool_waiting and spins until
 * either the pool has work (it decrements and goes on) or every worker is
 * waiting, which can only happen when no worker holds work and the pool is
 * empty: only a worker that is not waiting can add to the pool, and it
 * waits only after failing to take from it.  Busy workers split their
 * buffer into the pool when someone is waiting (gcwork_balance).
 *
 * Helpers are threads started on first use; they block all signals (they
 * are never stopped) and sleep on a condition variable between drains.
 *
 * Marking in the background.  While the world runs, the helpers alone
 * drain (the collector thread waits), at a lower priority
 * (MARK_HELPER_NICE), and a helper yields the CPU every MARK_YIELD_NS of
 * work.  A machine with fewer free CPUs than runnable threads time-slices
 * a helper with the program's threads; at equal priority the scheduler
 * took a program thread off the CPU for a whole slice (4 ms at every
 * tick, the longest gaps the pause probe saw).  Lowered and yielding, a
 * helper gives a waiting program thread the CPU within about
 * MARK_YIELD_NS, and marking that falls behind is made up by the
 * program's assists (gc/pacer.c), which are bounded in time.  A helper
 * that has had less than MARK_MIN_SHARE_PERCENT of a CPU in this drain
 * stops yielding until it has: assists come only with allocation, and a
 * program whose threads fill every CPU without allocating (one waiting in
 * gc_collect, say) must still see its collection end.  The collector
 * thread itself keeps its priority: it stops the world, and a stop must
 * not wait behind other processes.
 */
#include "gc/mark.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>

#include "alloc/arena.h"
#include "alloc/mcache.h"
#include "gc/ephemeron.h"
#include "gc/types.h"
#include "runtime/os.h"
#include "runtime/thread.h"
#include "runtime/throw.h"

void mark_grey_range(struct gcwork *w, uintptr_t lo, uintptr_t hi) {
  while (hi - lo > OBLET_BYTES) {
    gcwork_push(w, lo, OBLET_BYTES);
    lo += OBLET_BYTES;
  }
  if (hi > lo) gcwork_push(w, lo, hi - lo);
}

/* Is slot idx allocated, as the marker must see it: the current word of a
 * cached span counts as allocated (see mspan.h); remote frees not yet
 * folded count as free.  Same answer as mcache_slot_is_allocated(NULL, ..)
 * with the cheap tests first. */
MGC_INLINE bool marker_sees_allocated(const struct mspan *s, uintptr_t idx) {
  uintptr_t w = idx >> 6, bit = (uintptr_t)1 << (idx & 63);
  if (atomic_load_relaxed(&s->cached_by) && w == atomic_load_acquire(&s->cur_word)) return true;
  if (!(atomic_load_relaxed(&s->allocbits[w]) & bit)) return false;
  return !atomic_load_relaxed(&s->has_freed) || !(atomic_load_relaxed(&s->freedbits[w]) & bit);
}

MGC_NO_SANITIZE_SCAN void mark_pointer(struct gcwork *w, uintptr_t v) {
  struct mspan *s = span_of_heap(v);
  if (!s) return;
  uintptr_t idx = span_object_index(s, v);
  if (span_is_marked(s, idx)) return; /* the common case in a shared graph */
  if (!marker_sees_allocated(s, idx)) return;
  if (!span_try_mark(s, idx)) return;
  uintptr_t size = span_slot_size(s);
  w->marked_bytes += size;
  mark_push_object(w, s, span_object_addr(s, idx), size);
}

void mark_push_object(struct gcwork *w, const struct mspan *s, uintptr_t base, uintptr_t size) {
  if (spanclass_typed(s->spanclass)) gcwork_push(w, base, size | GREY_TYPED);
  else if (!spanclass_noscan(s->spanclass)) mark_grey_range(w, base, base + size);
}

static void mark_value(struct gcwork *w, uintptr_t v, uintptr_t slot) {
  (void)slot;
  if (arena_in_range(v)) mark_pointer(w, v);
}

/* Reads arbitrary words of stacks, data segments and objects: a stopped
 * thread's stack below its frame pointer and an object's stale words are
 * read on purpose. */
MGC_NO_SANITIZE_SCAN static void scan_conservative(struct gcwork *w, uintptr_t lo, uintptr_t hi) {
  uintptr_t alo = atomic_load_relaxed(&arena_lo), span = atomic_load_relaxed(&arena_hi) - alo;
  const uintptr_t *p = (const uintptr_t *)MGC_ROUND_UP(lo, sizeof(uintptr_t));
  const uintptr_t *end = (const uintptr_t *)MGC_ROUND_DOWN(hi, sizeof(uintptr_t));
  w->scanned_bytes += hi - lo;
  for (; p < end; p++) {
    uintptr_t v = *p;
    MGC_SCANNED_WORD(v);
    if (v - alo < span) mark_pointer(w, v);
  }
}

void mark_object_words_now(struct gcwork *w, const struct mspan *s, uintptr_t base) {
  uintptr_t size = span_slot_size(s);
  if (spanclass_typed(s->spanclass)) types_scan_object(w, base, size, mark_value, NULL);
  else if (!spanclass_noscan(s->spanclass)) scan_conservative(w, base, base + size);
}

static atomic_word mutator_marked_bytes, mutator_scanned_bytes;

void mark_account_mutator(struct gcwork *w) {
  if (w->marked_bytes) atomic_fetch_add(&mutator_marked_bytes, w->marked_bytes);
  if (w->scanned_bytes) atomic_fetch_add(&mutator_scanned_bytes, w->scanned_bytes);
  w->marked_bytes = w->scanned_bytes = 0;
}

uintptr_t mark_take_mutator_marked(uintptr_t *scanned) {
  *scanned = atomic_exchange(&mutator_scanned_bytes, 0);
  return atomic_exchange(&mutator_marked_bytes, 0);
}

/* Root words recorded with the world stopped and greyed after it restarts:
 * the stop then costs a filtered copy of the roots instead of a mark of
 * every object they name.  The values are the snapshot, so greying them a
 * little later loses nothing.  Only the collector thread touches these. */
static uintptr_t *root_words;
static size_t root_words_len, root_words_cap;

static bool root_words_grow(void) {
  size_t cap = root_words_cap ? root_words_cap * 2 : 4096;
  uintptr_t *words = os_alloc_metadata(cap * sizeof(uintptr_t));
  if (!words) return false;
  if (root_words) {
    memcpy(words, root_words, root_words_len * sizeof(uintptr_t));
    os_free_metadata(root_words, root_words_cap * sizeof(uintptr_t));
  }
  root_words = words;
  root_words_cap = cap;
  return true;
}

MGC_NO_SANITIZE_SCAN void mark_record_root_range(struct gcwork *w, uintptr_t lo, uintptr_t hi) {
  uintptr_t alo = atomic_load_relaxed(&arena_lo), span = atomic_load_relaxed(&arena_hi) - alo;
  const uintptr_t *p = (const uintptr_t *)MGC_ROUND_UP(lo, sizeof(uintptr_t));
  const uintptr_t *end = (const uintptr_t *)MGC_ROUND_DOWN(hi, sizeof(uintptr_t));
  for (; p < end; p++) {
    uintptr_t v = *p;
    MGC_SCANNED_WORD(v);
    if (v - alo >= span) continue;
    if (root_words_len == root_words_cap && !root_words_grow()) {
      mark_pointer(w, v); /* no memory for the copy: mark it now */
      continue;
    }
    root_words[root_words_len++] = v;
  }
}

void mark_grey_recorded_roots(struct gcwork *w) {
  for (size_t i = 0; i < root_words_len; i++) mark_pointer(w, root_words[i]);
  root_words_len = 0;
}


void mark_snapshot_cached_words_stw(void) {
  for (struct mthread *t = threads_head; t; t = t->next) {
    /* The current tiny block keeps receiving objects while we mark, though
     * the block itself was allocated before: mark it now (it is noscan). */
    uintptr_t tiny = t->mcache.tiny;
    struct mspan *ts = tiny ? span_of_heap(tiny) : NULL;
    if (ts) span_try_mark(ts, span_object_index(ts, tiny));
    for (unsigned spc = 0; spc < SPANCLASS_COUNT; spc++) {
      struct mcache_slot *sl = &t->mcache.slots[spc];
      struct mspan *s = sl->span;
      if (!s || atomic_load_relaxed(&s->cached_by) != (uintptr_t)&t->mcache) continue;
      uintptr_t visit = atomic_load_relaxed(&s->visit);
      atomic_store_relaxed(&s->snap_free, sl->freebits);
      atomic_store_release(&s->snap_visit, (visit & 1) ? SNAP_NONE : visit);
    }
  }
}

/* ---- parallel drain ---------------------------------------------------- */

/* Scan grey work through a small FIFO of prefetched entries: an object
 * is fetched into the cache PREFETCH_DEPTH pops before it is scanned,
 * instead of stalling on it at once (depth-first order would otherwise
 * scan each object right after greying it, with its line still cold). */
#define PREFETCH_DEPTH 8

#define MARK_HELPER_NICE 10
#define MARK_YIELD_NS 100000
#define MARK_MIN_SHARE_PERCENT 5
/* Scanned bytes between two offers of work to idle workers, at most; and
 * objects between two offers.  Every CLOCK_EVERY_CHECKS offers, the drain
 * also reads the clock for its deadline and yield point: a clock read costs
 * about as much as scanning a small object, and at an offer per 32 small
 * objects the reads were 3.7% of binary-trees' perf samples.  Even at a
 * cache miss per object, 128 objects take well under the 100 µs of
 * MARK_YIELD_NS and ASSIST_MAX_NS.  A check after CHECK_BYTES (a big
 * object, or an oblet of a pointer array) always reads the clock: an oblet
 * names up to 1024 cold objects, and four of them between two reads let
 * assists run 300 µs and more past their 100 µs (pause probe at 256 MiB:
 * 50-70 gaps of 0.7-1.2 ms in 10 s, 2-3 after). */
#define CHECK_BYTES 4096
#define CHECK_OBJECTS 32
#define CLOCK_EVERY_CHECKS 4

/* A background helper's CPU share in this drain, for its yields. */
struct background_share {
  uint64_t wall0, cpu0, last_check;
};

static void background_share_start(struct background_share *b) {
  b->wall0 = b->last_check = os_nanotime();
  b->cpu0 = os_thread_cpu_ns();
}

/* Every MARK_YIELD_NS: yield the CPU, unless the helper has had less
 * than MARK_MIN_SHARE_PERCENT of a CPU since it started (then it is the
 * one starved, and keeps the CPU for the slice the scheduler gives it). */
static void background_yield_point(struct background_share *b) {
  uint64_t now = os_nanotime();
  if (now - b->last_check < MARK_YIELD_NS) return;
  b->last_check = now;
  uint64_t cpu = os_thread_cpu_ns() - b->cpu0;
  if (cpu * 100 < (now - b->wall0) * MARK_MIN_SHARE_PERCENT) return;
  sched_yield();
}

/* When a drain stops short of an empty pool, and whether it yields. */
struct drain_limits {
  uintptr_t budget;                /* bytes to scan */
  uint64_t deadline_ns;            /* os_nanotime; UINT64_MAX: none */
  struct background_share *share;  /* yield points; NULL: none */
};

static const struct drain_limits drain_all = {UINTPTR_MAX, UINT64_MAX, NULL};

static atomic_word background_credit;

uintptr_t mark_take_background_credit(uintptr_t want) {
  for (;;) {
    uintptr_t have = atomic_load_relaxed(&background_credit);
    uintptr_t take = have < want ? have : want;
    if (take == 0 || atomic_cas(&background_credit, have, have - take)) return take;
  }
}

uintptr_t mark_background_credit(void) { return atomic_load_relaxed(&background_credit); }

void mark_reset_background_credit(void) { atomic_store_relaxed(&background_credit, 0); }

static uintptr_t drain_prefetching(struct gcwork *w, const struct drain_limits *lim) {
  struct grey ring[PREFETCH_DEPTH];
  unsigned head = 0, count = 0, n = 0, checks = 0;
  uintptr_t start = w->scanned_bytes, checked = start, credited = start;
  for (;;) {
    struct grey g;
    while (count < PREFETCH_DEPTH && gcwork_pop(w, &g)) {
      __builtin_prefetch((const void *)g.addr);
      ring[(head + count++) % PREFETCH_DEPTH] = g;
    }
    if (count == 0) break;
    g = ring[head];
    head = (head + 1) % PREFETCH_DEPTH;
    count--;
    if (g.len & GREY_TYPED) types_scan_object(w, g.addr, g.len & ~GREY_TYPED, mark_value, ephemeron_scan);
    else scan_conservative(w, g.addr, g.addr + g.len);
    if (w->scanned_bytes - start >= lim->budget) break;
    /* Every CHECK_OBJECTS objects, or sooner after big ones: a piece of a
     * large pointer array names up to OBLET_BYTES / 8 cold objects. */
    bool big = w->scanned_bytes - checked >= CHECK_BYTES;
    if (++n % CHECK_OBJECTS != 0 && !big) continue;
    checked = w->scanned_bytes;
    gcwork_balance(w); /* for waiting workers and assists */
    if (++checks % CLOCK_EVERY_CHECKS != 0 && !big) continue;
    if (lim->deadline_ns != UINT64_MAX && os_nanotime() >= lim->deadline_ns) break;
    if (lim->share) {
      atomic_fetch_add(&background_credit, w->scanned_bytes - credited);
      credited = w->scanned_bytes;
      background_yield_point(lim->share);
    }
  }
  if (lim->share) atomic_fetch_add(&background_credit, w->scanned_bytes - credited);
  /* Entries still in the ring go back to the work buffers. */
  while (count) {
    gcwork_push(w, ring[head].addr, ring[head].len);
    head = (head + 1) % PREFETCH_DEPTH;
    count--;
  }
  return w->scanned_bytes - start;
}

uintptr_t mark_drain_budget(struct gcwork *w, uintptr_t budget, uint64_t deadline_ns) {
  struct drain_limits lim = {budget, deadline_ns, NULL};
  return drain_prefetching(w, &lim);
}

static atomic_word assists_running;

void mark_assist_begin(void) { atomic_fetch_add(&assists_running, 1); }
void mark_assist_end(void) { atomic_fetch_sub(&assists_running, 1); }

/* In the background, workers that run dry while an assist holds grey work
 * wait for it: the assist shares with waiting workers (gcwork_balance) and
 * flushes the rest when it ends.  A lone worker used to end its drain at
 * once, and its CPU stayed idle until the collector found the leftovers
 * in the pool (after await_mark_work_quiet's polls) and started another.
 * Read before the pool: an assist flushes, then ends, so a worker that
 * sees it ended also sees what it flushed. */
static bool others_may_bring_work(bool background) {
  return background && atomic_load_acquire(&assists_running) != 0;
}

static void drain_until_all_idle_uncounted(struct gcwork *w, unsigned nworkers, bool background) {
  struct background_share share;
  if (background) background_share_start(&share); /* a thread CPU clock read: only when used */
  const struct drain_limits background_limits = {UINTPTR_MAX, UINT64_MAX, &share};
  for (;;) {
    drain_prefetching(w, background ? &background_limits : &drain_all);
    if (nworkers == 1 && !others_may_bring_work(background) && !workpool_has_work()) return;
    atomic_fetch_add(&workpool_waiting, 1);
    for (unsigned spins = 0;; spins++) {
      bool others = others_may_bring_work(background);
      if (workpool_has_work()) {
        atomic_fetch_sub(&workpool_waiting, 1);
        break;
      }
      if (atomic_load_acquire(&workpool_waiting) == nworkers && !others) return;
      if (spins > 64) sched_yield();
      else cpu_relax();
    }
  }
}

static atomic_word background_drains; /* drains running with the world running */

bool mark_background_draining(void) { return atomic_load_relaxed(&background_drains) != 0; }

static void drain_until_all_idle(struct gcwork *w, unsigned nworkers, bool background) {
  if (background) atomic_fetch_add(&background_drains, 1);
  drain_until_all_idle_uncounted(w, nworkers, background);
  if (background) atomic_fetch_sub(&background_drains, 1);
}

static pthread_mutex_t helpers_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t helpers_go = PTHREAD_COND_INITIALIZER;
static pthread_cond_t helpers_done = PTHREAD_COND_INITIALIZER;
static unsigned helpers_started;      /* under helpers_mutex */
static uint64_t drain_round;          /* under helpers_mutex */
static unsigned round_helpers;        /* helpers wanted this round */
static unsigned round_joined;         /* helpers that took part */
static unsigned round_finished;
static unsigned round_nworkers;
static bool round_background;         /* the world runs: yield (see top) */
static atomic_word round_marked;
static atomic_word helper_cpu_ns;     /* CPU used by helpers, taken by the collector */

uintptr_t mark_take_helper_cpu_ns(void) { return atomic_exchange(&helper_cpu_ns, 0); }

static void *helper_main(void *arg) {
  unsigned id = (unsigned)(uintptr_t)arg;
  uint64_t seen = 0;
  os_name_thread("mgc-mark");
  os_lower_thread_priority(MARK_HELPER_NICE);
  pthread_mutex_lock(&helpers_mutex);
  for (;;) {
    while (drain_round == seen || id >= round_helpers) {
      seen = drain_round;
      pthread_cond_wait(&helpers_go, &helpers_mutex);
    }
    seen = drain_round;
    unsigned nworkers = round_nworkers;
    bool background = round_background;
    round_joined++;
    pthread_mutex_unlock(&helpers_mutex);

    struct gcwork w = {0};
    uint64_t cpu0 = os_thread_cpu_ns();
    drain_until_all_idle(&w, nworkers, background);
    atomic_fetch_add(&helper_cpu_ns, os_thread_cpu_ns() - cpu0);
    atomic_fetch_add(&round_marked, w.marked_bytes);
    gcwork_dispose(&w);

    pthread_mutex_lock(&helpers_mutex);
    round_finished++;
    pthread_cond_broadcast(&helpers_done);
  }
  return NULL;
}

static unsigned ensure_helpers(unsigned wanted) {
  while (helpers_started < wanted) {
    if (os_start_background_thread(helper_main, (void *)(uintptr_t)helpers_started) != 0) break;
    helpers_started++;
  }
  return helpers_started < wanted ? helpers_started : wanted;
}

void mark_after_fork_child(void) {
  /* The helpers were threads of the parent: start anew on first use. */
  pthread_mutex_init(&helpers_mutex, NULL);
  pthread_cond_init(&helpers_go, NULL);
  pthread_cond_init(&helpers_done, NULL);
  helpers_started = 0;
  round_helpers = 0;
  workpool_after_fork_child();
}

uintptr_t mark_drain_parallel(struct gcwork *w, unsigned nworkers, bool background) {
  if (nworkers < 1) nworkers = 1;
  pthread_mutex_lock(&helpers_mutex);
  /* In the background the caller only waits (see the top of this file),
   * unless no helper could be started. */
  unsigned helpers = ensure_helpers(background ? nworkers : nworkers - 1);
  bool caller_drains = !background || helpers == 0;
  nworkers = helpers + caller_drains;
  atomic_store_relaxed(&workpool_waiting, 0);
  atomic_store_relaxed(&round_marked, 0);
  round_helpers = helpers;
  round_nworkers = nworkers;
  round_background = background;
  round_joined = round_finished = 0;
  if (helpers) {
    gcwork_flush(w); /* let the helpers see the roots */
    drain_round++;
    pthread_cond_broadcast(&helpers_go);
  }
  pthread_mutex_unlock(&helpers_mutex);

  if (caller_drains) drain_until_all_idle(w, nworkers, background);

  pthread_mutex_lock(&helpers_mutex);
  while (round_finished < helpers) pthread_cond_wait(&helpers_done, &helpers_mutex);
  pthread_mutex_unlock(&helpers_mutex);
  uintptr_t total = atomic_load_relaxed(&round_marked) + w->marked_bytes;
  w->marked_bytes = 0;
  return total;
}
