/*
 * test_stress.c: threads mutate random object graphs while collections run,
 * and after every collection each thread checks its whole graph against a
 * shadow copy the collector cannot see (public API only; suite "stress").
 *
 * The real graph.  Each worker owns ROOTS root slots in a gc_alloc'd array;
 * the arrays hang from another gc_alloc'd array held by one global, so the
 * global is the graph's only root besides the workers' own stacks.  A node
 * has a header (id, field count, payload length, payload seed), nfields
 * pointer fields, an inline payload after them, and optionally a pointer to
 * a noscan buffer (gc_alloc_atomic) holding more payload.  Sizes are random,
 * with some nodes and buffers over 32 KiB (large objects).  Pointer stores
 * into objects go through STORE_PTR, GC_WRITE when mgc.h defines it.
 *
 * The shadow.  Per worker, malloc'd records indexed by a shadow slot: the
 * node's id, shape and seed, and its children as slot numbers.  The node
 * itself records its slot, so a walk can pair real and shadow nodes.  The
 * shadow stores no heap addresses (malloc memory is not scanned anyway),
 * so it keeps nothing alive that the real graph does not.
 *
 * Checking.  Each worker polls gc_get_stats().cycles between mutations and,
 * whenever it moved, walks its graph from its roots (iteratively, with a
 * malloc'd stack) comparing every node with its shadow record: id, shape,
 * inline payload, buffer payload, and for every field null-ness and the
 * child's slot.  The same walk marks the shadow slots still reachable; the
 * others are recycled.  A checker thread calls gc_collect periodically so
 * the run reaches its cycle target even when allocation alone would not.
 *
 * Settings (environment): MGC_STRESS_CYCLES (collections to reach, default
 * 200), MGC_STRESS_SECONDS (time limit, default 50), MGC_STRESS_SEED,
 * MGC_STRESS_COLLECT_MS (period of the forced collections, default 20;
 * 0 = none).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gctest.h"
#include "mgc.h"

#ifdef GC_WRITE
#define STORE_PTR(slot, value) GC_WRITE((slot), (value))
#else
#define STORE_PTR(slot, value) (*(slot) = (value))
#endif

#define WORKERS 4
#define ROOTS 64
#define MAX_SLOTS 4096        /* shadow records per worker */
#define MAX_FIELDS 8
#define LARGE_FIELDS 4500     /* 36 KB of fields: a large object */
#define MAX_INLINE 200
#define LARGE_BUFFER (48 * 1024)
#define MAX_BUFFER 512
#define RANDOM_WALK 6
#define COLLECT_PERIOD_MS 20
#define DEFAULT_CYCLES 200
#define DEFAULT_SECONDS 50
#define NO_SLOT UINT32_MAX

struct node {
  uint64_t id;
  uint32_t slot;            /* shadow record */
  uint32_t nfields;
  uint32_t inline_len;
  uint32_t buffer_len;
  uint64_t seed;
  unsigned char *buffer;    /* noscan payload, or NULL */
  struct node *fields[];    /* then inline_len bytes of payload */
};

struct shadow {
  uint64_t id;              /* 0: free record */
  uint32_t nfields, inline_len, buffer_len;
  uint64_t seed;
  uint32_t *children;       /* nfields slot numbers or NO_SLOT */
  uint32_t seen;            /* walk epoch that reached it */
};

struct worker {
  unsigned index;
  uint64_t rng;
  uint64_t next_id;
  struct shadow *shadow;    /* MAX_SLOTS records */
  uint32_t root_slots[ROOTS];
  uint32_t *free_slots;
  uint32_t nfree;
  uint32_t epoch;
  uint32_t *stack;          /* walk stack of slots */
  struct node **nstack;     /* walk stack of nodes (malloc'd: unscanned) */
  uint64_t checks, mutations, nodes_checked;
  char failure[256];
};

static struct node ***graph_roots;   /* gc_alloc'd: WORKERS root arrays */
static atomic_int stop_flag;
static atomic_int failed;

static uint64_t rnd(struct worker *w) {
  uint64_t x = w->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return w->rng = x;
}

static unsigned rnd_below(struct worker *w, unsigned n) { return (unsigned)(rnd(w) % n); }

static unsigned char *inline_payload(struct node *n) { return (unsigned char *)&n->fields[n->nfields]; }

static struct node **roots_of(struct worker *w) { return graph_roots[w->index]; }

static uint64_t env_u64(const char *name, uint64_t def) {
  const char *s = getenv(name);
  return s && *s ? strtoull(s, NULL, 10) : def;
}

