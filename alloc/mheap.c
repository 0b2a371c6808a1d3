/*
 * mheap.c: the page heap (see mheap.h).
 *
 * Free pages are kept as free spans (state MSPAN_FREE), maximal runs: two
 * free spans are never adjacent (freeing coalesces with both neighbours,
 * found through the span map).  Free spans sit in one of
 *   free_runs[n]   runs of exactly n pages, 1 <= n < SMALL_RUN_PAGES
 *   free_large     every longer run, unordered (few in practice)
 * Allocation takes the smallest run that fits (best fit, which keeps big
 * runs whole for large objects) and splits off the tail.
 *
 * Growth: committed memory is carved from reserved arenas in steps of at
 * least HEAP_GROW_MIN; fresh pages are zero, and so are released pages (an
 * anonymous private page reads as zero after MADV_DONTNEED), so only spans
 * that held objects have needzero set.
 *
 * Kernel pages.  mprotect and madvise work on whole kernel pages.  Where
 * those are larger than ours (16 or 64 KiB on some AArch64 and POWER
 * kernels), commits start and end on them (os_granule: every commit is
 * a multiple of it, from an aligned start), and a free span releases only
 * the kernel pages wholly inside it (release_start..release_end): the
 * page it shares with a neighbour may hold the neighbour's objects.  Such
 * a span's edges keep their old contents, so releasing it clears needzero
 * only when it has no edges; two released spans merge into a released one
 * only when they meet on a kernel page boundary (else the page they share
 * was released by neither).  stats.released counts the bytes actually
 * released.  With 4 or 8 KiB kernel pages every span is whole pages of the
 * kernel's and none of this changes anything.
 *
 * A free span being released by the scavenger is taken out of the lists
 * (in_list == 0) while the lock is dropped; it is then neither allocated
 * nor merged, and goes back in when the madvise is done.
 *
 * Lock: mheap_lock (rank LOCK_MHEAP) protects everything here, the span
 * map entries of free pages, and span record/bitmap allocation.
 *
 * Invariant (mheap_is_valid): sys == in_use + free pages (listed or being
 * scavenged) + uncommitted tail 0; released <= free.
 */
#include "alloc/mheap.h"

#include <errno.h>
#include <string.h>

#include "alloc/arena.h"
#include "runtime/forkguard.h"
#include "runtime/os.h"
#include "runtime/thread.h"
#include "runtime/throw.h"

/* Runs shorter than this many pages have an exact-size list: 1 MiB, which
 * covers every small-object span and most large objects. */
#define SMALL_RUN_PAGES 128
/* Commit at least this much at a time: fewer mprotect calls and VMAs. */
#define HEAP_GROW_MIN ((uintptr_t)1 << 20)

struct mgc_lock mheap_lock = MGC_LOCK_INITIALIZER(LOCK_MHEAP);

static struct mspan *free_runs[SMALL_RUN_PAGES];
static struct mspan *free_large;
static struct mheap_stats stats;
static uintptr_t free_pages;          /* pages in free spans, listed or not */
static uintptr_t scavenging_pages;    /* free pages out of the lists for madvise */
static uintptr_t commit_next;         /* next uncommitted reserved address */
static uintptr_t reserved_end;        /* end of the current reservation */
/* The unit of commit and release: the kernel's page size, or PAGE_SIZE if
 * that is larger (runtime/init.c refuses kernel pages that are not a power
 * of two or larger than MHEAP_OS_PAGE_MAX).  Set once, by mheap_init. */
static uintptr_t os_granule = PAGE_SIZE;

_Static_assert(HEAP_GROW_MIN % MHEAP_OS_PAGE_MAX == 0, "growth steps must be whole kernel pages");
_Static_assert(ARENA_SIZE % MHEAP_OS_PAGE_MAX == 0, "arenas must be whole kernel pages");

int mheap_init(void) {
  size_t os_page = os_page_size();
  if (os_page > PAGE_SIZE) os_granule = os_page;
  return arena_index_init();
}

