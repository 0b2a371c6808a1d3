/*
 * fuzz_api.c: a libFuzzer target that reads its input as a program of mgc
 * API calls and checks every step against a shadow model of the heap
 * (public API only; built by tools/fuzz with clang's
 * -fsanitize=fuzzer,address,undefined).
 *
 * The program.  Each operation is an opcode byte and a few argument bytes
 * (a missing byte reads as 0): allocate (gc_alloc, gc_alloc_atomic, tiny
 * and large sizes, gc_alloc_typed with a pair, a bitmap and a traced type,
 * arrays of them, gc_strdup), gc_realloc, store a pointer with GC_WRITE,
 * gc_copy_pointers, load a field into a root, drop a root, gc_free, rewrite
 * an object's data, ask gc_size / gc_base, make garbage, gc_collect (or
 * gc_release_memory), gc_set_percent, start a worker thread that runs the
 * next bytes as a program of its own (on its own roots, beside the main
 * one) and join it, weak references, finalizers, gc_wait_finalizers and
 * ephemerons.
 *
 * The model.  Each program context owns a root area (malloc'd, registered
 * with gc_add_roots once): ROOTS object slots, weak reference slots and
 * ephemeron slots.  Its shadow (malloc'd, never scanned) records every
 * object: address (hidden), kind, size, which words are pointer fields,
 * the fields' targets as record numbers, the seed its data words were
 * filled from.  Reachability is computed from the root slots through the
 * fields, and through ephemerons whose key is reachable, after every
 * operation; only reachable objects are ever touched.
 *
 * Checks (abort on any difference):
 *   - a reachable object is live (gc_base), its data words hold their
 *     pattern and its fields the addresses of their targets;
 *   - gc_realloc keeps the prefix, gc_size covers the request, gc_base
 *     finds the start from an interior pointer;
 *   - a weak reference to a reachable object reads it (never NULL); one to
 *     an unreachable object reads NULL or the object, intact;
 *   - an ephemeron with a reachable key reads its key and value;
 *   - a finalizer runs only for an object the model has dropped, at most
 *     once, never after gc_free or removal, and finds its object intact.
 * Conservative scanning may keep garbage, so "freed when unreachable" is
 * not checked.
 *
 * Settings (environment): MGC_FUZZ_TYPED=0 makes conservative objects
 * where the program asks for typed ones; with MGC_VERIFY=1 any object the
 * concurrent mark missed is a failure too.
 *
 * Between inputs.  libFuzzer runs many inputs in one process and mgc's
 * heap persists, so each input ends by joining its worker and clearing
 * every slot of its root areas; GOGC goes back to 100.  Finalizer records
 * live in a global pool, as a finalizer may run during a later input.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgc.h"

#ifndef FUZZ_LIFETIME
#define FUZZ_LIFETIME 1  /* weak references, finalizers, ephemerons */
#endif

#define ROOTS 24
#define WEAKS 8
#define EPHS 8
#define MAX_OBJ 384          /* shadow records per context */
#define MAX_FIELDS 8         /* modelled pointer fields per object */
#define MAX_OPS 1500         /* per program, so one input stays fast */
#define LARGE_MAX (160 * 1024)
#define GARBAGE_BURST 64
#define FIN_POOL 4096
/* Collections per input, main and worker together: each one scans the
 * fuzzer's own ~10 MB of static data conservatively (about 15 ms with
 * ASan), so an input that asked for more would run far slower. */
#define COLLECTS_PER_INPUT 4
#define NONE (-1)
#define HIDE_MASK ((uintptr_t)0x5555555555555555ull)

enum kind { K_SCAN, K_ATOMIC, K_STR, K_PAIR, K_BITMAP, K_TRACED };

/* Typed layouts.  pair: {data, pointer}; bitmap: 6 words, pointers in
 * words 0, 2 and 3; traced: word 0 counts the pointer words after it. */
#define PAIR_SIZE 16
#define BITMAP_SIZE 48
static const gc_type *type_pair, *type_bitmap, *type_traced;

struct obj {
  bool used;              /* a record of an object made by this input */
  bool reachable;         /* by the model, as of the last update */
  enum kind kind;
  uint32_t size;
  uintptr_t addr;         /* hidden */
  uint64_t seed;
  uint32_t nptr;          /* pointer words (fields are the first MAX_FIELDS) */
  uint32_t nf;            /* modelled fields */
  uint32_t field_word[MAX_FIELDS];
  int child[MAX_FIELDS];
  struct finrec *fin;     /* armed finalizer, or NULL */
};

/* The part of the model the scanner must see: registered as roots. */
struct rootarea {
  void *roots[ROOTS];
  gc_weak *weaks[WEAKS];
  gc_ephemeron *ephs[EPHS];
};

struct weakslot {
  int target;             /* record, or NONE for a weak reference to NULL */
  uintptr_t interior;     /* offset given to gc_weak_new */
};