static uint64_t cycles(void) {
  struct gc_stats s;
  memset(&s, 0, sizeof(s));
  s.size = sizeof(s);
  gc_get_stats(&s);
  return s.cycles;
}

static void report_failure(struct worker *w, const char *what, uint64_t id) {
  if (!w->failure[0])
    snprintf(w->failure, sizeof(w->failure), "worker %u: node %llu: %s", w->index,
             (unsigned long long)id, what);
  atomic_store(&failed, 1);
}

/* ---- nodes and their shadows -------------------------------------------- */

static uint32_t take_slot(struct worker *w) {
  return w->nfree ? w->free_slots[--w->nfree] : NO_SLOT;
}

static struct node *new_node(struct worker *w, uint32_t slot) {
  uint32_t nfields = rnd_below(w, 100) == 0 ? LARGE_FIELDS : rnd_below(w, MAX_FIELDS + 1);
  uint32_t inline_len = rnd_below(w, MAX_INLINE);
  unsigned r = rnd_below(w, 100);
  uint32_t buffer_len = r == 0 ? LARGE_BUFFER + rnd_below(w, 4096) : r < 40 ? 1 + rnd_below(w, MAX_BUFFER) : 0;
  struct node *n = gc_alloc(sizeof(struct node) + nfields * sizeof(void *) + inline_len);
  if (!n) return NULL;
  n->id = ++w->next_id | (uint64_t)w->index << 56;
  n->slot = slot;
  n->nfields = nfields;
  n->inline_len = inline_len;
  n->buffer_len = buffer_len;
  n->seed = rnd(w);
  pattern_fill(inline_payload(n), inline_len, n->seed);
  if (buffer_len) {
    unsigned char *b = gc_alloc_atomic(buffer_len);
    if (!b) return NULL;
    pattern_fill(b, buffer_len, ~n->seed);
    STORE_PTR(&n->buffer, b);
  }
  struct shadow *s = &w->shadow[slot];
  s->id = n->id;
  s->nfields = nfields;
  s->inline_len = inline_len;
  s->buffer_len = buffer_len;
  s->seed = n->seed;
  s->children = realloc(s->children, (nfields ? nfields : 1) * sizeof(uint32_t));
  for (uint32_t i = 0; i < nfields; i++) s->children[i] = NO_SLOT;
  return n;
}

/* A random reachable node (and its slot), by a short walk from a random
 * root; NULL when the chosen root is empty. */
static struct node *pick(struct worker *w, uint32_t *slot) {
  unsigned r = rnd_below(w, ROOTS);
  struct node *n = roots_of(w)[r];
  uint32_t s = w->root_slots[r];
  if (!n) return NULL;
  for (unsigned steps = rnd_below(w, RANDOM_WALK); steps > 0 && n->nfields; steps--) {
    uint32_t f = rnd_below(w, n->nfields);
    if (!n->fields[f]) break;
    s = w->shadow[s].children[f];
    n = n->fields[f];
  }
  *slot = s;
  return n;
}

static void set_field(struct worker *w, struct node *n, uint32_t slot, uint32_t f,
                      struct node *child, uint32_t child_slot) {
  STORE_PTR(&n->fields[f], child);
  w->shadow[slot].children[f] = child ? child_slot : NO_SLOT;
}

static void set_root(struct worker *w, unsigned r, struct node *n, uint32_t slot) {
  STORE_PTR(&roots_of(w)[r], n);
  w->root_slots[r] = n ? slot : NO_SLOT;
}

/* ---- mutation ------------------------------------------------------------ */

