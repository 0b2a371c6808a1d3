/*
 * mgc-soak: the multi-threaded stress workload for a given time, round
 * after round, each round with its own settings, every reachable object
 * checked against a shadow model the collector cannot see.
 *
 *   mgc-soak [seconds]      total time (default 1800)
 *   mgc-soak --round THREADS GOGC CONCURRENT VERIFY SECONDS SEED
 *                           replay one round in this process
 *
 * Rounds.  The parent process never touches the heap: for every round it
 * draws a thread count (1..MAX_WORKERS), a GOGC value, MGC_CONCURRENT (1 or
 * 0) and, now and then, MGC_VERIFY=1, sets them in the environment and
 * forks a child that calls gc_init and runs the workload for the round's
 * time (MGC_* settings are read once, at gc_init, hence a process per
 * round).  The child prints one line for the round and exits 0 when every
 * check passed; the parent counts rounds, cycles and failures, kills a
 * child that outlives its round by far (a hang is a failure), and prints a
 * final line.  Exit status 0 only when no round failed.
 *
 * The workload.  Each worker slot owns a root table (a gc_alloc'd object)
 * hung from the global `tables`, the only root of the graph besides the
 * workers' stacks.  Nodes are conservative (gc_alloc, variable shape, some
 * over 32 KiB) or typed (gc_alloc_typed, a fixed layout scanned
 * precisely); a node may own a noscan buffer (gc_alloc_atomic, resized
 * with gc_realloc, released with gc_free when replaced).  Pointer stores
 * use GC_WRITE or gc_copy_pointers.  Worker threads come and go: a thread
 * runs a random number of mutations and exits, and the round's main
 * thread starts another on the same slot, which inherits the graph and its
 * shadow.  The main thread also calls gc_collect and changes GOGC with
 * gc_set_percent at random moments.
 *
 * The shadow.  Per slot, malloc'd records indexed by record number: id,
 * shape, payload seeds, children as record numbers.  It holds no heap
 * addresses.  A worker walks its whole graph whenever gc_get_stats().cycles
 * moved and every CHECK_OPS mutations, comparing every node, its payload
 * and its buffer with the records, and recycles the records the walk did
 * not reach.  With MGC_VERIFY=1 the round also fails on any verify miss.
 *
 * Settings (environment): MGC_SOAK_SEED (default: time), MGC_SOAK_ROUND
 * (seconds per round, default 20); to isolate a failure, MGC_SOAK_FREE=0
 * (no gc_free), MGC_SOAK_TYPED=0 (no typed nodes), MGC_SOAK_REALLOC=0 (no
 * gc_realloc).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mgc.h"

#define MAX_WORKERS 8
#define ROOTS 32
#define MAX_RECORDS 1200        /* shadow records per worker slot */
#define MAX_FIELDS 6
#define TYPED_FIELDS 4
#define TYPED_INLINE 40
#define MAX_INLINE 96
#define MAX_BUFFER 300
#define LARGE_INLINE (40 * 1024)
#define LARGE_ONE_IN 500
#define WALK_STEPS 5
#define CHECK_OPS 3000
#define POLL_OPS 32
#define GARBAGE_MAX 600
#define THREAD_OPS_MIN 20000
#define THREAD_OPS_SPAN 200000
#define MAIN_TICK_MS 5
#define DEFAULT_SECONDS 1800
#define DEFAULT_ROUND 20
#define HANG_GRACE_S 120        /* a child this far past its round is hung */
#define NO_REC UINT32_MAX
#define MSG_MAX 300

/* Each length has a word of its own: two 32-bit integers sharing a word of
 * a conservatively scanned node can look like a heap address. */
struct node {
  uint64_t rec;
  uint64_t nfields;
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
  uint32_t epoch;         /* last walk that reached it */
  bool typed;
  uint32_t children[MAX_FIELDS];
};

/* One worker slot: outlives the threads that run on it. */
struct worker {
  int index;
  uint64_t rng;
  uint64_t next_id;
  struct record *rec;
  uint32_t *free_recs;
  uint32_t nfree;
  uint32_t root_rec[ROOTS];
  struct node **walk;
  uint32_t epoch;
  uint64_t ops_left;      /* this thread's remaining mutations */
  atomic_bool done;       /* the thread finished; the main thread joins it */
  pthread_t thread;
  bool running;           /* thread was started and not yet joined */
  uint64_t ops, checks, nodes_checked, threads;
};

