/*
 * verify.c: the MGC_VERIFY re-mark (see verify.h).
 *
 * After concurrent marking has terminated, with the world still stopped,
 * every object reachable from the current roots must be covered by the
 * concurrent mark: marked, or in the current word of a span some thread is
 * allocating from (allocated black there and never swept this cycle; see
 * alloc/mcache.c).  An object that is neither is what a missing GC_WRITE
 * produces: the concurrent mark never saw the pointer.
 *
 * The re-mark uses each span's check bitmap, so it does not disturb the
 * real marks, and walks depth-first with the same work buffers.  When it
 * finds a pointer to an uncovered object it reports the object and the
 * address of the word that points to it (and the object holding that word,
 * if it is in the heap), then marks the object so the sweep keeps it: a
 * verified program loses nothing even when the check fails.
 *
 * Cost: a whole stop-the-world mark per cycle.  A debugging mode.
 */
#include "gc/verify.h"

#include <stdio.h>

#include "alloc/arena.h"
#include "alloc/mcache.h"
#include "gc/ephemeron.h"
#include "gc/types.h"
#include "gc/workbuf.h"
#include "runtime/config.h"
#include "runtime/roots.h"
#include "runtime/thread.h"
#include "runtime/stw.h"
#include "runtime/throw.h"

/* Report at most this many misses per cycle; the count is exact. */
#define VERIFY_REPORT_MAX 20

static uintptr_t misses;

static void clear_check_bits_cb(struct mspan *s, void *ctx) {
  (void)ctx;
  for (unsigned w = 0; w < s->nwords; w++) atomic_store_relaxed(&s->checkbits[w], 0);
}

/* Coverage of slot idx: marked or allocated black (WORD_BLACK), an older
 * unmarked object (WORD_WHITE: a miss if reachable), or a state that cannot
 * be read exactly (WORD_UNSURE: neither reported nor trusted; see
 * alloc/mcache.h). */
static enum word_coverage coverage_of(const struct mspan *s, uintptr_t idx) {
  if (span_is_marked(s, idx)) return WORD_BLACK;
  if (!config.concurrent) return WORD_WHITE; /* nothing is allocated during a stopped-world mark */
  return mcache_current_word_coverage_stw(s, idx);
}


static void report_miss(const struct mspan *s, uintptr_t idx, uintptr_t slot) {
  if (++misses > VERIFY_REPORT_MAX) return;
  uintptr_t obj = span_object_addr(s, idx);
  struct mspan *hs = span_of_heap(slot);
  char line[400];
  if (hs) {
    uintptr_t holder = span_object_addr(hs, span_object_index(hs, slot));
    uintptr_t hidx = span_object_index(hs, slot);
    snprintf(line, sizeof(line),
             "mgc: verify: object %p (%u bytes) reachable but missed by the concurrent mark; "
             "pointed to by the word at %p in object %p (%s, span class %u; a store without GC_WRITE?)\n",
             (void *)obj, s->elemsize, (void *)slot, (void *)holder,
             span_is_marked(hs, hidx) ? "marked" : "allocated black", hs->spanclass);
  } else {
    snprintf(line, sizeof(line),
             "mgc: verify: object %p (%u bytes) reachable but missed by the concurrent mark; "
             "pointed to by the root word at %p\n",
             (void *)obj, s->elemsize, (void *)slot);
  }
  mgc_write_stderr(line);
}

/* Grey entries of the re-mark carry, in this bit of len, whether their
 * words are trusted: only a trusted pointer to an uncovered object is a
 * miss.  Words of marked objects are trusted (the marker scanned them),
 * and so are data segments and explicit roots; stack and register words
 * are not, nor what they alone lead to through objects allocated black: a
 * conservative stack word may hold a stale address of garbage, and garbage
 * allocated during the mark points at garbage the mark rightly ignored.
 * Trusted roots are traced first, so an object reached both ways is
 * judged by the trusted way. */
#define GREY_FROM_BLACK ((uintptr_t)1 << 62)

MGC_NO_SANITIZE_SCAN static void check_word(struct gcwork *w, uintptr_t slot, uintptr_t v, bool from_black) {
  struct mspan *s = span_of_heap(v);
  if (!s) return;
  uintptr_t idx = span_object_index(s, v);
  if (!mcache_slot_is_allocated(NULL, s, idx)) return;
  atomic_word *cw = &s->checkbits[idx >> 6];
  uintptr_t bit = (uintptr_t)1 << (idx & 63);
  if (atomic_load_relaxed(cw) & bit) return;
  atomic_store_relaxed(cw, atomic_load_relaxed(cw) | bit);
  enum word_coverage c = coverage_of(s, idx);
  bool black = span_is_marked(s, idx) || (c == WORD_BLACK && from_black);
  if (c == WORD_WHITE) {
    if (from_black) report_miss(s, idx, slot);
    span_try_mark(s, idx); /* keep it, reported or not */
  }
  if (spanclass_noscan(s->spanclass)) return;
  uintptr_t base = span_object_addr(s, idx);
  uintptr_t size = span_slot_size(s);
  uintptr_t flag = black ? GREY_FROM_BLACK : 0;
  if (spanclass_typed(s->spanclass)) {
    gcwork_push(w, base, size | GREY_TYPED | flag);
    return;
  }
  for (uintptr_t off = 0; off < size; off += OBLET_BYTES)
    gcwork_push(w, base + off, (size - off < OBLET_BYTES ? size - off : OBLET_BYTES) | flag);
}

