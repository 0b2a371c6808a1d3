/*
 * test_stress_verify.c: threads mutate random object graphs while the
 * collector marks concurrently with MGC_VERIFY=1, for hundreds of cycles;
 * every heap pointer store goes through GC_WRITE or gc_copy_pointers, so
 * the verify re-mark must never find a missed object, and every reachable
 * object must keep its contents (public API only; suite "stress").
 *
 * The real graph.  Each of WORKERS threads owns a root table (a gc_alloc'd
 * object of ROOTS slots) hung from the global `tables`, the only root the
 * graph has besides the workers' own stacks.  A node is a header (shadow
 * slot, id, shape, payload seed), nfields pointer fields, an inline
 * payload, and optionally a pointer to a noscan buffer (gc_alloc_atomic)
 * with its own seed.  One node in LARGE_ONE_IN has a payload over 32 KiB
 * (a large object).  One in TYPED_ONE_IN is typed (gc_alloc_typed, a
 * payload of TYPED_INLINE bytes, one type per field count): the marker
 * then reads only its buffer and field words, and reads its type header,
 * which gc_alloc_typed writes while marking may be under way.  Nodes are
 * only ever linked within one worker's graph.
 *
 * The shadow.  Per worker, malloc'd records indexed by shadow slot: id,
 * shape, seeds and children as slot numbers (NO_SLOT for NULL).  It holds
 * no heap addresses, so it keeps nothing alive.  Every mutation is applied
 * to both.  check_graph walks the real graph from the table (each node
 * once, malloc'd stack) comparing every node with its record, then frees
 * the records the walk did not reach: the shadow mirrors the real graph,
 * so those nodes are garbage.
 *
 * Mutations: new node (linked from a root or from a random node, fields
 * pointing at random nodes), relink a field, gc_copy_pointers between two
 * nodes' field ranges (memmove semantics, overlap included), replace or
 * drop a buffer, drop or replace a root, allocate garbage.  Each worker
 * checks its graph whenever gc_get_stats().cycles moved and every
 * CHECK_OPS mutations; a collector thread calls gc_collect back to back
 * (with a short sleep) on top of the natural triggers (MGC_GOGC=50).
 *
 * Settings (environment): MGC_STRESS_CYCLES (cycles to reach, default
 * 500), MGC_STRESS_SECONDS (limit, default 240; reaching it fails the
 * test), MGC_STRESS_SEED; to isolate a failure, MGC_STRESS_LARGE=0 (no
 * large nodes), MGC_STRESS_TINY=0 (no buffers of 16 bytes or less, which
 * the tiny allocator packs into shared blocks), MGC_STRESS_TYPED=0 (no
 * typed nodes) and MGC_VERIFY=0 (the shadow check alone).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conctest.h"
#include "gctest.h"
#include "mgc.h"

#define WORKERS 4
#define ROOTS 32
#define MAX_SLOTS 1500          /* shadow records per worker */
#define MAX_FIELDS 6
#define MAX_INLINE 96
#define MAX_BUFFER 256
#define TINY_BYTES 16           /* atomic objects this small share blocks */
#define LARGE_INLINE (36 * 1024)
#define LARGE_ONE_IN 400
#define TYPED_ONE_IN 4
#define TYPED_INLINE 40
#define WALK_STEPS 5
#define CHECK_OPS 4000
#define POLL_OPS 32
#define GARBAGE_MAX 512
#define COLLECT_SLEEP_US 1000
#define DEFAULT_CYCLES 500
#define DEFAULT_SECONDS 240
#define NO_SLOT UINT32_MAX
#define MSG_MAX 256

/* Nodes are scanned conservatively, so no word may hold an integer that
 * looks like a heap address: two 32-bit lengths sharing a word can (a
 * buffer length of 0xc0 beside an inline length of 0x9000 reads as
 * 0xc000009000), and as they change during a mark without GC_WRITE, which
 * is right for integers, MGC_VERIFY would report the "pointer" as missed.
 * Each length therefore has a word of its own. */
struct node {
  uint32_t slot;
  uint32_t nfields;
  uint64_t inline_len;
  uint64_t buffer_len;
  uint64_t id;
  uint64_t seed;
  uint64_t buffer_seed;
  unsigned char *buffer;
  struct node *fields[];  /* then inline_len bytes of payload */
};

struct table {
  struct node *roots[ROOTS];
};