/* The graph's only root: each slot's table. */
static struct table *volatile tables[MAX_WORKERS];
static const gc_type *typed_node;
static atomic_bool stop;
static atomic_int failed;
static char failure[MSG_MAX];
static bool with_free = true;    /* MGC_SOAK_FREE=0: no gc_free */
static bool with_typed = true;   /* MGC_SOAK_TYPED=0: no typed nodes */
static bool with_realloc = true; /* MGC_SOAK_REALLOC=0: no gc_realloc */

/* ---- small helpers ------------------------------------------------------- */

static uint64_t rnd(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *s = x;
}

static uint64_t below(uint64_t *s, uint64_t n) { return rnd(s) % n; }

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static uint64_t env_u64(const char *name, uint64_t dflt) {
  const char *s = getenv(name);
  return s && *s ? strtoull(s, NULL, 10) : dflt;
}

static struct gc_stats stats(void) {
  struct gc_stats s;
  memset(&s, 0, sizeof(s));
  s.size = sizeof(s);
  gc_get_stats(&s);
  return s;
}

static uint64_t cycles(void) { return stats().cycles; }

/* Payload bytes.  A conservatively scanned node's payload must never look
 * like a heap address: the marker would keep garbage for it, and MGC_VERIFY
 * reports such an integer as a miss when it appears during a mark in an
 * object the mark never scans (a node allocated black, or a payload
 * rewritten after the node was scanned; docs/internals.md).  A payload that
 * ends inside a word leaves its last bytes under zero tail bytes: five
 * random bytes there read as 0xc000xxxxxx, an interior pointer into the
 * heap, once in 65536 such payloads.  With the top bit of every byte set, a
 * whole word is above any user address and a partial last word of five
 * bytes is at least 0x8080808080, beyond any heap under 2 GiB from the
 * arena hint (four bytes or fewer stay below 4 GiB). */
static unsigned char pattern_byte(uint64_t *x) { return (unsigned char)(rnd(x) | 0x80); }

static void fill(void *p, size_t n, uint64_t seed) {
  unsigned char *b = p;
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) b[i] = pattern_byte(&x);
}

/* Index of the first byte that differs from the pattern, or n. */
static size_t fill_check(const void *p, size_t n, uint64_t seed) {
  const unsigned char *b = p;
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++)
    if (b[i] != pattern_byte(&x)) return i;
  return n;
}

static void fail(const char *fmt, unsigned long long a, unsigned long long b, unsigned long long c) {
  if (atomic_exchange(&failed, 1)) return;
  snprintf(failure, sizeof(failure), fmt, a, b, c);
  atomic_store(&stop, true);
}

static unsigned char *node_inline(struct node *n) { return (unsigned char *)&n->fields[n->nfields]; }

/* ---- the shadow check ---------------------------------------------------- */

static bool check_node(struct worker *w, struct node *n) {
  struct record *r = &w->rec[n->rec];
  if (gc_base(n) != n)
    return fail("node %llu (record %llu) at %llx is not a live object", n->id, n->rec, (uintptr_t)n), false;
  if (n->id != r->id || n->nfields != r->nfields || n->inline_len != r->inline_len ||
      n->seed != r->seed || n->buffer_len != r->buffer_len || n->buffer_seed != r->buffer_seed)
    return fail("node %llu (record %llu) differs from its record (id %llu)", n->id, n->rec, r->id), false;
  size_t bad = fill_check(node_inline(n), n->inline_len, n->seed);
  if (bad != n->inline_len)
    return fail("node %llu: inline byte %llu of %llu changed", n->id, bad, n->inline_len), false;
  if (n->buffer_len && (!n->buffer || !gc_base(n->buffer) ||
                        fill_check(n->buffer, n->buffer_len, n->buffer_seed) != n->buffer_len))
    return fail("node %llu: buffer of %llu bytes freed or damaged (intact: %llu)", n->id, n->buffer_len,
                n->buffer ? fill_check(n->buffer, n->buffer_len, n->buffer_seed) : 0), false;
  if (!n->buffer_len && n->buffer)
    return fail("node %llu: buffer %llx where the record has none%llu", n->id, (uintptr_t)n->buffer, 0), false;
  return true;
}