struct ephslot {
  int key, value;         /* records (value may be NONE) */
};

struct ctx {
  const char *name;
  struct rootarea *ra;
  int root[ROOTS];        /* record held by each root slot, or NONE */
  struct weakslot weak[WEAKS];
  struct ephslot eph[EPHS];
  struct obj obj[MAX_OBJ];
  const uint8_t *in;
  size_t len, pos;
  unsigned ops;
};

/* ---- finalizer records (global: they outlive their input) --------------- */

enum fin_state { FIN_FREE, FIN_REACHABLE, FIN_DROPPED, FIN_FREED, FIN_REMOVED, FIN_RAN };

struct finrec {
  _Atomic int state;
  _Atomic int runs;
  uintptr_t addr;         /* hidden */
  struct obj shape;       /* kind, size, pointer words and seed, for the data check */
};

#if FUZZ_LIFETIME
static struct finrec fin_pool[FIN_POOL];
static pthread_mutex_t fin_lock = PTHREAD_MUTEX_INITIALIZER;
#endif

static struct ctx main_ctx, worker_ctx;
static atomic_int collects_left;
/* MGC_FUZZ_TYPED=0: allocate conservative objects where the program asks
 * for typed ones (to look past a known typed-scanning bug). */
static bool with_typed = true;
static pthread_t worker;
static bool worker_running;

/* ---- small helpers --------------------------------------------------------- */

static uintptr_t hide(const void *p) { return (uintptr_t)p ^ HIDE_MASK; }
static void *unhide(uintptr_t h) { return (void *)(h ^ HIDE_MASK); }

static void fail(const char *ctx, const char *what, unsigned long long a, unsigned long long b) {
  fprintf(stderr, "fuzz_api: %s: %s (%llu, %llu)\n", ctx, what, a, b);
  abort();
}

/* Model helpers run on every byte of every checked object: keep libFuzzer's
 * comparison tracing out of them (coverage of the model is noise). */
#define MODEL __attribute__((no_sanitize("coverage")))

MODEL static uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

static unsigned byte(struct ctx *c) { return c->pos < c->len ? c->in[c->pos++] : 0; }

static unsigned u16(struct ctx *c) {
  unsigned lo = byte(c);
  return lo | byte(c) << 8;
}

/* ---- object layouts -------------------------------------------------------- */

MODEL static bool tiny_atomic(const struct obj *o) { return (o->kind == K_ATOMIC || o->kind == K_STR) && o->size <= 16; }

MODEL static bool scanned(const struct obj *o) { return o->kind != K_ATOMIC && o->kind != K_STR; }

/* Word w of the object holds a pointer (modelled field or one that must
 * stay NULL)? */
MODEL static bool ptr_word(const struct obj *o, uint32_t w) {
  switch (o->kind) {
  case K_SCAN: return w < o->nptr;
  case K_PAIR: return w % 2 == 1;
  case K_BITMAP: { unsigned e = w % 6; return e == 0 || e == 2 || e == 3; }
  case K_TRACED: return w >= 1 && w <= o->nptr;
  default: return false;
  }
}

/* Set nptr / nf / field_word for the object's kind and size; nscan is the
 * pointer word count asked for conservative and traced objects. */
static void layout(struct obj *o, uint32_t nscan) {
  uint32_t words = o->size / 8;
  o->nptr = 0;
  if (o->kind == K_SCAN || o->kind == K_TRACED) {
    uint32_t room = o->kind == K_TRACED ? (words ? words - 1 : 0) : words;
    o->nptr = nscan < room ? nscan : room;
    if (o->nptr > MAX_FIELDS) o->nptr = MAX_FIELDS;
  }
  o->nf = 0;
  for (uint32_t w = 0; w < words && o->nf < MAX_FIELDS; w++)
    if (ptr_word(o, w)) o->field_word[o->nf++] = w;
}

/* The value of data word w (strings are bytes, see str_byte). */
MODEL static uint64_t data_word(const struct obj *o, uint32_t w) {
  return o->kind == K_TRACED && w == 0 ? o->nptr : mix(o->seed ^ w);
}

MODEL static uint8_t str_byte(const struct obj *o, uint32_t i) {
  return i + 1 == o->size ? 0 : (uint8_t)('a' + mix(o->seed ^ i) % 26);
}

MODEL static bool data_word_at(const struct obj *o, uint32_t w) { return !scanned(o) || !ptr_word(o, w); }

/* Fill every data byte (plain stores: never a pointer word). */
MODEL static void fill_data(const struct obj *o, unsigned char *p) {
  if (o->kind == K_STR) {
    for (uint32_t i = 0; i < o->size; i++) p[i] = str_byte(o, i);
    return;
  }
  uint32_t words = o->size / 8;
  for (uint32_t w = 0; w < words; w++)
    if (data_word_at(o, w)) {
      uint64_t v = data_word(o, w);
      memcpy(p + 8 * w, &v, 8);
    }
  uint64_t tail = data_word(o, words);
  for (uint32_t i = 8 * words; i < o->size; i++) p[i] = (uint8_t)(tail >> (8 * (i % 8)));
}