struct record {
  uint64_t id;            /* 0: free */
  uint64_t seed, buffer_seed;
  uint32_t nfields, inline_len, buffer_len;
  uint32_t epoch;         /* last check walk that reached it */
  uint32_t children[MAX_FIELDS];
};

struct worker {
  int index;
  uint64_t rng;
  uint64_t next_id;
  struct record *rec;     /* MAX_SLOTS records */
  uint32_t *free_slots;   /* stack of free record numbers */
  uint32_t nfree;
  uint32_t root_slot[ROOTS];
  struct node **walk;     /* check walk stack, MAX_SLOTS entries */
  uint32_t epoch;
  uint64_t ops, checks, copies, larges;
};

/* The graph's only root: workers hang their tables here. */
static struct table *volatile tables[WORKERS];

static atomic_bool stop;
static atomic_int failed;
static char failure[MSG_MAX];
static uint64_t target_cycles;
static bool with_large = true;
static bool with_tiny = true;
static bool with_typed = true;
static const gc_type *node_types[MAX_FIELDS + 1];  /* typed nodes, by field count */


static void report_failure(const char *fmt, unsigned long long a, unsigned long long b, unsigned long long c) {
  if (atomic_exchange(&failed, 1)) return;
  snprintf(failure, sizeof(failure), fmt, a, b, c);
  atomic_store(&stop, true);
}

static unsigned char *node_inline(struct node *n) { return (unsigned char *)&n->fields[n->nfields]; }

static uint64_t cycles(void) {
  struct gc_stats s;
  memset(&s, 0, sizeof(s));
  s.size = sizeof(s);
  gc_get_stats(&s);
  return s.cycles;
}

/* ---- the shadow ---------------------------------------------------------- */

static uint32_t record_take(struct worker *w) {
  return w->nfree ? w->free_slots[--w->nfree] : NO_SLOT;
}

static struct node *slot_node_check(struct node *n, uint32_t slot) {
  if (n && n->slot != slot) report_failure("node slot %llu, shadow expected %llu (worker %llu)", n->slot, slot, 0);
  return n;
}

/* Walk the real graph from the table, compare, free what is unreached. */
static void check_graph(struct worker *w) {
  struct table *t = tables[w->index];
  uint32_t e = ++w->epoch, sp = 0;
  for (int r = 0; r < ROOTS; r++) {
    struct node *n = t->roots[r];
    uint32_t want = w->root_slot[r];
    if ((n == NULL) != (want == NO_SLOT)) {
      report_failure("root %llu: real %llu, shadow slot %llu", (unsigned long long)r, n != NULL, want);
      return;
    }
    if (!n || w->rec[want].epoch == e) continue;
    if (!slot_node_check(n, want)) return;
    w->rec[want].epoch = e;
    w->walk[sp++] = n;
  }
  while (sp && !atomic_load(&failed)) {
    struct node *n = w->walk[--sp];
    struct record *r = &w->rec[n->slot];
    if (gc_base(n) != n) {
      report_failure("node %llu (slot %llu) at %llx is not a live object", n->id, n->slot, (uintptr_t)n);
      return;
    }
    if (n->id != r->id || n->nfields != r->nfields || n->inline_len != r->inline_len ||
        n->seed != r->seed || n->buffer_len != r->buffer_len || n->buffer_seed != r->buffer_seed) {
      report_failure("node id %llu (slot %llu) differs from its record (id %llu)", n->id, n->slot, r->id);
      return;
    }
    size_t bad = pattern_check(node_inline(n), n->inline_len, n->seed);
    if (bad != n->inline_len) report_failure("node %llu: inline payload byte %llu of %llu changed", n->id, bad, n->inline_len);
    if (n->buffer_len && (!n->buffer || !gc_base(n->buffer) ||
                          pattern_check(n->buffer, n->buffer_len, n->buffer_seed) != n->buffer_len))
      report_failure("node %llu: buffer of %llu bytes freed or damaged (intact bytes: %llu)", n->id,
                     n->buffer_len, n->buffer ? pattern_check(n->buffer, n->buffer_len, n->buffer_seed) : 0);
    for (uint32_t i = 0; i < n->nfields; i++) {
      struct node *c = n->fields[i];
      uint32_t want = r->children[i];
      if ((c == NULL) != (want == NO_SLOT)) {
        report_failure("node %llu field %llu: real %llu differs from the shadow", n->id, i, c != NULL);
        return;
      }
      if (!c || w->rec[want].epoch == e) continue;
      if (!slot_node_check(c, want) || c->id != w->rec[want].id) {
        report_failure("node %llu field %llu: child id %llu is not the shadow's", n->id, i, c ? c->id : 0);
        return;
      }
      w->rec[want].epoch = e;
      w->walk[sp++] = c;
    }
  }
  w->nfree = 0;
  for (uint32_t s = 0; s < MAX_SLOTS; s++) {
    if (w->rec[s].epoch != e) {
      w->rec[s].id = 0;
      w->free_slots[w->nfree++] = s;
    }
  }
  w->checks++;
}