/* Walk the graph from the slot's table, compare, recycle unreached records. */
static void check_graph(struct worker *w) {
  struct table *t = tables[w->index];
  uint32_t e = ++w->epoch, sp = 0;
  for (int i = 0; i < ROOTS; i++) {
    struct node *n = t->roots[i];
    uint32_t want = w->root_rec[i];
    if ((n == NULL) != (want == NO_REC))
      return fail("root %llu: real %llu, shadow record %llu", (unsigned long long)i, n != NULL, want);
    if (!n || w->rec[want].epoch == e) continue;
    if (n->rec != want) return fail("root %llu: node record %llu, shadow %llu", (unsigned long long)i, n->rec, want);
    w->rec[want].epoch = e;
    w->walk[sp++] = n;
  }
  while (sp && !atomic_load(&failed)) {
    struct node *n = w->walk[--sp];
    w->walk[sp] = NULL;
    w->nodes_checked++;
    if (!check_node(w, n)) return;
    struct record *r = &w->rec[n->rec];
    for (uint32_t i = 0; i < n->nfields; i++) {
      struct node *c = n->fields[i];
      uint32_t want = r->children[i];
      if ((c == NULL) != (want == NO_REC))
        return fail("node %llu field %llu: real %llu differs from the shadow", n->id, i, c != NULL);
      if (!c || w->rec[want].epoch == e) continue;
      if (c->rec != want || c->id != w->rec[want].id)
        return fail("node %llu field %llu: child id %llu is not the shadow's", n->id, i, c->id);
      w->rec[want].epoch = e;
      w->walk[sp++] = c;
    }
  }
  w->nfree = 0;
  for (uint32_t s = 0; s < MAX_RECORDS; s++)
    if (w->rec[s].epoch != e) {
      w->rec[s].id = 0;
      w->free_recs[w->nfree++] = s;
    }
  w->checks++;
}

/* ---- mutations ----------------------------------------------------------- */

/* A random reachable node (and its record), or NULL. */
static struct node *pick(struct worker *w, uint32_t *rec) {
  struct table *t = tables[w->index];
  int r = (int)below(&w->rng, ROOTS);
  struct node *n = NULL;
  for (int k = 0; k < ROOTS && !n; k++) n = t->roots[(r + k) % ROOTS];
  if (!n) return NULL;
  for (int s = (int)below(&w->rng, WALK_STEPS + 1); s > 0 && n->nfields; s--) {
    struct node *c = n->fields[below(&w->rng, n->nfields)];
    if (!c) break;
    n = c;
  }
  *rec = (uint32_t)n->rec;
  return n;
}

static void set_field(struct worker *w, struct node *x, uint32_t i, struct node *y, uint32_t yrec) {
  GC_WRITE(&x->fields[i], y);
  w->rec[x->rec].children[i] = y ? yrec : NO_REC;
}

static void set_root(struct worker *w, int i, struct node *n, uint32_t rec) {
  GC_WRITE(&tables[w->index]->roots[i], n);
  w->root_rec[i] = n ? rec : NO_REC;
}

/* A new buffer, a resized one (gc_realloc keeps the prefix), or none. */
static void op_buffer_of(struct worker *w, struct node *n) {
  struct record *r = &w->rec[n->rec];
  uint32_t len = (uint32_t)below(&w->rng, MAX_BUFFER + 1);
  uint64_t seed = rnd(&w->rng);
  unsigned char *old = n->buffer, *b;
  if (with_realloc && old && len && below(&w->rng, 2)) {
    uint32_t keep = len < n->buffer_len ? len : (uint32_t)n->buffer_len;
    n->buffer_len = 0;
    b = gc_realloc(old, len);
    if (!b) return fail("gc_realloc(%llu) failed%llu%llu", len, 0, 0);
    if (fill_check(b, keep, n->buffer_seed) != keep)
      return fail("node %llu: gc_realloc to %llu lost the first %llu bytes", n->id, len, keep);
    old = NULL; /* gc_realloc released it, or it is b */
  } else {
    b = len ? gc_alloc_atomic(len) : NULL;
    if (len && !b) return fail("gc_alloc_atomic(%llu) failed%llu%llu", len, 0, 0);
  }
  if (b) fill(b, len, seed);
  /* The header says "no buffer" while the pointer changes. */
  n->buffer_len = 0;
  GC_WRITE(&n->buffer, b);
  n->buffer_seed = seed;
  n->buffer_len = len;
  r->buffer_len = len;
  r->buffer_seed = seed;
  /* The old buffer belonged to this node alone. */
  if (with_free && old && below(&w->rng, 2)) gc_free(old);
}