/* Index of the first data byte below upto that differs, or upto. */
MODEL static uint32_t check_data(const struct obj *o, const unsigned char *p, uint32_t upto) {
  if (o->kind == K_STR) {
    for (uint32_t i = 0; i < upto; i++)
      if (p[i] != str_byte(o, i)) return i;
    return upto;
  }
  for (uint32_t w = 0; 8 * w < upto; w++) {
    if (w < o->size / 8 && !data_word_at(o, w)) continue;
    uint64_t v = data_word(o, w), got = 0;
    uint32_t n = upto - 8 * w < 8 ? upto - 8 * w : 8;
    memcpy(&got, p + 8 * w, n);
    if (n < 8) v &= ((uint64_t)1 << (8 * n)) - 1;
    if (got != v)
      for (uint32_t i = 0; i < n; i++)
        if ((uint8_t)(got >> (8 * i)) != (uint8_t)(v >> (8 * i))) return 8 * w + i;
  }
  return upto;
}

/* ---- the model: reachability ----------------------------------------------- */

static void fin_set_state(struct finrec *f, int from, int to) {
  int expect = from;
  atomic_compare_exchange_strong(&f->state, &expect, to);
}

/* Recompute which records are reachable: roots, fields, and ephemerons
 * whose key is reachable (to a fixpoint).  A record that stops being
 * reachable has its finalizer record marked dropped first, before the
 * program's real store that drops it (see drop_then). */
MODEL static void reach(struct ctx *c, bool *out) {
  int stack[MAX_OBJ];
  int sp = 0;
  memset(out, 0, MAX_OBJ * sizeof(bool));
  for (int i = 0; i < ROOTS; i++)
    if (c->root[i] != NONE && !out[c->root[i]]) out[stack[sp++] = c->root[i]] = true;
  for (;;) {
    while (sp) {
      struct obj *o = &c->obj[stack[--sp]];
      for (uint32_t f = 0; f < o->nf; f++)
        if (o->child[f] != NONE && !out[o->child[f]]) out[stack[sp++] = o->child[f]] = true;
    }
    for (int e = 0; e < EPHS; e++)
      if (c->eph[e].key != NONE && out[c->eph[e].key] && c->eph[e].value != NONE && !out[c->eph[e].value])
        out[stack[sp++] = c->eph[e].value] = true;
    if (!sp) break;
  }
}

/* Apply a model change that may drop objects: compute the new reachable
 * set, and before anything real happens mark dropped objects' finalizer
 * records (a finalizer may run as soon as the real store is done). */
static void model_update(struct ctx *c) {
  bool now[MAX_OBJ];
  reach(c, now);
  for (int i = 0; i < MAX_OBJ; i++) {
    struct obj *o = &c->obj[i];
    if (!o->used) continue;
    if (o->reachable && !now[i] && o->fin) fin_set_state(o->fin, FIN_REACHABLE, FIN_DROPPED);
    o->reachable = now[i];
  }
}

/* Is record i referenced by a weak or ephemeron slot (then it is kept for
 * the checks even when unreachable)? */
static bool watched(struct ctx *c, int i) {
  for (int w = 0; w < WEAKS; w++)
    if (c->ra->weaks[w] && c->weak[w].target == i) return true;
  for (int e = 0; e < EPHS; e++)
    if (c->ra->ephs[e] && (c->eph[e].key == i || c->eph[e].value == i)) return true;
  return false;
}

static int new_record(struct ctx *c) {
  for (int i = 0; i < MAX_OBJ; i++)
    if (!c->obj[i].used) return i;
  for (int i = 0; i < MAX_OBJ; i++)
    if (!c->obj[i].reachable && !watched(c, i)) {
      /* Recycle an unreachable record: nothing reachable points to it. */
      for (int j = 0; j < MAX_OBJ; j++)
        for (uint32_t f = 0; f < c->obj[j].nf; f++)
          if (c->obj[j].used && !c->obj[j].reachable && c->obj[j].child[f] == i) c->obj[j].child[f] = NONE;
      c->obj[i].used = false;
      return i;
    }
  return NONE;
}

/* A reachable record chosen by the next byte, or NONE. */
static int pick(struct ctx *c) {
  unsigned n = 0, k = byte(c);
  for (int i = 0; i < MAX_OBJ; i++) n += c->obj[i].used && c->obj[i].reachable;
  if (!n) return NONE;
  k %= n;
  for (int i = 0; i < MAX_OBJ; i++)
    if (c->obj[i].used && c->obj[i].reachable && k-- == 0) return i;
  return NONE;
}