/* The kernel pages wholly inside free span s: what releasing it gives back. */
static uintptr_t release_start(const struct mspan *s) { return MGC_ROUND_UP(s->base, os_granule); }
static uintptr_t release_end(const struct mspan *s) {
  return MGC_ROUND_DOWN(s->base + s->npages * PAGE_SIZE, os_granule);
}
static uintptr_t releasable_bytes(const struct mspan *s) {
  uintptr_t lo = release_start(s), hi = release_end(s);
  return hi > lo ? hi - lo : 0;
}

static struct mspan **list_for(uintptr_t npages) {
  return npages < SMALL_RUN_PAGES ? &free_runs[npages] : &free_large;
}

static void list_insert_locked(struct mspan *s) {
  struct mspan **head = list_for(s->npages);
  s->prev = NULL;
  s->next = *head;
  if (*head) (*head)->prev = s;
  *head = s;
  s->in_list = 1;
}

static void list_remove_locked(struct mspan *s) {
  mgc_assert(s->in_list);
  if (s->prev) s->prev->next = s->next;
  else *list_for(s->npages) = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
  s->in_list = 0;
}

/* Map a free span: first and last page to it (see arena.h). */
static void map_free_span(struct mspan *s) {
  arena_set_spans(s->base, 1, s);
  arena_set_spans(s->base + (s->npages - 1) * PAGE_SIZE, 1, s);
}

/* The free, listed span that ends right before addr or starts at addr. */
static struct mspan *free_neighbour(uintptr_t page_addr) {
  if (page_addr < arena_lo || page_addr >= arena_hi) return NULL;
  struct mspan *n = span_of(page_addr);
  if (!n || atomic_load_relaxed(&n->state) != MSPAN_FREE || !n->in_list) return NULL;
  return n;
}

/* Merge b (which follows a directly) into a; b's record is freed. */
static void merge_into_locked(struct mspan *a, struct mspan *b) {
  if ((a->scavenged || b->scavenged) && !(a->scavenged && b->scavenged && b->base % os_granule == 0)) {
    /* The merged run counts as not released; the scavenger will release it
     * again (madvise of released pages is harmless). */
    stats.released -= (a->scavenged ? releasable_bytes(a) : 0) + (b->scavenged ? releasable_bytes(b) : 0);
    a->scavenged = 0;
  }
  a->needzero |= b->needzero;
  if (b->free_since > a->free_since) a->free_since = b->free_since;
  arena_set_spans(a->base + (a->npages - 1) * PAGE_SIZE, 1, NULL);
  arena_set_spans(b->base, 1, NULL);
  a->npages += b->npages;
  mspan_record_free_locked(b);
}

/* Put free span s into the pool, merging with free neighbours. */
static void insert_coalesced_locked(struct mspan *s) {
  struct mspan *before = free_neighbour(s->base - PAGE_SIZE);
  if (before) {
    list_remove_locked(before);
    merge_into_locked(before, s);
    s = before;
  }
  struct mspan *after = free_neighbour(s->base + s->npages * PAGE_SIZE);
  if (after) {
    list_remove_locked(after);
    merge_into_locked(s, after);
  }
  map_free_span(s);
  list_insert_locked(s);
}

static struct mspan *new_free_span_locked(uintptr_t base, uintptr_t npages) {
  struct mspan *s = mspan_record_alloc_locked();
  if (!s) return NULL;
  s->base = base;
  s->npages = npages;
  atomic_store_relaxed(&s->sweepgen, SWEEPGEN_NONE);
  atomic_store_release(&s->state, MSPAN_FREE);
  return s;
}