/* gc_alloc and gc_alloc_typed memory must read zero. */
static bool zeroed(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i]) return false;
  return true;
}

static struct node *alloc_node(struct worker *w, bool typed, uint32_t *nf, uint32_t *il) {
  if (typed) {
    *nf = TYPED_FIELDS;
    *il = TYPED_INLINE;
    return gc_alloc_typed(sizeof(struct node) + TYPED_FIELDS * sizeof(void *) + TYPED_INLINE, typed_node);
  }
  bool large = below(&w->rng, LARGE_ONE_IN) == 0;
  *nf = (uint32_t)below(&w->rng, MAX_FIELDS + 1);
  *il = large ? LARGE_INLINE : (uint32_t)below(&w->rng, MAX_INLINE + 1);
  return gc_alloc(sizeof(struct node) + *nf * sizeof(struct node *) + *il);
}

static void op_new_node(struct worker *w) {
  if (!w->nfree) return;
  uint32_t rec = w->free_recs[--w->nfree];
  bool typed = with_typed && below(&w->rng, 4) == 0;
  uint32_t nf, il;
  struct node *n = alloc_node(w, typed, &nf, &il);
  if (!n) return fail("allocating a node failed (typed %llu)%llu%llu", typed, 0, 0);
  size_t bytes = sizeof(struct node) + nf * sizeof(void *) + il;
  if (!zeroed(n, bytes))
    return fail("a new node of %llu bytes at %llx is not zeroed (typed %llu)", bytes, (uintptr_t)n, typed);
  struct record *r = &w->rec[rec];
  memset(r, 0, sizeof(*r));
  n->rec = rec;
  n->nfields = nf;
  n->inline_len = il;
  n->id = r->id = ++w->next_id;
  n->seed = r->seed = rnd(&w->rng);
  r->nfields = nf;
  r->inline_len = il;
  r->typed = typed;
  r->epoch = w->epoch;
  fill(node_inline(n), il, n->seed);
  for (uint32_t i = 0; i < MAX_FIELDS; i++) r->children[i] = NO_REC;
  if (below(&w->rng, 3) == 0) op_buffer_of(w, n);
  for (uint32_t i = 0; i < nf; i++) {
    uint32_t cr = NO_REC;
    struct node *c = below(&w->rng, 3) ? pick(w, &cr) : NULL;
    set_field(w, n, i, c, cr);
  }
  uint32_t pr = NO_REC;
  struct node *p = below(&w->rng, 4) ? pick(w, &pr) : NULL;
  if (p && p->nfields) set_field(w, p, (uint32_t)below(&w->rng, p->nfields), n, rec);
  else set_root(w, (int)below(&w->rng, ROOTS), n, rec);
}

static void op_relink(struct worker *w) {
  uint32_t xr = NO_REC, yr = NO_REC;
  struct node *x = pick(w, &xr);
  if (!x || !x->nfields) return;
  struct node *y = below(&w->rng, 5) ? pick(w, &yr) : NULL;
  set_field(w, x, (uint32_t)below(&w->rng, x->nfields), y, yr);
}

static void op_copy(struct worker *w) {
  uint32_t xr = NO_REC, yr = NO_REC;
  struct node *x = pick(w, &xr), *y = below(&w->rng, 4) ? pick(w, &yr) : x;
  if (!x || !y || !x->nfields || !y->nfields) return;
  uint32_t a = (uint32_t)below(&w->rng, x->nfields), b = (uint32_t)below(&w->rng, y->nfields);
  uint32_t k = (uint32_t)(x->nfields - a < y->nfields - b ? x->nfields - a : y->nfields - b);
  k = 1 + (uint32_t)below(&w->rng, k);
  gc_copy_pointers(&x->fields[a], &y->fields[b], k);
  memmove(&w->rec[x->rec].children[a], &w->rec[y->rec].children[b], k * sizeof(uint32_t));
}

static void op_root(struct worker *w) {
  uint32_t r = NO_REC;
  struct node *n = below(&w->rng, 2) ? pick(w, &r) : NULL;
  set_root(w, (int)below(&w->rng, ROOTS), n, r);
}