static void check_typed_value_black(struct gcwork *w, uintptr_t v, uintptr_t slot) {
  if (arena_in_range(v)) check_word(w, slot, v, true);
}
static void check_typed_value_grey(struct gcwork *w, uintptr_t v, uintptr_t slot) {
  if (arena_in_range(v)) check_word(w, slot, v, false);
}

MGC_NO_SANITIZE_SCAN static void check_words(struct gcwork *w, uintptr_t lo, uintptr_t hi, bool from_black) {
  uintptr_t alo = atomic_load_relaxed(&arena_lo), span = atomic_load_relaxed(&arena_hi) - alo;
  for (uintptr_t p = MGC_ROUND_UP(lo, sizeof(uintptr_t)); p + sizeof(uintptr_t) <= hi; p += sizeof(uintptr_t)) {
    uintptr_t v = *(const uintptr_t *)p;
    MGC_SCANNED_WORD(v);
    if (v - alo < span) check_word(w, p, v, from_black);
  }
}

struct root_pass {
  struct gcwork *w;
  bool stacks;  /* this pass: thread stacks and registers only, else the rest */
};

static bool is_thread_stack(uintptr_t lo) {
  for (struct mthread *t = threads_head; t; t = t->next)
    if ((lo >= t->stack_lo && lo < t->stack_hi) || lo == (uintptr_t)&t->blocking_regs ||
        lo == (uintptr_t)t->blocking_exit_regs)
      return true;
  return false;
}

static void check_root_range(uintptr_t lo, uintptr_t hi, void *ctx) {
  struct root_pass *pass = ctx;
  bool stack = is_thread_stack(lo);
  if (stack == pass->stacks) check_words(pass->w, lo, hi, !stack);
}

static void drain_checks(struct gcwork *w) {
  struct grey g;
  while (gcwork_pop(w, &g)) {
    bool from_black = g.len & GREY_FROM_BLACK;
    uintptr_t len = g.len & ~GREY_FROM_BLACK;
    if (len & GREY_TYPED)
      types_scan_object(w, g.addr, len & ~GREY_TYPED, from_black ? check_typed_value_black : check_typed_value_grey,
                        ephemeron_visit_value);
    else
      check_words(w, g.addr, g.addr + len, from_black);
  }
}

uintptr_t verify_mark_stw(void) {
  misses = 0;
  arena_walk_spans(atomic_load_relaxed(&arena_lo), atomic_load_relaxed(&arena_hi), clear_check_bits_cb, NULL);
  struct gcwork w = {0};
  struct root_pass pass = {&w, false};
  roots_enumerate_stw(check_root_range, &pass);
  drain_checks(&w);
  pass.stacks = true;
  roots_enumerate_stw(check_root_range, &pass);
  drain_checks(&w);
  gcwork_dispose(&w);
  if (misses > VERIFY_REPORT_MAX) {
    char line[120];
    snprintf(line, sizeof(line), "mgc: verify: %lu misses in this cycle (%d reported)\n",
             (unsigned long)misses, VERIFY_REPORT_MAX);
    mgc_write_stderr(line);
  }
  return misses;
}

/* Checker: no span may carry a mark bit when a mark starts (a stale mark
 * would make the marker skip an object it never scanned).  World stopped. */
static void stale_marks_cb(struct mspan *s, void *ctx) {
  uintptr_t *bad = ctx;
  for (unsigned w = 0; w < s->nwords; w++) {
    uintptr_t m = atomic_load_relaxed(&s->markbits[w]);
    if (!m || (*bad)++ >= 5) continue;
    char line[200];
    snprintf(line, sizeof(line), "mgc: verify: stale mark bits %lx in word %u of span %p (span class %u)\n",
             (unsigned long)m, w, (void *)s->base, s->spanclass);
    mgc_write_stderr(line);
  }
}

uintptr_t verify_no_marks_stw(void) {
  uintptr_t bad = 0;
  arena_walk_spans(atomic_load_relaxed(&arena_lo), atomic_load_relaxed(&arena_hi), stale_marks_cb, &bad);
  return bad;
}
