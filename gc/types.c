/*
 * types.c: type descriptors and precise scanning (see types.h, mgc.h).
 *
 * A descriptor is immortal metadata: the element size and either a bitmap
 * of pointer words (one bit per word of an element) or a trace callback.
 * An object of n bytes of a bitmap type is n / size elements laid end to
 * end; the marker reads only the words whose bit is set, so an integer that
 * happens to look like a heap address never keeps anything alive.
 *
 * Descriptors are bump-allocated from metadata chunks under types_lock (a
 * leaf lock, taken by gc_type_new* and held across fork()).  A magic word
 * lets the marker detect a header overwritten by a buffer underrun and stop
 * loudly.
 */
#include "gc/types.h"

#include <pthread.h>
#include <string.h>

#include "runtime/atomics.h"
#include "runtime/os.h"
#include "runtime/throw.h"

#define TYPE_MAGIC 0x6d67632d74797065ull  /* "mgc-type" */
#define TYPES_CHUNK ((size_t)64 << 10)

struct gc_type {
  uint64_t magic;
  size_t size;             /* element size in bytes (0 for traced types) */
  gc_trace_fn trace;       /* or NULL: use the bitmap */
  bool ephemeron;          /* mgc's own weak pair (gc/ephemeron.c) */
  size_t nwords;           /* words per element */
  uint64_t bitmap[];       /* bit i: word i of an element is a pointer */
};

static pthread_mutex_t types_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *chunk;
static size_t chunk_left;

void types_fork_prepare(void) { pthread_mutex_lock(&types_lock); }
void types_fork_parent(void) { pthread_mutex_unlock(&types_lock); }
void types_after_fork_child(void) { pthread_mutex_init(&types_lock, NULL); }

static struct gc_type *type_alloc(size_t bitmap_words) {
  size_t bytes = MGC_ROUND_UP(sizeof(struct gc_type) + bitmap_words * sizeof(uint64_t), (size_t)16);
  if (bytes > TYPES_CHUNK) return NULL;
  pthread_mutex_lock(&types_lock);
  if (chunk_left < bytes) {
    chunk = os_alloc_metadata(TYPES_CHUNK);
    chunk_left = chunk ? TYPES_CHUNK : 0;
  }
  struct gc_type *t = NULL;
  if (chunk_left >= bytes) {
    t = (struct gc_type *)chunk;
    chunk += bytes;
    chunk_left -= bytes;
  }
  pthread_mutex_unlock(&types_lock);
  return t;
}

/* Element sizes above this are refused: a layout bitmap for them would be
 * bigger than the largest small object. */
#define TYPE_SIZE_MAX ((size_t)1 << 24)

static struct gc_type *new_bitmap_type(size_t size) {
  if (size == 0 || size % sizeof(void *) || size > TYPE_SIZE_MAX) {
    mgc_report("gc_type_new: element size %zu must be a nonzero multiple of %zu up to %zu; no type made",
               size, sizeof(void *), TYPE_SIZE_MAX);
    return NULL;
  }
  size_t nwords = size / sizeof(void *);
  struct gc_type *t = type_alloc((nwords + 63) / 64);
  if (!t) return NULL;
  t->size = size;
  t->nwords = nwords;
  return t;
}

GC_API const gc_type *gc_type_new(size_t size, const size_t *offsets, size_t count) {
  struct gc_type *t = new_bitmap_type(size);
  if (!t) return NULL;
  for (size_t i = 0; i < count; i++) {
    if (offsets[i] % sizeof(void *) || offsets[i] >= size) {
      mgc_report("gc_type_new: pointer offset %zu is not a multiple of %zu below the size %zu; no type made",
                 offsets[i], sizeof(void *), size);
      return NULL; /* the record stays unused: types are immortal */
    }
    size_t word = offsets[i] / sizeof(void *);
    t->bitmap[word / 64] |= (uint64_t)1 << (word % 64);
  }
  atomic_fence();
  t->magic = TYPE_MAGIC;
  return t;
}