static void op_payload(struct worker *w) {
  uint32_t r;
  struct node *n = pick(w, &r);
  if (!n) return;
  uint64_t seed = rnd(&w->rng);
  n->seed = 0;
  fill(node_inline(n), n->inline_len, seed);
  n->seed = w->rec[r].seed = seed;
}

/* Garbage of every kind; some of it released at once with gc_free. */
static void op_garbage(struct worker *w) {
  size_t len = 1 + below(&w->rng, GARBAGE_MAX);
  void *g;
  switch (below(&w->rng, 4)) {
  case 0:
    g = gc_alloc(len);
    if (g && !zeroed(g, len)) return fail("gc_alloc(%llu) at %llx is not zeroed%llu", len, (uintptr_t)g, 0);
    break;
  case 1: g = gc_alloc_atomic(len); break;
  case 2: {
    char s[64];
    size_t n = below(&w->rng, sizeof(s));
    for (size_t i = 0; i < n; i++) s[i] = (char)('a' + below(&w->rng, 26));
    s[n] = '\0';
    g = gc_strdup(s);
    if (g && strcmp(g, s) != 0) return fail("gc_strdup copy differs (%llu bytes)%llu%llu", n, 0, 0);
    break;
  }
  default: g = with_realloc ? gc_realloc(gc_alloc(len), len * 2) : gc_alloc(len); break;
  }
  if (!g) return fail("garbage allocation of %llu bytes failed%llu%llu", len, 0, 0);
  if (with_free && below(&w->rng, 3) == 0) gc_free(g);
}

static void mutate(struct worker *w) {
  switch (below(&w->rng, 12)) {
  case 0: case 1: case 2: op_new_node(w); break;
  case 3: case 4: op_relink(w); break;
  case 5: op_copy(w); break;
  case 6: op_root(w); break;
  case 7: {
    uint32_t r;
    struct node *n = pick(w, &r);
    if (n) op_buffer_of(w, n);
    break;
  }
  case 8: op_payload(w); break;
  default: op_garbage(w); break;
  }
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  uint64_t seen = cycles(), since_check = 0;
  for (; w->ops_left > 0 && !atomic_load(&stop); w->ops_left--) {
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
      }
    }
  }
  atomic_store(&w->done, true);
  return NULL;
}

/* ---- one round (in a child process) -------------------------------------- */

static void worker_start(struct worker *w) {
  w->ops_left = THREAD_OPS_MIN + below(&w->rng, THREAD_OPS_SPAN);
  atomic_store(&w->done, false);
  w->running = gc_pthread_create(&w->thread, NULL, worker_main, w) == 0;
  w->threads += w->running;
  if (!w->running) fail("gc_pthread_create failed for slot %llu%llu%llu", (unsigned long long)w->index, 0, 0);
}

static void worker_setup(struct worker *w, int index, uint64_t seed) {
  memset(w, 0, sizeof(*w));
  w->index = index;
  w->rng = seed * 0x9E3779B97F4A7C15ull + (uint64_t)index * 7919 + 1;
  w->rec = calloc(MAX_RECORDS, sizeof(struct record));
  w->free_recs = malloc(MAX_RECORDS * sizeof(uint32_t));
  w->walk = calloc(MAX_RECORDS, sizeof(struct node *));
  if (!w->rec || !w->free_recs || !w->walk) abort();
  for (uint32_t s = 0; s < MAX_RECORDS; s++) w->free_recs[w->nfree++] = MAX_RECORDS - 1 - s;
  for (int r = 0; r < ROOTS; r++) w->root_rec[r] = NO_REC;
  struct table *t = gc_alloc(sizeof(struct table));
  if (!t) abort();
  tables[index] = t;
}

static const int gogc_choices[] = {5, 10, 25, 50, 100, 200, 400, 1000};
#define NCHOICES (sizeof(gogc_choices) / sizeof(gogc_choices[0]))

static void round_main_loop(struct worker *ws, int nworkers, double seconds, uint64_t *rng, bool gogc_off) {
  double t0 = now_s();
  while (!atomic_load(&stop) && now_s() - t0 < seconds) {
    sleep_ms(MAIN_TICK_MS);
    for (int i = 0; i < nworkers; i++)
      if (ws[i].running && atomic_load(&ws[i].done)) {
        pthread_join(ws[i].thread, NULL);
        worker_start(&ws[i]);
      }
    unsigned r = (unsigned)below(rng, 100);
    if (r < (gogc_off ? 10u : 3u)) gc_collect();
    else if (r < 4 && !gogc_off) gc_set_percent(gogc_choices[below(rng, NCHOICES)]);
  }
  atomic_store(&stop, true);
  for (int i = 0; i < nworkers; i++)
    if (ws[i].running) pthread_join(ws[i].thread, NULL);
}