static void mutate(struct worker *w) {
  unsigned op = rnd_below(w, 100);
  uint32_t s1, s2;
  if (op < 35) {
    /* A new node in a root or a field, with a few fields wired to
     * existing nodes. */
    uint32_t slot = take_slot(w);
    if (slot == NO_SLOT) {
      set_root(w, rnd_below(w, ROOTS), NULL, NO_SLOT);
      return;
    }
    struct node *n = new_node(w, slot);
    if (!n) {
      report_failure(w, "gc_alloc returned NULL", 0);
      return;
    }
    for (uint32_t i = 0; i < n->nfields && i < MAX_FIELDS; i++) {
      struct node *c = rnd_below(w, 2) ? pick(w, &s2) : NULL;
      if (c) set_field(w, n, slot, i, c, s2);
    }
    struct node *parent = rnd_below(w, 2) ? pick(w, &s1) : NULL;
    if (parent && parent->nfields) set_field(w, parent, s1, rnd_below(w, parent->nfields), n, slot);
    else set_root(w, rnd_below(w, ROOTS), n, slot);
    n = NULL;
  } else if (op < 65) {
    /* Rewire a field of a reachable node to another reachable node or
     * to nothing. */
    struct node *a = pick(w, &s1);
    if (!a || !a->nfields) return;
    struct node *b = rnd_below(w, 4) ? pick(w, &s2) : NULL;
    set_field(w, a, s1, rnd_below(w, a->nfields), b, s2);
  } else if (op < 80) {
    /* Drop a root. */
    set_root(w, rnd_below(w, ROOTS), NULL, NO_SLOT);
  } else if (op < 90) {
    /* A root takes a reachable node. */
    struct node *a = pick(w, &s1);
    if (a) set_root(w, rnd_below(w, ROOTS), a, s1);
  } else {
    /* Rewrite a reachable node's inline payload with a new seed. */
    struct node *a = pick(w, &s1);
    if (!a) return;
    uint64_t seed = rnd(w);
    a->seed = seed;
    pattern_fill(inline_payload(a), a->inline_len, seed);
    if (a->buffer) pattern_fill(a->buffer, a->buffer_len, ~seed);
    w->shadow[s1].seed = seed;
  }
}

/* ---- checking ------------------------------------------------------------ */

static bool check_node(struct worker *w, struct node *n, uint32_t slot) {
  struct shadow *s = &w->shadow[slot];
  if (gc_base(n) != n) return report_failure(w, "reachable node is not a live object", s->id), false;
  if (n->id != s->id || n->slot != slot) return report_failure(w, "id or slot overwritten", s->id), false;
  if (n->nfields != s->nfields || n->inline_len != s->inline_len || n->buffer_len != s->buffer_len ||
      n->seed != s->seed)
    return report_failure(w, "header overwritten", s->id), false;
  if (pattern_check(inline_payload(n), n->inline_len, n->seed) != n->inline_len)
    return report_failure(w, "inline payload overwritten", s->id), false;
  if (n->buffer_len) {
    if (!n->buffer || gc_base(n->buffer) == NULL) { /* tiny buffers share a block: no == */
      char what[128];
      snprintf(what, sizeof(what), "payload buffer %p of %u bytes reclaimed (node %p, %u fields)",
               (void *)n->buffer, n->buffer_len, (void *)n, n->nfields);
      return report_failure(w, what, s->id), false;
    }
    if (pattern_check(n->buffer, n->buffer_len, ~n->seed) != n->buffer_len)
      return report_failure(w, "payload buffer overwritten", s->id), false;
  }
  return true;
}

/* Walk everything reachable from the roots, compare with the shadow, and
 * recycle the shadow records the walk did not reach. */