static unsigned refs_to(struct ctx *c, int i) {
  unsigned n = 0;
  for (int r = 0; r < ROOTS; r++) n += c->root[r] == i;
  for (int j = 0; j < MAX_OBJ; j++)
    if (c->obj[j].used && c->obj[j].reachable)
      for (uint32_t f = 0; f < c->obj[j].nf; f++) n += c->obj[j].child[f] == i;
  return n;
}

/* ---- checks ---------------------------------------------------------------- */

MODEL static void check_obj(struct ctx *c, int i) {
  struct obj *o = &c->obj[i];
  unsigned char *p = unhide(o->addr);
  void *base = gc_base(p);
  if (tiny_atomic(o) ? base == NULL : base != p) fail(c->name, "reachable object is not live", i, o->size);
  if (!tiny_atomic(o) && gc_size(p) < o->size) fail(c->name, "gc_size below the request", gc_size(p), o->size);
  uint32_t bad = check_data(o, p, o->size);
  if (bad != o->size) fail(c->name, "data byte changed (record, byte)", i, bad);
  for (uint32_t w = 0; scanned(o) && w < o->size / 8; w++) {
    if (!ptr_word(o, w)) continue;
    void *want = NULL;
    for (uint32_t f = 0; f < o->nf; f++)
      if (o->field_word[f] == w && o->child[f] != NONE) want = unhide(c->obj[o->child[f]].addr);
    if (((void **)p)[w] != want) fail(c->name, "pointer field differs (record, word)", i, w);
  }
}

#if FUZZ_LIFETIME
static void check_weak(struct ctx *c, int w) {
  gc_weak *h = c->ra->weaks[w];
  if (!h) return;
  void *got = gc_weak_get(h);
  int t = c->weak[w].target;
  if (t == NONE) {
    if (got) fail(c->name, "weak reference to NULL reads non-NULL", w, 0);
    return;
  }
  struct obj *o = &c->obj[t];
  void *want = (char *)unhide(o->addr) + c->weak[w].interior;
  if (o->reachable && got != want) fail(c->name, "weak reference to a reachable object reads wrong/NULL", w, got != NULL);
  if (!o->reachable && got && got != want) fail(c->name, "weak reference reads another object", w, 0);
  if (!o->reachable && got && check_data(o, unhide(o->addr), o->size) != o->size)
    fail(c->name, "weak reference reads a damaged object", w, t);
}

static void check_eph(struct ctx *c, int e) {
  gc_ephemeron *h = c->ra->ephs[e];
  if (!h) return;
  void *k = gc_ephemeron_key(h), *v = gc_ephemeron_value(h);
  struct obj *ko = &c->obj[c->eph[e].key];
  void *wk = unhide(ko->addr);
  void *wv = c->eph[e].value == NONE ? NULL : unhide(c->obj[c->eph[e].value].addr);
  if (ko->reachable && (k != wk || v != wv)) fail(c->name, "ephemeron with a reachable key lost key or value", e, k == wk);
  if (!ko->reachable && (k ? k != wk || v != wv : v != NULL))
    fail(c->name, "ephemeron with a dropped key reads a wrong key or value", e, k == NULL);
}
#endif

static void check_all(struct ctx *c) {
  for (int i = 0; i < MAX_OBJ; i++)
    if (c->obj[i].used && c->obj[i].reachable) check_obj(c, i);
#if FUZZ_LIFETIME
  for (int w = 0; w < WEAKS; w++) check_weak(c, w);
  for (int e = 0; e < EPHS; e++) check_eph(c, e);
#endif
}

/* ---- operations ------------------------------------------------------------ */

static uint32_t size_arg(struct ctx *c) {
  unsigned b = byte(c);
  switch (b >> 6) {
  case 0: return b & 63 ? b & 63 : 1 + (byte(c) & 15);        /* small and tiny */
  case 1: return 64 + u16(c) % 960;                           /* up to 1 KiB */
  case 2: return 1024 + u16(c) * 2 % (32 * 1024);              /* up to 33 KiB */
  default: return byte(c) < 32 ? 32 * 1024 + u16(c) * 2 % LARGE_MAX : 1 + (b & 63); /* large, rarely */
  }
}