/* Add at least npages of committed memory to the free pool. */
static bool grow_locked(uintptr_t npages) {
  uintptr_t want = MGC_ROUND_UP(npages * PAGE_SIZE, os_granule);
  if (want < HEAP_GROW_MIN) want = HEAP_GROW_MIN;
  if (want / PAGE_SIZE < npages) return false; /* overflow */
  if (reserved_end - commit_next < want) {
    size_t reserve = MGC_ROUND_UP(want, ARENA_SIZE);
    if (reserve < want) return false;
    uint8_t *base = arena_reserve_locked(reserve);
    if (!base) return false;
    if (reserved_end == 0) {
      /* The very first page is never handed out: arena_lo, a variable in
       * mgc's own data (scanned as a root when mgc is linked statically),
       * holds its address and would keep an object there alive forever.
       * (A whole kernel page is skipped, so that commits stay aligned.) */
      reserved_end = commit_next = (uintptr_t)base + os_granule;
    }
    if ((uintptr_t)base + os_granule != reserved_end && (uintptr_t)base != reserved_end) {
      /* Not contiguous: hand the old reservation's tail to the pool too. */
      uintptr_t tail = reserved_end - commit_next;
      if (tail && os_commit((void *)commit_next, tail) == 0) {
        struct mspan *t = new_free_span_locked(commit_next, tail / PAGE_SIZE);
        if (t) {
          stats.sys += tail;
          free_pages += t->npages;
          t->free_since = os_nanotime();
          insert_coalesced_locked(t);
        }
      }
      commit_next = (uintptr_t)base;
    }
    if (commit_next < (uintptr_t)base) commit_next = (uintptr_t)base;
    reserved_end = (uintptr_t)base + reserve;
  }
  if (os_commit((void *)commit_next, want) != 0) return false;
  struct mspan *s = new_free_span_locked(commit_next, want / PAGE_SIZE);
  if (!s) return false;
  commit_next += want;
  stats.sys += want;
  free_pages += s->npages;
  s->free_since = os_nanotime();
  insert_coalesced_locked(s);
  return true;
}

/* Smallest listed free span of at least npages, or NULL. */
static struct mspan *find_run_locked(uintptr_t npages) {
  for (uintptr_t n = npages; n < SMALL_RUN_PAGES; n++)
    if (free_runs[n]) return free_runs[n];
  struct mspan *best = NULL;
  for (struct mspan *s = free_large; s; s = s->next)
    if (s->npages >= npages && (!best || s->npages < best->npages ||
                                (s->npages == best->npages && s->base < best->base)))
      best = s;
  return best;
}

/* Take npages from the front of free span s; the rest stays free. */
static struct mspan *carve_locked(struct mspan *s, uintptr_t npages) {
  list_remove_locked(s);
  uintptr_t released = s->scavenged ? releasable_bytes(s) : 0;
  if (s->npages > npages) {
    struct mspan *rest = new_free_span_locked(s->base + npages * PAGE_SIZE, s->npages - npages);
    if (!rest) {
      list_insert_locked(s);
      return NULL;
    }
    rest->scavenged = s->scavenged;
    rest->needzero = s->needzero;
    rest->free_since = s->free_since;
    s->npages = npages;
    map_free_span(rest);
    list_insert_locked(rest);
    /* The rest stays released: its kernel pages lie inside those s
     * released.  (The page it may share with s was released too; counted
     * by neither from now on.) */
    if (rest->scavenged) released -= releasable_bytes(rest);
  }
  if (s->scavenged) {
    /* needzero stays: 0 when all of s was released (those pages read as
     * zero), as it was when its edges were not (see the top). */
    stats.released -= released;
    s->scavenged = 0;
  }
  free_pages -= npages;
  return s;
}

struct test_hold mheap_hold_before_publish;