/* Runs in the child; returns its exit status. */
static int round_run(int round, int nworkers, const char *gogc, int concurrent, int verify,
                     double seconds, uint64_t seed) {
  gc_init();
  with_free = env_u64("MGC_SOAK_FREE", 1) != 0;
  with_typed = env_u64("MGC_SOAK_TYPED", 1) != 0;
  with_realloc = env_u64("MGC_SOAK_REALLOC", 1) != 0;
  size_t offs[1 + TYPED_FIELDS];
  offs[0] = offsetof(struct node, buffer);
  for (int i = 0; i < TYPED_FIELDS; i++) offs[1 + i] = offsetof(struct node, fields) + (size_t)i * sizeof(void *);
  typed_node = gc_type_new(sizeof(struct node) + TYPED_FIELDS * sizeof(void *) + TYPED_INLINE, offs, 1 + TYPED_FIELDS);
  if (!typed_node) {
    fprintf(stderr, "soak: gc_type_new failed\n");
    return 1;
  }
  uint64_t rng = seed ^ 0xA5A5A5A5ull;
  static struct worker ws[MAX_WORKERS];
  struct gc_stats s0 = stats();
  double t0 = now_s();
  for (int i = 0; i < nworkers; i++) worker_setup(&ws[i], i, seed);
  for (int i = 0; i < nworkers; i++) worker_start(&ws[i]);
  round_main_loop(ws, nworkers, seconds, &rng, strcmp(gogc, "off") == 0);
  if (!atomic_load(&failed)) {
    gc_collect();
    for (int i = 0; i < nworkers && !atomic_load(&failed); i++) check_graph(&ws[i]);
  }
  struct gc_stats s1 = stats();
  uint64_t ops = 0, checks = 0, nodes = 0, threads = 0;
  for (int i = 0; i < nworkers; i++) {
    ops += ws[i].ops;
    checks += ws[i].checks;
    nodes += ws[i].nodes_checked;
    threads += ws[i].threads;
  }
  if (s1.verify_misses != s0.verify_misses)
    fail("MGC_VERIFY: the concurrent mark missed %llu objects%llu%llu", s1.verify_misses - s0.verify_misses, 0, 0);
  bool ok = !atomic_load(&failed);
  printf("round %d: threads %d gogc %s concurrent %d verify %d seed %llu: %llu cycles, %llu ops, "
         "%llu checks (%llu nodes), %llu threads, max pause %.2f ms, heap %.1f MiB, %.1f s: %s%s\n",
         round, nworkers, gogc, concurrent, verify, (unsigned long long)seed,
         (unsigned long long)(s1.cycles - s0.cycles), (unsigned long long)ops,
         (unsigned long long)checks, (unsigned long long)nodes, (unsigned long long)threads,
         (double)s1.max_pause_ns / 1e6, (double)s1.heap_sys / (1 << 20), now_s() - t0,
         ok ? "ok" : "FAIL: ", ok ? "" : failure);
  if (!ok)
    printf("round %d: replay: mgc-soak --round %d %s %d %d %.0f %llu\n", round, nworkers, gogc, concurrent,
           verify, seconds, (unsigned long long)seed);
  fflush(stdout);
  return ok ? 0 : 1;
}

/* ---- the parent: rounds -------------------------------------------------- */

struct round_result {
  int status;         /* 0 ok, 1 failed, 2 hung or killed */
  uint64_t cycles;
};

/* Runs one round in a child; relays its line to stdout and reads its cycle
 * count from it. */