/* Hang a fresh object into a root slot (or, now and then, a field). */
static void op_alloc(struct ctx *c, unsigned op) {
  int i = new_record(c);
  unsigned r = byte(c) % ROOTS;
  uint32_t size = size_arg(c);
  unsigned nscan = byte(c);
  if (i == NONE) return;
  struct obj *o = &c->obj[i];
  memset(o, 0, sizeof(*o));
  o->seed = mix((uint64_t)(uintptr_t)c ^ c->pos ^ (uint64_t)c->ops << 32);
  void *p = NULL;
  if (!with_typed && op % 6 >= 3) op = 0;
  switch (op % 6) {
  case 0: o->kind = K_SCAN; o->size = size; p = gc_alloc(size); break;
  case 1: o->kind = K_ATOMIC; o->size = size; p = gc_alloc_atomic(size); break;
  case 2: {
    o->kind = K_STR;
    o->size = 1 + size % 200;
    char s[256];
    for (uint32_t k = 0; k < o->size; k++) s[k] = (char)str_byte(o, k);
    p = gc_strdup(s);
    if (p && strcmp(p, s) != 0) fail(c->name, "gc_strdup copy differs", o->size, 0);
    break;
  }
  case 3: o->kind = K_PAIR; o->size = PAIR_SIZE * (1 + size % 64); p = gc_alloc_typed(o->size, type_pair); break;
  case 4: o->kind = K_BITMAP; o->size = BITMAP_SIZE * (1 + size % 16); p = gc_alloc_typed(o->size, type_bitmap); break;
  default: o->kind = K_TRACED; o->size = 8 * (1 + size % 64); p = gc_alloc_typed(o->size, type_traced); break;
  }
  if (!p) fail(c->name, "allocation failed (kind, size)", o->kind, o->size);
  layout(o, nscan % (MAX_FIELDS + 3));
  for (uint32_t f = 0; f < MAX_FIELDS; f++) o->child[f] = NONE;
  if (scanned(o)) {
    /* Zeroed on allocation: check before filling. */
    for (uint32_t k = 0; k < o->size; k++)
      if (((unsigned char *)p)[k]) fail(c->name, "scanned allocation not zeroed (size, byte)", o->size, k);
  }
  fill_data(o, p);
  o->addr = hide(p);
  o->used = true;
  c->root[r] = i;
  model_update(c);
  c->ra->roots[r] = p;   /* the root area is not heap memory: no barrier */
  check_obj(c, i);
}

/* GC_WRITE a reachable object (or NULL) into a field of a reachable one. */
static void op_store(struct ctx *c) {
  int a = pick(c), b = byte(c) % 5 ? pick(c) : NONE;
  unsigned f = byte(c);
  if (a == NONE || !c->obj[a].nf) return;
  struct obj *o = &c->obj[a];
  f %= o->nf;
  o->child[f] = b;
  model_update(c);
  void **slot = (void **)unhide(o->addr) + o->field_word[f];
  GC_WRITE(slot, b == NONE ? NULL : unhide(c->obj[b].addr));
}

/* gc_copy_pointers between the field runs of two conservative objects. */
static void op_copy(struct ctx *c) {
  int a = pick(c), b = pick(c);
  unsigned fa = byte(c), fb = byte(c), k = byte(c);
  if (a == NONE || b == NONE) return;
  struct obj *x = &c->obj[a], *y = &c->obj[b];
  if (x->kind != K_SCAN || y->kind != K_SCAN || !x->nf || !y->nf) return;
  fa %= x->nf;
  fb %= y->nf;
  unsigned room = x->nf - fa < y->nf - fb ? x->nf - fa : y->nf - fb;
  k = 1 + k % room;
  memmove(&x->child[fa], &y->child[fb], k * sizeof(int));
  model_update(c);
  gc_copy_pointers((void **)unhide(x->addr) + fa, (void **)unhide(y->addr) + fb, k);
}

/* Roots: drop one, copy a reachable object into one, load a field. */
static void op_root(struct ctx *c, unsigned how) {
  unsigned r = byte(c) % ROOTS;
  int t = NONE;
  if (how == 1) t = pick(c);
  if (how == 2) {
    int a = pick(c);
    unsigned f = byte(c);
    if (a == NONE || !c->obj[a].nf) return;
    t = c->obj[a].child[f % c->obj[a].nf];
    void *v = ((void **)unhide(c->obj[a].addr))[c->obj[a].field_word[f % c->obj[a].nf]];
    if (v != (t == NONE ? NULL : unhide(c->obj[t].addr))) fail(c->name, "loaded field differs", a, f);
  }
  c->root[r] = t;
  model_update(c);
  c->ra->roots[r] = t == NONE ? NULL : unhide(c->obj[t].addr);
}

/* A root-only object that nothing watches: gc_realloc or gc_free may
 * release it. */
static int private_root(struct ctx *c, unsigned r) {
  int i = c->root[r];
  if (i == NONE || refs_to(c, i) != 1 || watched(c, i)) return NONE;
  return i;
}