struct mspan *mheap_alloc_span(uintptr_t npages, unsigned spc) {
  if (npages == 0 || npages > (UINTPTR_MAX >> (PAGE_SHIFT + 1))) return NULL;
  lock_acquire(&mheap_lock);
  struct mspan *s = find_run_locked(npages);
  if (!s) {
    if (grow_locked(npages)) s = find_run_locked(npages);
  }
  if (s) s = carve_locked(s, npages);
  /* From setting the span up (which takes mheap_sweepgen) to publishing
   * it, no mark may start or end.  The world stops anywhere, inside these
   * locked sections too, and a span published after marks had ended, and
   * after the heap walks that sweep had passed its pages, was behind the
   * sweep generations: after one end it was swept in the middle of the
   * next mark; after two its sweepgen was sg - 4, which no sweeper takes,
   * so its mark bits were never cleared again and the next mark took its
   * objects for already scanned (what they alone pointed to was freed:
   * test_mheap "sweepgen", test_threads_gc's churn).  Nothing in here
   * waits for a lock. */
  struct mthread *t = thread_current;
  uintptr_t phase = thread_mark_phase_enter(t);
  if (s && !mspan_init_in_use_locked(s, spc)) {
    free_pages += s->npages;
    insert_coalesced_locked(s);
    s = NULL;
  }
#if MGC_DEBUG >= 2
  for (uintptr_t i = 0; s && i < s->npages; i++) {
    struct mspan *o = span_of(s->base + i * PAGE_SIZE);
    if (o && o != s && atomic_load_relaxed(&o->state) == MSPAN_IN_USE &&
        s->base + i * PAGE_SIZE >= o->base && s->base + i * PAGE_SIZE < o->base + o->npages * PAGE_SIZE)
      mgc_throw("mheap: handing out a page that belongs to an in-use span");
  }
#endif
  if (s && spanclass_typed(spc) && s->needzero) {
    /* The marker may scan a typed slot before its owner has zeroed it and
     * written its header (a free slot in the word a thread allocates from
     * counts as allocated, mcache.c): it must read 0 or a type there, never
     * what the pages held before. */
    for (uintptr_t i = 0; i < s->nelems; i++) *(uintptr_t *)(s->base + i * s->elemsize) = 0;
  }
  if (s) {
    test_hold_point(&mheap_hold_before_publish);
    /* Map every page before publishing the state to lock-free readers. */
    arena_set_spans(s->base, s->npages, s);
    atomic_store_release(&s->state, MSPAN_IN_USE);
    stats.in_use += npages * PAGE_SIZE;
    stats.spans_in_use++;
    if (spanclass_sizeclass(spc) == 0) stats.large_in_use += npages * PAGE_SIZE;
  }
  thread_mark_phase_leave(t, phase);
  lock_release(&mheap_lock);
  return s;
}

void mheap_free_span(struct mspan *s) {
  lock_acquire(&mheap_lock);
  mgc_assert(atomic_load_relaxed(&s->state) == MSPAN_IN_USE);
#if MGC_DEBUG >= 2
  for (uintptr_t i = 0; i < s->npages; i++)
    if (span_of(s->base + i * PAGE_SIZE) != s) mgc_throw("mheap: freeing a span whose pages map elsewhere");
  if (atomic_load_relaxed(&s->cached_by)) mgc_throw("mheap: freeing a span an mcache still holds");
#endif
  atomic_store_release(&s->sweepgen, SWEEPGEN_NONE);
  atomic_store_release(&s->state, MSPAN_FREE);
  stats.in_use -= s->npages * PAGE_SIZE;
  stats.spans_in_use--;
  if (span_is_large(s)) stats.large_in_use -= s->npages * PAGE_SIZE;
  mspan_free_bitmaps_locked(s);
  /* Pages between the first and the last no longer map to anything. */
  if (s->npages > 2) arena_set_spans(s->base + PAGE_SIZE, s->npages - 2, NULL);
  s->needzero = 1;
  s->scavenged = 0;
  s->free_since = os_nanotime();
  s->elemsize = 0;
  s->nelems = 0;
  free_pages += s->npages;
  insert_coalesced_locked(s);
  lock_release(&mheap_lock);
}

/* Scavenging walks the heap's pages in address order from a cursor kept
 * between calls, under the mheap lock, and hands the lock over whenever a
 * thread waits for it (lock_has_waiters, checked at every page-map entry)
 * or SCAVENGE_WINDOW_PAGES entries have passed.  The search it replaced
 * walked every free list under one hold for the largest candidate; with a
 * fragmented heap of 1-2 GiB that took 1-3 ms, and a thread that needed a
 * span waited for it.  Windows of 1024 entries with a 10 µs pause between
 * them still cost the pause probe's mutator 0.7-1 ms gaps: an entry can
 * be a cache miss, so a window is long, and the woken mutator rarely ran
 * within the pause, so it slept again, up to three times a gap
 * (tools/bench/pause/gap-profile). */
#define SCAVENGE_WINDOW_PAGES 256
/* Between windows, with the lock released, the walk yields the CPU once
 * this long has passed since it last did, as the sweeper does (a lap of a
 * 512 MiB heap is milliseconds of CPU, and a thread of lower priority
 * still runs a whole time slice once scheduled: gap-profile showed the
 * pause probe's mutator preempted by mgc-scavenge for 2-5 ms). */