/* ---- picking nodes ------------------------------------------------------- */

/* A random reachable node (and its slot), or NULL. */
static struct node *pick(struct worker *w, uint32_t *slot) {
  struct table *t = tables[w->index];
  int r = (int)conc_below(&w->rng, ROOTS);
  struct node *n = NULL;
  for (int k = 0; k < ROOTS && !n; k++) n = t->roots[(r + k) % ROOTS];
  if (!n) return NULL;
  int steps = (int)conc_below(&w->rng, WALK_STEPS + 1);
  for (int s = 0; s < steps && n->nfields; s++) {
    struct node *c = n->fields[conc_below(&w->rng, n->nfields)];
    if (!c) break;
    n = c;
  }
  *slot = n->slot;
  return n;
}

/* ---- mutations ----------------------------------------------------------- */

static void set_field(struct worker *w, struct node *x, uint32_t i, struct node *y, uint32_t yslot) {
  GC_WRITE(&x->fields[i], y);
  w->rec[x->slot].children[i] = y ? yslot : NO_SLOT;
}

static void set_root(struct worker *w, int r, struct node *n, uint32_t slot) {
  GC_WRITE(&tables[w->index]->roots[r], n);
  w->root_slot[r] = n ? slot : NO_SLOT;
}

static void give_buffer(struct worker *w, struct node *n) {
  struct record *r = &w->rec[n->slot];
  uint32_t len = (uint32_t)conc_below(&w->rng, MAX_BUFFER + 1);
  if (!with_tiny && len && len <= TINY_BYTES) len += TINY_BYTES;
  unsigned char *b = len ? gc_alloc_atomic(len) : NULL;
  if (len && !b) {
    report_failure("gc_alloc_atomic(%llu) failed%llu%llu", len, 0, 0);
    return;
  }
  uint64_t seed = conc_rand(&w->rng);
  if (b) pattern_fill(b, len, seed);
  /* The header says "no buffer" while the pointer changes. */
  n->buffer_len = 0;
  GC_WRITE(&n->buffer, b);
  n->buffer_seed = seed;
  n->buffer_len = len;
  r->buffer_len = len;
  r->buffer_seed = seed;
}

static void op_new_node(struct worker *w) {
  uint32_t slot = record_take(w);
  if (slot == NO_SLOT) return;
  bool typed = with_typed && conc_below(&w->rng, TYPED_ONE_IN) == 0;
  bool large = !typed && with_large && conc_below(&w->rng, LARGE_ONE_IN) == 0;
  uint32_t nf = (uint32_t)conc_below(&w->rng, MAX_FIELDS + 1);
  uint32_t il = typed ? TYPED_INLINE : large ? LARGE_INLINE : (uint32_t)conc_below(&w->rng, MAX_INLINE + 1);
  size_t bytes = sizeof(struct node) + nf * sizeof(struct node *) + il;
  struct node *n = typed ? gc_alloc_typed(bytes, node_types[nf]) : gc_alloc(bytes);
  if (!n) {
    report_failure("gc_alloc of a node failed%llu%llu%llu", 0, 0, 0);
    return;
  }
  struct record *r = &w->rec[slot];
  memset(r, 0, sizeof(*r));
  n->slot = slot;
  n->nfields = nf;
  n->inline_len = il;
  n->id = r->id = ++w->next_id;
  n->seed = r->seed = conc_rand(&w->rng);
  r->nfields = nf;
  r->inline_len = il;
  r->epoch = w->epoch;
  pattern_fill(node_inline(n), il, n->seed);
  for (uint32_t i = 0; i < MAX_FIELDS; i++) r->children[i] = NO_SLOT;
  if (conc_below(&w->rng, 3) == 0) give_buffer(w, n);
  for (uint32_t i = 0; i < nf; i++) {
    uint32_t cs = NO_SLOT;
    struct node *c = conc_below(&w->rng, 3) ? pick(w, &cs) : NULL;
    set_field(w, n, i, c, cs);
  }
  w->larges += large;
  uint32_t ps = NO_SLOT;
  struct node *p = conc_below(&w->rng, 4) ? pick(w, &ps) : NULL;
  if (p && p->nfields) set_field(w, p, (uint32_t)conc_below(&w->rng, p->nfields), n, slot);
  else set_root(w, (int)conc_below(&w->rng, ROOTS), n, slot);
}