GC_API const gc_type *gc_type_new_bitmap(size_t size, const uint64_t *bitmap) {
  struct gc_type *t = new_bitmap_type(size);
  if (!t) return NULL;
  memcpy(t->bitmap, bitmap, (t->nwords + 63) / 64 * sizeof(uint64_t));
  if (t->nwords % 64) t->bitmap[t->nwords / 64] &= ((uint64_t)1 << (t->nwords % 64)) - 1;
  atomic_fence();
  t->magic = TYPE_MAGIC;
  return t;
}

GC_API const gc_type *gc_type_new_traced(gc_trace_fn trace) {
  if (!trace) {
    mgc_report("gc_type_new_traced: NULL trace function; no type made");
    return NULL;
  }
  struct gc_type *t = type_alloc(0);
  if (!t) return NULL;
  t->trace = trace;
  atomic_fence();
  t->magic = TYPE_MAGIC;
  return t;
}

bool types_is_valid(const gc_type *t) { return t && t->magic == TYPE_MAGIC; }

const gc_type *types_new_ephemeron(size_t words) {
  struct gc_type *t = new_bitmap_type(words * sizeof(void *));
  if (!t) return NULL;
  t->bitmap[0] = ((uint64_t)1 << words) - 1;
  t->ephemeron = true;
  atomic_fence();
  t->magic = TYPE_MAGIC;
  return t;
}

bool types_is_ephemeron(const gc_type *t) { return t && t->ephemeron; }

struct visit_ctx {
  struct gcwork *w;
  types_mark_fn mark;
};

/* The slots of an object the collector scans while the program runs are
 * read as they are: a store racing with the read is one GC_WRITE has
 * already recorded the old value of (or one made by a store the snapshot
 * does not need), so either value is right.  Hence the scanning functions
 * here are hidden from ThreadSanitizer, as gc/mark.c's are (those also
 * from ASan, for reading stacks; typed objects are heap memory). */
MGC_NO_SANITIZE_THREAD static void visit_slot(void **slot, void *arg) {
  struct visit_ctx *ctx = arg;
  uintptr_t v = (uintptr_t)*(void *volatile *)slot;
  if (v) ctx->mark(ctx->w, v, (uintptr_t)slot);
}

MGC_NO_SANITIZE_THREAD void types_scan_object(struct gcwork *w, uintptr_t base, uintptr_t size, types_mark_fn mark,
                                              types_ephemeron_fn ephemeron) {
  /* Acquire: pairs with gc_alloc_typed's release store of the header, so a
   * header read here comes with the type it names fully written.  The
   * marker can reach an object that is being allocated (a conservative
   * word naming a slot of a span some thread allocates from). */
  const struct gc_type *t = (const struct gc_type *)atomic_load_acquire((const atomic_word *)base);
  if (!t) return; /* header not written yet: a fresh, zeroed object */
  if (t->magic != TYPE_MAGIC) mgc_throw("the header of a typed object was overwritten (write before its start?)");
  uintptr_t obj = base + TYPED_HEADER, usable = size - TYPED_HEADER;
  w->scanned_bytes += size;
  if (t->ephemeron && ephemeron) {
    ephemeron(w, obj, mark);
    return;
  }
  if (t->trace) {
    struct visit_ctx ctx = {w, mark};
    t->trace((void *)obj, usable, visit_slot, &ctx);
    return;
  }
  for (uintptr_t e = obj; e + t->size <= obj + usable; e += t->size) {
    for (size_t i = 0; i < (t->nwords + 63) / 64; i++) {
      uint64_t bits = t->bitmap[i];
      while (bits) {
        unsigned b = (unsigned)__builtin_ctzll(bits);
        bits &= bits - 1;
        uintptr_t slot = e + (i * 64 + b) * sizeof(void *);
        uintptr_t v = *(const volatile uintptr_t *)slot;
        if (v) mark(w, v, slot);
      }
    }
  }
}