static void op_realloc(struct ctx *c) {
  unsigned r = byte(c) % ROOTS;
  uint32_t size = size_arg(c);
  int i = private_root(c, r);
  if (i == NONE || c->obj[i].kind == K_STR || c->obj[i].fin) return;
  struct obj *o = &c->obj[i], old = *o;
  if (o->kind == K_PAIR) size = PAIR_SIZE * (1 + size % 64);
  if (o->kind == K_BITMAP) size = BITMAP_SIZE * (1 + size % 16);
  if (o->kind == K_TRACED) return; /* its count word would outgrow the object */
  /* The model first: fields past the new size are dropped. */
  o->size = size;
  layout(o, old.nptr);
  for (uint32_t f = 0; f < MAX_FIELDS; f++) {
    o->child[f] = NONE;
    for (uint32_t g = 0; g < old.nf; g++)
      if (f < o->nf && old.field_word[g] == o->field_word[f]) o->child[f] = old.child[g];
  }
  model_update(c);
  unsigned char *p = gc_realloc(unhide(old.addr), size);
  if (!p) fail(c->name, "gc_realloc failed (size)", size, 0);
  o->addr = hide(p);
  c->ra->roots[r] = p;
  uint32_t keep = size < old.size ? size : old.size;
  if (check_data(&old, p, keep) != keep) fail(c->name, "gc_realloc lost data (record, byte)", i, check_data(&old, p, keep));
  for (uint32_t f = 0; f < o->nf; f++) {
    void *want = o->child[f] == NONE ? NULL : unhide(c->obj[o->child[f]].addr);
    if (((void **)p)[o->field_word[f]] != want) fail(c->name, "gc_realloc lost a pointer (record, word)", i, o->field_word[f]);
  }
  if (scanned(o)) /* the new tail of a scanned object is zeroed */
    for (uint32_t k = old.size; k < size; k++)
      if (p[k]) fail(c->name, "gc_realloc's new tail not zeroed (record, byte)", i, k);
  o->seed = mix(o->seed + 1);
  fill_data(o, p);
  check_obj(c, i);
}

static void op_free(struct ctx *c) {
  unsigned r = byte(c) % ROOTS;
  int i = private_root(c, r);
  if (i == NONE) return;
  struct obj *o = &c->obj[i];
  void *p = unhide(o->addr);
  if (o->fin) {
    fin_set_state(o->fin, FIN_REACHABLE, FIN_FREED);
    o->fin = NULL;
  }
  c->root[r] = NONE;
  model_update(c);
  c->ra->roots[r] = NULL;
  o->used = false;
  gc_free(p);
}

/* New data in a reachable object (plain stores: data words only). */
static void op_write(struct ctx *c) {
  int i = pick(c);
  if (i == NONE || c->obj[i].kind == K_STR) return;
  struct obj *o = &c->obj[i];
  o->seed = mix(o->seed ^ 0x5bd1e995);
  fill_data(o, unhide(o->addr));
  if (o->fin) o->fin->shape.seed = o->seed;
}

static void op_ask(struct ctx *c) {
  int i = pick(c);
  unsigned off = u16(c);
  if (i == NONE || tiny_atomic(&c->obj[i])) return;
  struct obj *o = &c->obj[i];
  char *p = unhide(o->addr);
  if (gc_base(p + off % o->size) != p) fail(c->name, "gc_base of an interior pointer (record, offset)", i, off % o->size);
  if (gc_size(p) < o->size) fail(c->name, "gc_size below the request", i, o->size);
}

/* Unreferenced allocations of every kind, some freed at once. */
static void op_garbage(struct ctx *c) {
  unsigned n = 1 + byte(c) % GARBAGE_BURST;
  uint32_t size = size_arg(c);
  for (unsigned k = 0; k < n; k++) {
    void *volatile g;
    switch (k % 4) {
    case 0: g = gc_alloc(size); break;
    case 1: g = gc_alloc_atomic(size); break;
    case 2: g = with_typed ? gc_alloc_typed(PAIR_SIZE * (1 + size % 8), type_pair) : gc_alloc(size); break;
    default: g = with_typed ? gc_alloc_typed(BITMAP_SIZE, type_bitmap) : gc_alloc(size); break;
    }
    if (!g) fail(c->name, "garbage allocation failed", size, k);
    if (k % 3 == 0) gc_free(g);
  }
}

/* gc_collect within the input's budget, every fourth time as
 * gc_release_memory (the pages it releases come back zeroed, and the
 * checks see whether anything live went with them); the checks in any
 * case. */
static void collect(void) {
  int left = atomic_fetch_sub(&collects_left, 1);
  if (left <= 0) return;
  if (left % 4 == 0) gc_release_memory();
  else gc_collect();
}

static void op_collect(struct ctx *c) {
  collect();
  check_all(c);
}

static const int percents[] = {100, 10, 50, 200, 1, -1, 400, 25};

static void op_percent(struct ctx *c) { gc_set_percent(percents[byte(c) % 8]); }

/* ---- lifetime: weak references, finalizers, ephemerons ------------------------ */