static void op_relink(struct worker *w) {
  uint32_t xs = NO_SLOT, ys = NO_SLOT;
  struct node *x = pick(w, &xs);
  if (!x || !x->nfields) return;
  struct node *y = conc_below(&w->rng, 5) ? pick(w, &ys) : NULL;
  set_field(w, x, (uint32_t)conc_below(&w->rng, x->nfields), y, ys);
}

static void op_copy(struct worker *w) {
  uint32_t xs = NO_SLOT, ys = NO_SLOT;
  struct node *x = pick(w, &xs), *y = conc_below(&w->rng, 4) ? pick(w, &ys) : x;
  if (!x || !y || !x->nfields || !y->nfields) return;
  uint32_t a = (uint32_t)conc_below(&w->rng, x->nfields), b = (uint32_t)conc_below(&w->rng, y->nfields);
  uint32_t k = x->nfields - a < y->nfields - b ? x->nfields - a : y->nfields - b;
  k = 1 + (uint32_t)conc_below(&w->rng, k);
  gc_copy_pointers(&x->fields[a], &y->fields[b], k);
  memmove(&w->rec[x->slot].children[a], &w->rec[y->slot].children[b], k * sizeof(uint32_t));
  w->copies++;
}

static void op_root(struct worker *w) {
  int r = (int)conc_below(&w->rng, ROOTS);
  uint32_t s = NO_SLOT;
  struct node *n = conc_below(&w->rng, 2) ? pick(w, &s) : NULL;
  set_root(w, r, n, s);
}

static void op_buffer(struct worker *w) {
  uint32_t s;
  struct node *n = pick(w, &s);
  if (n) give_buffer(w, n);
}

static void op_garbage(struct worker *w) {
  size_t len = 16 + conc_below(&w->rng, GARBAGE_MAX);
  if (conc_below(&w->rng, 4) == 0) len = 1 + conc_below(&w->rng, TINY_BYTES); /* tiny garbage */
  void *volatile g = conc_below(&w->rng, 2) ? gc_alloc(len) : gc_alloc_atomic(len);
  (void)g;
}

static void mutate(struct worker *w) {
  switch (conc_below(&w->rng, 10)) {
  case 0: case 1: case 2: op_new_node(w); break;
  case 3: case 4: op_relink(w); break;
  case 5: op_copy(w); break;
  case 6: op_root(w); break;
  case 7: op_buffer(w); break;
  default: op_garbage(w); break;
  }
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  struct table *t = gc_alloc(sizeof(struct table));
  if (!t) {
    report_failure("gc_alloc of a table failed%llu%llu%llu", 0, 0, 0);
    return NULL;
  }
  tables[w->index] = t;
  uint64_t seen = cycles(), since_check = 0;
  while (!atomic_load(&stop)) {
    mutate(w);
    w->ops++;
    if (w->nfree == 0 || ++since_check >= CHECK_OPS) {
      check_graph(w);
      since_check = 0;
    }
    if (w->ops % POLL_OPS == 0) {
      uint64_t c = cycles();
      if (c != seen) {
        seen = c;
        check_graph(w);
        since_check = 0;
        if (c >= target_cycles) break;
      }
    }
  }
  return NULL;
}

static void *collector_main(void *arg) {
  double limit = *(double *)arg, t0 = conc_seconds();
  struct timespec pause = {0, COLLECT_SLEEP_US * 1000};
  while (!atomic_load(&stop) && cycles() < target_cycles) {
    gc_collect();
    nanosleep(&pause, NULL);
    if (conc_seconds() - t0 > limit) {
      report_failure("time limit: %llu of %llu cycles in %llu s", cycles(), target_cycles,
           (unsigned long long)limit);
    }
  }
  return NULL;
}

static const struct conc_env stress_env[] = {
  {"MGC_CONCURRENT", "1", 1},
  {"MGC_VERIFY", "1", 0},
  {"MGC_GOGC", "50", 0},
};