static struct round_result round_fork(int round, double seconds, uint64_t *rng, uint64_t base_seed) {
  int nworkers = 1 + (int)below(rng, MAX_WORKERS);
  char gogc[16];
  if (below(rng, 10) == 0) snprintf(gogc, sizeof(gogc), "off");
  else snprintf(gogc, sizeof(gogc), "%d", gogc_choices[below(rng, NCHOICES)]);
  int concurrent = below(rng, 4) != 0;
  int verify = concurrent && below(rng, 4) == 0;
  uint64_t seed = base_seed + (uint64_t)round * 1000003u;
  struct round_result res = {2, 0};
  int fds[2];
  if (pipe(fds) != 0) return res;
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return res;
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 1);
    close(fds[1]);
    setenv("MGC_GOGC", gogc, 1);
    setenv("MGC_CONCURRENT", concurrent ? "1" : "0", 1);
    setenv("MGC_VERIFY", verify ? "1" : "0", 1);
    _exit(round_run(round, nworkers, gogc, concurrent, verify, seconds, seed));
  }
  close(fds[1]);
  char line[2048] = "";
  size_t len = 0;
  double deadline = now_s() + seconds + HANG_GRACE_S;
  int status = 0;
  bool exited = false, killed = false;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      exited = true;
      break;
    }
    if (now_s() > deadline && !killed) {
      fprintf(stderr, "soak: round %d (pid %d) hung past its time; killing it\n", round, (int)pid);
      kill(pid, SIGABRT);
      killed = true;
      deadline = now_s() + 10;
    } else if (killed && now_s() > deadline) {
      kill(pid, SIGKILL);
    }
    sleep_ms(100);
  }
  ssize_t got;
  while (len < sizeof(line) - 1 && (got = read(fds[0], line + len, sizeof(line) - 1 - len)) > 0) len += (size_t)got;
  line[len] = '\0';
  close(fds[0]);
  if (len) fputs(line, stdout);
  const char *c = strstr(line, " cycles, ");
  while (c && c > line && c[-1] >= '0' && c[-1] <= '9') c--;
  unsigned long long cyc = 0;
  if (c && sscanf(c, "%llu cycles", &cyc) == 1) res.cycles = cyc;
  if (exited && !killed && WIFEXITED(status) && WEXITSTATUS(status) == 0 && len) res.status = 0;
  else {
    res.status = killed ? 2 : 1;
    if (!len || !WIFEXITED(status))
      printf("round %d: threads %d gogc %s concurrent %d verify %d seed %llu: FAIL: %s %d; "
             "replay: mgc-soak --round %d %s %d %d %.0f %llu\n", round, nworkers, gogc, concurrent,
             verify, (unsigned long long)seed, WIFSIGNALED(status) ? "killed by signal" : "exit status",
             WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), nworkers, gogc, concurrent,
             verify, seconds, (unsigned long long)seed);
  }
  fflush(stdout);
  return res;
}

/* mgc-soak --round THREADS GOGC CONCURRENT VERIFY SECONDS SEED: one round
 * in this process, to replay a failed round (under a debugger, say). */
static int replay(char **argv) {
  setenv("MGC_GOGC", argv[1], 1);
  setenv("MGC_CONCURRENT", argv[2], 1);
  setenv("MGC_VERIFY", argv[3], 1);
  return round_run(0, atoi(argv[0]), argv[1], atoi(argv[2]), atoi(argv[3]), strtod(argv[4], NULL),
                   strtoull(argv[5], NULL, 10));
}

int main(int argc, char **argv) {
  if (argc == 8 && strcmp(argv[1], "--round") == 0) return replay(argv + 2);
  double total = argc > 1 ? strtod(argv[1], NULL) : DEFAULT_SECONDS;
  double round_s = (double)env_u64("MGC_SOAK_ROUND", DEFAULT_ROUND);
  uint64_t seed = env_u64("MGC_SOAK_SEED", (uint64_t)time(NULL));
  if (total <= 0 || round_s <= 0) {
    fprintf(stderr, "usage: mgc-soak [seconds]  (MGC_SOAK_ROUND: seconds per round, MGC_SOAK_SEED)\n");
    return 2;
  }
  uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 17;
  printf("soak: %.0f s in rounds of %.0f s, seed %llu\n", total, round_s, (unsigned long long)seed);
  double t0 = now_s();
  int rounds = 0, failures = 0;
  uint64_t all_cycles = 0;
  while (now_s() - t0 < total) {
    double left = total - (now_s() - t0);
    struct round_result r = round_fork(rounds, left < round_s ? left : round_s, &rng, seed);
    rounds++;
    all_cycles += r.cycles;
    if (r.status != 0) failures++;
  }
  printf("soak: %d rounds, %llu cycles, %.0f s, %d failed: %s\n", rounds, (unsigned long long)all_cycles,
         now_s() - t0, failures, failures ? "FAIL" : "ok");
  return failures ? 1 : 0;
}