#if FUZZ_LIFETIME
static void op_weak(struct ctx *c) {
  unsigned w = byte(c) % WEAKS, how = byte(c);
  if (how % 4 == 0) {  /* drop the reference */
    c->ra->weaks[w] = NULL;
    return;
  }
  if (how % 4 == 1) {
    check_weak(c, w);
    return;
  }
  int t = how % 4 == 2 ? pick(c) : NONE;
  uintptr_t off = 0;
  if (t != NONE && !tiny_atomic(&c->obj[t]) && how & 0x80) off = byte(c) % c->obj[t].size;
  gc_weak *h = gc_weak_new(t == NONE ? NULL : (char *)unhide(c->obj[t].addr) + off);
  if (!h) fail(c->name, "gc_weak_new failed", w, 0);
  c->weak[w].target = t;
  c->weak[w].interior = off;
  c->ra->weaks[w] = h;
  check_weak(c, w);
}

static struct finrec *fin_take(void) {
  struct finrec *f = NULL;
  pthread_mutex_lock(&fin_lock);
  for (int i = 0; i < FIN_POOL && !f; i++) {
    int s = atomic_load(&fin_pool[i].state);
    if (s == FIN_FREE || s == FIN_RAN || s == FIN_FREED || s == FIN_REMOVED) {
      f = &fin_pool[i];
      atomic_store(&f->state, FIN_REACHABLE);
    }
  }
  pthread_mutex_unlock(&fin_lock);
  return f;
}

/* Runs on mgc's finalizer thread. */
static void finalizer(void *objp, void *data) {
  struct finrec *f = data;
  int s = atomic_load(&f->state);
  if (objp != unhide(f->addr)) fail("finalizer", "ran for another object", s, 0);
  if (atomic_fetch_add(&f->runs, 1) != 0) fail("finalizer", "ran twice", s, 0);
  if (s == FIN_REACHABLE) fail("finalizer", "ran for a reachable object", 0, 0);
  if (s == FIN_FREED) fail("finalizer", "ran after gc_free", 0, 0);
  if (s == FIN_REMOVED) fail("finalizer", "ran after it was removed", 0, 0);
  if (s != FIN_DROPPED) fail("finalizer", "ran in an unexpected state", s, 0);
  if (check_data(&f->shape, objp, f->shape.size) != f->shape.size) fail("finalizer", "object damaged", f->shape.size, 0);
  atomic_store(&f->state, FIN_RAN);
}

static void op_finalizer(struct ctx *c) {
  int i = pick(c);
  unsigned how = byte(c);
  if (i == NONE || tiny_atomic(&c->obj[i])) return;
  struct obj *o = &c->obj[i];
  if (how % 4 == 0) { /* remove */
    if (!o->fin) return;
    fin_set_state(o->fin, FIN_REACHABLE, FIN_REMOVED);
    /* The record may be taken again only after gc_set_finalizer returned. */
    struct finrec *f = o->fin;
    o->fin = NULL;
    int rc = gc_set_finalizer(unhide(o->addr), NULL, NULL);
    if (rc) fail(c->name, "gc_set_finalizer(NULL) failed", rc, 0);
    (void)f;
    return;
  }
  if (o->fin) return; /* one finalizer each: replacement is not modelled */
  struct finrec *f = fin_take();
  if (!f) return;
  atomic_store(&f->runs, 0);
  f->addr = o->addr;
  f->shape = *o;
  o->fin = f;
  int rc = gc_set_finalizer(unhide(o->addr), finalizer, f);
  if (rc) fail(c->name, "gc_set_finalizer failed (rc, size)", rc, o->size);
}

static void op_wait_finalizers(struct ctx *c) {
  collect();
  gc_wait_finalizers();
  check_all(c);
}

static void op_eph(struct ctx *c) {
  unsigned e = byte(c) % EPHS, how = byte(c);
  if (how % 3 == 0) { /* drop it: the model first, as for every drop */
    c->eph[e].key = c->eph[e].value = NONE;
    model_update(c);
    c->ra->ephs[e] = NULL;
    return;
  }
  if (how % 3 == 1) {
    check_eph(c, e);
    return;
  }
  int k = pick(c), v = byte(c) % 4 ? pick(c) : NONE;
  if (k == NONE) return;
  /* Dropping the old ephemeron may drop objects: the model first. */
  c->eph[e].key = c->eph[e].value = NONE;
  model_update(c);
  c->ra->ephs[e] = NULL;
  gc_ephemeron *h = gc_ephemeron_new(unhide(c->obj[k].addr), v == NONE ? NULL : unhide(c->obj[v].addr));
  if (!h) fail(c->name, "gc_ephemeron_new failed", e, 0);
  c->eph[e].key = k;
  c->eph[e].value = v;
  c->ra->ephs[e] = h;
  model_update(c);
  check_eph(c, e);
}
#endif

/* ---- programs and threads --------------------------------------------------- */

static void run(struct ctx *c);

static void *worker_main(void *arg) {
  run(arg);
  return NULL;
}