/* One type per field count: the buffer pointer and the fields are the
 * node's only pointers; its integers and payload are never scanned. */
static void make_node_types(void) {
  size_t offsets[1 + MAX_FIELDS];
  offsets[0] = offsetof(struct node, buffer);
  for (uint32_t nf = 0; nf <= MAX_FIELDS; nf++) {
    if (nf) offsets[nf] = offsetof(struct node, fields) + (nf - 1) * sizeof(struct node *);
    node_types[nf] = gc_type_new(sizeof(struct node) + nf * sizeof(struct node *) + TYPED_INLINE, offsets, 1 + nf);
    ck_assert_msg(node_types[nf] != NULL, "gc_type_new for %u fields failed", nf);
  }
}

START_TEST(test_stress_concurrent_verify) {
  conc_init(stress_env, CONC_LEN(stress_env));
  target_cycles = conc_env_ulong("MGC_STRESS_CYCLES", DEFAULT_CYCLES);
  double limit = (double)conc_env_ulong("MGC_STRESS_SECONDS", DEFAULT_SECONDS);
  uint64_t seed = conc_env_ulong("MGC_STRESS_SEED", (unsigned long)time(NULL));
  with_large = conc_env_ulong("MGC_STRESS_LARGE", 1) != 0;
  with_tiny = conc_env_ulong("MGC_STRESS_TINY", 1) != 0;
  with_typed = conc_env_ulong("MGC_STRESS_TYPED", 1) != 0;
  make_node_types();
  fprintf(stderr, "stress_verify: seed %llu, %llu cycles\n", (unsigned long long)seed,
          (unsigned long long)target_cycles);
  double t0 = conc_seconds();
  uint64_t cycles0 = cycles();

  static struct worker ws[WORKERS];
  pthread_t threads[WORKERS], collector;
  for (int i = 0; i < WORKERS; i++) {
    struct worker *w = &ws[i];
    w->index = i;
    w->rng = seed * 0x9E3779B97F4A7C15ull + (uint64_t)i * 7919 + 1;
    w->rec = calloc(MAX_SLOTS, sizeof(struct record));
    w->free_slots = malloc(MAX_SLOTS * sizeof(uint32_t));
    w->walk = malloc(MAX_SLOTS * sizeof(struct node *));
    ck_assert(w->rec && w->free_slots && w->walk);
    for (uint32_t s = 0; s < MAX_SLOTS; s++) w->free_slots[w->nfree++] = MAX_SLOTS - 1 - s;
    for (int r = 0; r < ROOTS; r++) w->root_slot[r] = NO_SLOT;
    ck_assert_int_eq(gc_pthread_create(&threads[i], NULL, worker_main, w), 0);
  }
  ck_assert_int_eq(gc_pthread_create(&collector, NULL, collector_main, &limit), 0);
  gc_blocking_begin();
  for (int i = 0; i < WORKERS; i++) pthread_join(threads[i], NULL);
  atomic_store(&stop, true);
  pthread_join(collector, NULL);
  gc_blocking_end();

  ck_assert_msg(!atomic_load(&failed), "%s", failure);
  gc_collect();
  uint64_t ops = 0, checks = 0, copies = 0, larges = 0;
  for (int i = 0; i < WORKERS; i++) {
    check_graph(&ws[i]);
    ops += ws[i].ops;
    checks += ws[i].checks;
    copies += ws[i].copies;
    larges += ws[i].larges;
  }
  ck_assert_msg(!atomic_load(&failed), "%s", failure);
  struct gc_stats st = stats_now();
  fprintf(stderr, "stress_verify: %llu cycles, %llu mutations (%llu copies, %llu large nodes), "
          "%llu checks, %.1f s, %llu verify misses\n",
          (unsigned long long)(st.cycles - cycles0), (unsigned long long)ops,
          (unsigned long long)copies, (unsigned long long)larges, (unsigned long long)checks,
          conc_seconds() - t0, (unsigned long long)st.verify_misses);
  ck_assert_uint_ge(st.cycles - cycles0, target_cycles);
  ck_assert_msg(st.verify_misses == 0, "the concurrent mark missed %llu objects",
                (unsigned long long)st.verify_misses);
}
END_TEST

static Suite *stress_verify_suite(void) {
  Suite *s = suite_create("stress_verify");
  TCase *tc = tcase_create("graphs");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_stress_concurrent_verify);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite_in_children(stress_verify_suite()); }