static void check_graph(struct worker *w) {
  uint32_t epoch = ++w->epoch;
  size_t sp = 0;
  for (unsigned r = 0; r < ROOTS; r++) {
    struct node *n = roots_of(w)[r];
    uint32_t slot = w->root_slots[r];
    if ((n == NULL) != (slot == NO_SLOT)) {
      report_failure(w, "root does not match shadow", r);
      return;
    }
    if (!n || w->shadow[slot].seen == epoch) continue;
    w->shadow[slot].seen = epoch;
    w->stack[sp] = slot;
    w->nstack[sp++] = n;
  }
  while (sp > 0) {
    sp--;
    uint32_t slot = w->stack[sp];
    struct node *n = w->nstack[sp];
    w->nstack[sp] = NULL;
    w->nodes_checked++;
    if (!check_node(w, n, slot)) return;
    struct shadow *s = &w->shadow[slot];
    for (uint32_t f = 0; f < n->nfields; f++) {
      struct node *c = n->fields[f];
      uint32_t cs = s->children[f];
      if ((c == NULL) != (cs == NO_SLOT)) {
        report_failure(w, "field does not match shadow", s->id);
        return;
      }
      if (!c) continue;
      if (c->slot != cs) {
        report_failure(w, "field points to the wrong node", s->id);
        return;
      }
      if (w->shadow[cs].seen == epoch) continue;
      w->shadow[cs].seen = epoch;
      w->stack[sp] = cs;
      w->nstack[sp++] = c;
    }
  }
  w->nfree = 0;
  for (uint32_t i = 0; i < MAX_SLOTS; i++)
    if (w->shadow[i].seen != epoch) {
      w->shadow[i].id = 0;
      w->free_slots[w->nfree++] = i;
    }
  w->checks++;
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  uint64_t seen = cycles();
  for (unsigned batch = 1; !atomic_load(&stop_flag) && !atomic_load(&failed); batch++) {
    for (int i = 0; i < 64; i++) {
      mutate(w);
      w->mutations++;
    }
    uint64_t now = cycles();
    /* After every cycle; and now and then anyway, which also recycles
     * shadow records when collections are off (MGC_GOGC=off and
     * MGC_STRESS_COLLECT_MS=0 check the test itself). */
    if (now != seen || batch % 1024 == 0) {
      seen = now;
      check_graph(w);
    }
  }
  if (!atomic_load(&failed)) check_graph(w);
  return NULL;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void worker_init(struct worker *w, unsigned index, uint64_t seed) {
  memset(w, 0, sizeof(*w));
  w->index = index;
  w->rng = seed * 0x9E3779B97F4A7C15ull + index + 1;
  w->shadow = calloc(MAX_SLOTS, sizeof(struct shadow));
  w->free_slots = malloc(MAX_SLOTS * sizeof(uint32_t));
  w->stack = malloc(MAX_SLOTS * sizeof(uint32_t));
  w->nstack = malloc(MAX_SLOTS * sizeof(struct node *));
  for (uint32_t i = 0; i < MAX_SLOTS; i++) w->free_slots[i] = MAX_SLOTS - 1 - i;
  w->nfree = MAX_SLOTS;
  for (unsigned r = 0; r < ROOTS; r++) w->root_slots[r] = NO_SLOT;
  STORE_PTR(&graph_roots[index], gc_alloc(ROOTS * sizeof(struct node *)));
}

static void worker_free(struct worker *w) {
  for (uint32_t i = 0; i < MAX_SLOTS; i++) free(w->shadow[i].children);
  free(w->shadow);
  free(w->free_slots);
  free(w->stack);
  free(w->nstack);
}

START_TEST(test_random_graphs_match_their_shadow_after_every_collection) {
  uint64_t target = env_u64("MGC_STRESS_CYCLES", DEFAULT_CYCLES);
  double limit = (double)env_u64("MGC_STRESS_SECONDS", DEFAULT_SECONDS);
  uint64_t seed = env_u64("MGC_STRESS_SEED", (uint64_t)time(NULL));
  gc_init();
  graph_roots = gc_alloc(WORKERS * sizeof(*graph_roots));
  static struct worker workers[WORKERS];
  for (unsigned i = 0; i < WORKERS; i++) worker_init(&workers[i], i, seed);
  atomic_store(&stop_flag, 0);
  atomic_store(&failed, 0);

  pthread_t t[WORKERS];
  for (unsigned i = 0; i < WORKERS; i++)
    ck_assert_int_eq(gc_pthread_create(&t[i], NULL, worker_main, &workers[i]), 0);
  double t0 = now_s();
  uint64_t c0 = cycles();
  long period = (long)env_u64("MGC_STRESS_COLLECT_MS", COLLECT_PERIOD_MS);
  while (!atomic_load(&failed) && cycles() - c0 < target && now_s() - t0 < limit) {
    sleep_ms(period ? period : COLLECT_PERIOD_MS);
    if (period) gc_collect();
  }
  atomic_store(&stop_flag, 1);
  uint64_t checks = 0, mutations = 0, nodes = 0;
  for (unsigned i = 0; i < WORKERS; i++) {
    pthread_join(t[i], NULL);
    checks += workers[i].checks;
    mutations += workers[i].mutations;
    nodes += workers[i].nodes_checked;
  }
  uint64_t ran = cycles() - c0;
  fprintf(stderr, "stress: seed %llu, %llu cycles in %.1f s, %llu mutations, %llu graph checks, "
          "%llu nodes checked\n", (unsigned long long)seed, (unsigned long long)ran,
          now_s() - t0, (unsigned long long)mutations, (unsigned long long)checks,
          (unsigned long long)nodes);
  for (unsigned i = 0; i < WORKERS; i++)
    ck_assert_msg(!workers[i].failure[0], "%s (seed %llu)", workers[i].failure,
                  (unsigned long long)seed);
  ck_assert_msg(ran >= target, "only %llu of %llu cycles in %.0f s", (unsigned long long)ran,
                (unsigned long long)target, limit);
  for (unsigned i = 0; i < WORKERS; i++) worker_free(&workers[i]);
}
END_TEST

static Suite *stress_suite(void) {
  Suite *s = suite_create("stress");
  TCase *tc = tcase_create("graphs");
  tcase_set_timeout(tc, 0); /* meson's timeout governs */
  tcase_add_test(tc, test_random_graphs_match_their_shadow_after_every_collection);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return run_suite(stress_suite()); }