static void ctx_clear(struct ctx *c) {
  for (int i = 0; i < ROOTS; i++) c->root[i] = NONE;
  for (int e = 0; e < EPHS; e++) c->eph[e].key = c->eph[e].value = NONE;
  for (int w = 0; w < WEAKS; w++) c->weak[w].target = NONE;
  model_update(c);
  memset(c->ra, 0, sizeof(*c->ra));
  memset(c->obj, 0, sizeof(c->obj));
}

static void worker_join(void) {
  if (!worker_running) return;
  pthread_join(worker, NULL);
  worker_running = false;
  check_all(&worker_ctx);
  ctx_clear(&worker_ctx);
}

/* Main program only: the next bytes are the worker's program. */
static void op_thread(struct ctx *c) {
  unsigned n = byte(c);
  worker_join();
  if (c->pos + n > c->len) n = (unsigned)(c->len - c->pos);
  if (!n) return;
  worker_ctx.in = c->in + c->pos;
  worker_ctx.len = n;
  worker_ctx.pos = 0;
  worker_ctx.ops = 0;
  c->pos += n;
  if (gc_pthread_create(&worker, NULL, worker_main, &worker_ctx) != 0) fail(c->name, "gc_pthread_create failed", 0, 0);
  worker_running = true;
}

static void step(struct ctx *c) {
  unsigned op = byte(c);
  switch (op % 24) {
  case 0: case 1: case 2: case 3: case 4: case 5: op_alloc(c, byte(c)); break;
  case 6: case 7: op_store(c); break;
  case 8: op_copy(c); break;
  case 9: op_root(c, 0); break;
  case 10: op_root(c, 1); break;
  case 11: op_root(c, 2); break;
  case 12: op_realloc(c); break;
  case 13: op_free(c); break;
  case 14: op_write(c); break;
  case 15: op_ask(c); break;
  case 16: op_garbage(c); break;
  case 17: op_collect(c); break;
  case 18: op_percent(c); break;
  case 19:
    if (c == &main_ctx) op_thread(c);
    else if (c->ops % 2) collect();
    break;
#if FUZZ_LIFETIME
  case 20: op_weak(c); break;
  case 21: op_finalizer(c); break;
  case 22: op_eph(c); break;
  case 23: if (op & 0x80) op_wait_finalizers(c); else if (c == &main_ctx) worker_join(); break;
#else
  case 23: if (c == &main_ctx) worker_join(); break;
#endif
  default: break;
  }
}

static void run(struct ctx *c) {
  while (c->pos < c->len && c->ops < MAX_OPS) {
    step(c);
    c->ops++;
  }
}

/* ---- libFuzzer entry points ------------------------------------------------ */

static void trace_traced(void *obj, size_t size, gc_visit_fn visit, void *vctx) {
  void **w = obj;
  uint64_t n = *(volatile uint64_t *)obj;
  if (n > size / 8 - 1) n = size / 8 - 1;  /* a count not written yet reads 0 */
  for (uint64_t k = 1; k <= n; k++) visit(&w[k], vctx);
}

static void ctx_init(struct ctx *c, const char *name) {
  c->name = name;
  c->ra = calloc(1, sizeof(*c->ra));
  if (!c->ra || gc_add_roots(c->ra, sizeof(*c->ra)) != 0) fail(name, "root area", 0, 0);
  ctx_clear(c);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  gc_init();
  const char *typed = getenv("MGC_FUZZ_TYPED");
  with_typed = !(typed && strcmp(typed, "0") == 0);
  size_t pair_offs[] = {8};
  uint64_t bitmap = 1u << 0 | 1u << 2 | 1u << 3;
  type_pair = gc_type_new(PAIR_SIZE, pair_offs, 1);
  type_bitmap = gc_type_new_bitmap(BITMAP_SIZE, &bitmap);
  type_traced = gc_type_new_traced(trace_traced);
  if (!type_pair || !type_bitmap || !type_traced) fail("init", "gc_type_new failed", 0, 0);
  ctx_init(&main_ctx, "main");
  ctx_init(&worker_ctx, "worker");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  main_ctx.in = data;
  main_ctx.len = size;
  main_ctx.pos = 0;
  main_ctx.ops = 0;
  atomic_store(&collects_left, COLLECTS_PER_INPUT);
  run(&main_ctx);
  worker_join();
  check_all(&main_ctx);
  ctx_clear(&main_ctx);
  gc_set_percent(100);
  /* With MGC_VERIFY=1: no object may have been missed by a concurrent mark
   * (the program stores every heap pointer with GC_WRITE). */
  struct gc_stats st;
  memset(&st, 0, sizeof(st));
  st.size = sizeof(st);
  if (gc_get_stats(&st) == 0 && st.verify_misses) fail("main", "MGC_VERIFY found missed objects", st.verify_misses, 0);
  return 0;
}