#define SCAVENGE_YIELD_NS 100000
/* Where the next walk starts, in pages from arena_lo; under mheap_lock.
 * A walk keeps its own position: walks overlap (the scavenger thread's
 * periodic pass, a release above the memory limit, gc_release_memory),
 * each dropping the lock between windows, and one that followed a shared
 * cursor skipped the stretch another had walked meanwhile, looking there
 * only for spans older than its own age (gc_release_memory found none of
 * the spans it had just freed, in 3 runs of 30 under ThreadSanitizer with
 * the CPUs busy). */
static uintptr_t scavenge_cursor;
/* No listed, unreleased span has been free since before this time (0:
 * unknown): set by a walk of one whole lap, from the spans it left.  A
 * span's free_since is the time it was freed, or the later of two merged
 * spans', so spans freed since keep the bound.  Until the age cutoff
 * passes it, a periodic pass has nothing to do and walks nothing: a lap
 * of a 512 MiB heap took about 8 ms, every half second (perf, pause probe
 * at 256 MiB), CPU taken from the mark worker.  Under mheap_lock. */
static uint64_t scavenge_free_since_bound;

/* The next listed, unreleased span free since before `cutoff`, at or after
 * *cursor (wrapping; moved past it), after visiting at most *budget page-map entries
 * (counted down; *walked counts every page passed).  NULL if none.  Lowers
 * *oldest to the free_since of each listed, unreleased span passed.  A span
 * holding no whole kernel page has nothing to release and is passed over
 * (should it merge with another, the merged span's free_since is that of
 * the later free). */
static struct mspan *scavenge_next_locked(uint64_t cutoff, uintptr_t *cursor, uintptr_t *budget,
                                          uintptr_t *walked, uint64_t *oldest) {
  uintptr_t lo = atomic_load_relaxed(&arena_lo);
  uintptr_t pages = (atomic_load_relaxed(&arena_hi) - lo) >> PAGE_SHIFT;
  while (*budget > 0) {
    if (lock_has_waiters(&mheap_lock)) {
      *budget = 0;
      return NULL;
    }
    if (*cursor >= pages) *cursor = 0;
    uintptr_t page = lo + (*cursor << PAGE_SHIFT);
    struct mspan *s = span_of(page);
    uintptr_t step = 1;
    bool found = false;
    if (!arena_of(page)) {
      step = ((MGC_ROUND_DOWN(page, ARENA_SIZE) + ARENA_SIZE) - page) >> PAGE_SHIFT;
    } else if (s && s->base == page && atomic_load_relaxed(&s->state) != MSPAN_DEAD && s->npages) {
      step = s->npages; /* a span starts here: skip it whole */
      if (atomic_load_relaxed(&s->state) == MSPAN_FREE && s->in_list && !s->scavenged && releasable_bytes(s)) {
        found = s->free_since <= cutoff;
        if (!found && s->free_since < *oldest) *oldest = s->free_since;
      }
    }
    *cursor += step;
    *walked += step;
    (*budget)--;
    stats.scavenge_walked++;
    if (found) return s;
  }
  return NULL;
}

/* madvise holds the address space's lock (mmap_lock) for reading while
 * it empties the range, and the heap growing (grow_locked's mprotect, with
 * the mheap lock held) waits for it as a writer: in a scratch test an
 * mprotect waited 115-126 ms behind one madvise of 1 GiB, 0.1-0.2 ms when
 * the release came in chunks of 2 MiB, as here (the writer gets in between
 * two of them).  gap-profile of the pause probe at 1 GiB live had caught
 * the mutator asleep 3.6 ms in mheap_alloc_span while the scavenger ran. */
#define SCAVENGE_RELEASE_CHUNK ((uintptr_t)2 << 20)

static int release_in_chunks(uintptr_t base, uintptr_t size) {
  for (uintptr_t off = 0; off < size; off += SCAVENGE_RELEASE_CHUNK) {
    uintptr_t n = size - off < SCAVENGE_RELEASE_CHUNK ? size - off : SCAVENGE_RELEASE_CHUNK;
    int err = os_release((void *)(base + off), n);
    if (err) return err; /* what was released reads as zero: harmless */
  }
  return 0;
}

size_t mheap_scavenge(size_t bytes, uint64_t min_age_ns) {
  size_t done = 0;
  uint64_t now = os_nanotime();
  uint64_t cutoff = now > min_age_ns ? now - min_age_ns : 0;
  /* A span being released is in no list: a fork then would lose it to the
   * child (runtime/forkguard.h).  A fork waiting for the guard gets it
   * after the span being released, between windows of the walk. */
  fork_guard_enter();
  lock_acquire(&mheap_lock);
  if (cutoff < scavenge_free_since_bound) {
    lock_release(&mheap_lock);
    fork_guard_leave();
    return 0;
  }
  /* One lap of the address range at most (it may grow meanwhile; then
   * the next call sees the rest). */
  uintptr_t lap = (atomic_load_relaxed(&arena_hi) - atomic_load_relaxed(&arena_lo)) >> PAGE_SHIFT;
  uintptr_t walked = 0, budget = SCAVENGE_WINDOW_PAGES, cursor = scavenge_cursor;
  uint64_t oldest = now; /* spans freed during the walk are freed after now */
  uint64_t last_yield = now;
  while (done < bytes && walked < lap) {
    if (budget == 0) {
      lock_release(&mheap_lock);
      if (fork_guard_wanted()) fork_guard_let_fork_through();
      lock_wait_for_waiters(&mheap_lock);
      os_yield_if_due(&last_yield, SCAVENGE_YIELD_NS);
      lock_acquire(&mheap_lock);
      budget = SCAVENGE_WINDOW_PAGES;
    }
    struct mspan *s = scavenge_next_locked(cutoff, &cursor, &budget, &walked, &oldest);
    if (!s) continue;
    budget = SCAVENGE_WINDOW_PAGES; /* the lock is dropped below */
    list_remove_locked(s);
    scavenging_pages += s->npages;
    lock_release(&mheap_lock);
    uintptr_t lo = release_start(s), hi = release_end(s); /* lo < hi: scavenge_next_locked */
    int err = release_in_chunks(lo, hi - lo);
    lock_acquire(&mheap_lock);
    scavenging_pages -= s->npages;
    if (!err) {
      s->scavenged = 1;
      if (lo == s->base && hi == s->base + s->npages * PAGE_SIZE) s->needzero = 0;
      stats.released += hi - lo;
      done += hi - lo;
    } else {
      s->free_since = now; /* do not retry at once */
    }
    insert_coalesced_locked(s);
    if (err) break;
    if (fork_guard_wanted()) budget = 0; /* let it through now */
  }
  scavenge_cursor = cursor;
  scavenge_free_since_bound = walked >= lap ? oldest : 0;
  lock_release(&mheap_lock);
  fork_guard_leave();
  return done;
}

uintptr_t mheap_pages_in_release(void) {
  lock_acquire(&mheap_lock);
  uintptr_t n = scavenging_pages;
  lock_release(&mheap_lock);
  return n;
}

void mheap_read_stats(struct mheap_stats *out) {
  lock_acquire(&mheap_lock);
  *out = stats;
  out->metadata = mspan_metadata_sys_locked();
  lock_release(&mheap_lock);
}

bool mheap_is_valid(void) {
  bool ok = true;
  uintptr_t listed = 0, released = 0;
  lock_acquire(&mheap_lock);
  for (uintptr_t n = 0; n <= SMALL_RUN_PAGES && ok; n++) {
    struct mspan *s = n < SMALL_RUN_PAGES ? free_runs[n] : free_large;
    for (; s; s = s->next) {
      if (atomic_load_relaxed(&s->state) != MSPAN_FREE || !s->in_list) ok = false;
      if (n < SMALL_RUN_PAGES ? s->npages != n : s->npages < SMALL_RUN_PAGES) ok = false;
      if (span_of(s->base) != s || span_of(s->base + (s->npages - 1) * PAGE_SIZE) != s) ok = false;
      if (free_neighbour(s->base + s->npages * PAGE_SIZE)) ok = false; /* not coalesced */
      listed += s->npages;
      if (s->scavenged) released += releasable_bytes(s);
    }
  }
  if (listed + scavenging_pages != free_pages) ok = false;
  if (scavenging_pages == 0 && released != stats.released) ok = false;
  if (stats.in_use + free_pages * PAGE_SIZE != stats.sys) ok = false;
  lock_release(&mheap_lock);
  return ok;
}
