/*
 * mgc.h: the public interface of mgc, a garbage-collected heap for C.
 *
 * Allocate with gc_alloc() and never free: objects that the program can no
 * longer reach (from thread stacks and registers, global data, explicit roots
 * and other reachable objects) are reclaimed by the collector.  gc_free() is
 * an optional early release.
 *
 * Thread rules: every thread that touches the heap or holds heap pointers
 * must be registered.  gc_init() registers the calling thread, threads started
 * with gc_pthread_create() are registered for their whole life, and any other
 * thread calls gc_thread_register() (a thread that allocates without it is
 * registered on its first allocation).  See docs/api.md for each function's
 * contract.
 */
#ifndef MGC_H
#define MGC_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GC_API __attribute__((visibility("default")))
#define GC_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define GC_API
#define GC_MALLOC_ATTR
#endif

#define MGC_VERSION_MAJOR 0
#define MGC_VERSION_MINOR 1

/* ---- start ------------------------------------------------------------ */

/* Initialise the heap (reading the MGC_* environment variables) and register
 * the calling thread.  Idempotent and thread-safe; every other entry point
 * calls it on first use, so calling it explicitly only fixes the moment. */
GC_API void gc_init(void);

/* ---- allocate --------------------------------------------------------- */

/* n bytes, zeroed, scanned conservatively: any aligned word that points into
 * a heap object keeps that object alive.  Returns NULL with errno ENOMEM when
 * the heap cannot grow.  gc_alloc(0) returns a unique minimal object. */
GC_API void *gc_alloc(size_t n) GC_MALLOC_ATTR;

/* n bytes that hold no heap pointers: never scanned, and (like malloc) not
 * guaranteed to be zeroed.  Objects of at most 16 bytes are packed together
 * by the tiny allocator; gc_free() leaves those to the collector. */
GC_API void *gc_alloc_atomic(size_t n) GC_MALLOC_ATTR;

/* Resize p (NULL: allocate) keeping its kind (scanned or atomic) and
 * contents up to the smaller size; the new tail of a scanned object is
 * zeroed.  gc_realloc(p, 0) frees p and returns NULL.  On failure returns
 * NULL and leaves p untouched. */
GC_API void *gc_realloc(void *p, size_t n);

/* A copy of the C string s in an atomic object.  NULL (with a report on
 * stderr and errno EINVAL) for s == NULL, or with errno ENOMEM. */
GC_API char *gc_strdup(const char *s) GC_MALLOC_ATTR;

/* Release p now instead of waiting for the collector.  p must be the start
 * of a live object returned by an mgc allocation function; anything else
 * (a foreign pointer, an interior pointer, a second free) is reported on
 * stderr and ignored.  gc_free(NULL) does nothing. */
GC_API void gc_free(void *p);

/* ---- types: precise scanning ------------------------------------------- */

/* A type describes where the pointers are in an object, so the collector
 * scans it precisely: only those words are read as pointers.  Types are
 * immortal; create them once. */
typedef struct gc_type gc_type;
/* Called by the collector (on one of its threads, possibly while the
 * program runs) for every pointer slot of a traced object. */
typedef void (*gc_visit_fn)(void **slot, void *ctx);
/* Visit every pointer slot of obj (size usable bytes).  Runs concurrently
 * with the program: read each slot once, and tolerate seeing either its
 * old or its new value. */
typedef void (*gc_trace_fn)(void *obj, size_t size, gc_visit_fn visit, void *ctx);

/* An element of `size` bytes whose pointer words start at the byte offsets
 * given (each a multiple of sizeof(void *) and below size).  NULL, with a
 * report on stderr, for a bad layout. */
GC_API const gc_type *gc_type_new(size_t size, const size_t *pointer_offsets, size_t count);
/* The same from a bitmap: bit i (of word i / 64, bit i % 64) set means
 * word i of the element holds a pointer; the bitmap covers size / 8 bits. */
GC_API const gc_type *gc_type_new_bitmap(size_t size, const uint64_t *bitmap);
/* Objects whose pointers a callback finds (tagged unions, variable
 * layouts). */
GC_API const gc_type *gc_type_new_traced(gc_trace_fn trace);

/* n bytes, zeroed, of the given type.  If n is larger than the type's
 * size, the object is an array of n / size elements (a vector of tagged
 * values, say), each scanned with the type's layout; a traced type's
 * callback gets the whole object.  gc_size, gc_base, gc_free and
 * gc_realloc (which keeps the type) work on it as on any object.  Typed
 * objects are 8-byte aligned.  NULL with errno EINVAL (and a report on
 * stderr) for a type not made by gc_type_new*, or with errno ENOMEM. */
GC_API void *gc_alloc_typed(size_t n, const gc_type *type) GC_MALLOC_ATTR;

/* ---- ask ---------------------------------------------------------------- */

/* Usable size of the object that starts at p (at least what was asked for),
 * or 0 when p is not the start of a live mgc object.  For a packed atomic
 * object of 16 bytes or less, the room from p to the end of its 16-byte
 * block, which later tiny objects may share: write only what you asked
 * for. */
GC_API size_t gc_size(const void *p);

/* Start of the live object that contains the address p (an interior pointer
 * is fine), or NULL when p is not inside an mgc object.  For packed atomic
 * objects of 16 bytes or less, the start of their shared 16-byte block. */
GC_API void *gc_base(const void *p);

/* ---- write barrier ------------------------------------------------------ */

/* Nonzero while the collector marks concurrently.  Read by GC_WRITE; never
 * write it. */
GC_API extern volatile int gc_barrier_on;
GC_API void gc_barrier_record(void *old_value);

/* Store `value` into the pointer field at address `slot` of a heap object:
 *     GC_WRITE(&node->next, other);
 * Every store of a pointer into a heap object must use it while the
 * concurrent collector may run (MGC_CONCURRENT=1, the default); stores into
 * stack variables and globals need not.  With marking off it costs the
 * load of the old value (from the cache line the store needs anyway) and
 * two loads of gc_barrier_on with well-predicted branches.
 *
 * Why the flag is tested on both sides of the store: the world is stopped
 * by a signal, which can land between any two instructions.  The test
 * before the store records the old value if marking is on (a stop before
 * the store then finds it in the buffer); the test after it catches
 * marking that started while this thread stood between the first test and
 * the store (the old value was then in a register, a root, at the start). */
#define GC_WRITE(slot, value)                                   \
  do {                                                          \
    __typeof__(slot) gc_write_slot_ = (slot);                   \
    void *gc_write_old_ = (void *)*gc_write_slot_;              \
    int gc_write_on_ = gc_barrier_on;                           \
    if (__builtin_expect(gc_write_on_, 0))                      \
      gc_barrier_record(gc_write_old_);                         \
    __asm__ __volatile__("" ::: "memory");                      \
    *gc_write_slot_ = (value);                                  \
    __asm__ __volatile__("" ::: "memory");                      \
    if (__builtin_expect(!gc_write_on_ && gc_barrier_on, 0))    \
      gc_barrier_record(gc_write_old_);                         \
  } while (0)

/* Copy nwords pointer-sized words from src into the existing heap object
 * at dst (memmove semantics), with the write barrier applied to every
 * overwritten word. */
GC_API void gc_copy_pointers(void *dst, const void *src, size_t nwords);

/* ---- collect ------------------------------------------------------------ */

/* Run a full collection now and return when it is done: marked, and the
 * whole heap swept, so everything found unreachable is free (and queued
 * for its finalizer, see gc_wait_finalizers). */
GC_API void gc_collect(void);

/* GOGC: the heap may grow to live * (1 + percent / 100) before the next
 * collection.  Negative turns automatic collection off; values over
 * 1000000 are taken as 1000000.  Returns the old value.  MGC_GOGC sets it
 * at start-up (default 100). */
GC_API int gc_set_percent(int percent);

/* Soft limit on the memory the heap holds (bytes; MGC_MEMLIMIT sets it at
 * start-up).  Near the limit the collector runs more often, but never
 * takes more than about half of the CPU, so a program that truly needs more
 * grows past the limit rather than stalling.  SIZE_MAX removes the limit.
 * Returns the old limit. */
GC_API size_t gc_set_memory_limit(size_t bytes);

/* Run a full collection (as gc_collect) and give every free page of the
 * heap back to the OS now, rather than once it has been free for a few
 * seconds: for a program that has just dropped much of its heap and will
 * not need it again soon (Go's debug.FreeOSMemory).  Pages still count in
 * heap_sys and show as heap_released.  The calling thread gives back the
 * spans it keeps for its next allocations; other threads keep theirs, and
 * on kernels with pages over 8 KiB the kernel pages that free runs share
 * with live objects stay.  Returns the bytes released by this call. */
GC_API size_t gc_release_memory(void);

/* Stop / resume automatic collection.  Calls nest: collection resumes
 * after as many gc_enable as gc_disable.  gc_collect still collects. */
GC_API void gc_disable(void);
GC_API void gc_enable(void);

/* ---- roots -------------------------------------------------------------- */

/* Scan [start, start + len) conservatively at every collection: memory the
 * collector would not otherwise see (malloc'd blocks, mmap'd regions)
 * holding pointers to heap objects.  Returns 0, ENOMEM, or EINVAL (with a
 * report on stderr) for a range that wraps around the address space. */
GC_API int gc_add_roots(void *start, size_t len);
/* Stop scanning every part of [start, start + len) added before. */
GC_API void gc_remove_roots(void *start, size_t len);

/* ---- lifetime: finalizers, weak references, ephemerons ----------------- */

/* A finalizer: fn(obj, data) runs once, on mgc's finalizer thread (a
 * registered thread, never the collector and never with the world
 * stopped), after the collector has found obj unreachable.  obj and
 * everything it reaches stay alive until fn has run; obj is freed by a
 * later cycle unless fn made it reachable again (fn may call
 * gc_set_finalizer(obj, ...) to be called again).
 *
 * Order: while obj waits for its finalizer, what it points to is kept
 * alive, so when A points to B and both have finalizers, A's runs first
 * and B's in a later cycle.  A cycle of objects with finalizers is never
 * collected (each keeps the next alive); break such cycles by hand.
 * data is held as a strong reference (it may be a heap object).
 *
 * obj must be the start of an object from gc_alloc, gc_alloc_typed or an
 * atomic allocation of more than 16 bytes (smaller atomic objects share
 * blocks and cannot be finalized on their own).  One finalizer per
 * object: setting another replaces it; fn == NULL removes it.  gc_free of
 * obj drops its finalizer without running it.  Returns 0, or EINVAL (bad
 * obj, reported on stderr) or ENOMEM. */
typedef void (*gc_finalizer_fn)(void *obj, void *data);
GC_API int gc_set_finalizer(void *obj, gc_finalizer_fn fn, void *data);

/* Wait until every finalizer queued so far has run.  gc_collect() then
 * gc_wait_finalizers() runs the finalizers of everything unreachable at
 * the time of the call.  Must not be called from a finalizer. */
GC_API void gc_wait_finalizers(void);

/* A weak reference: a small heap object (collected like any other when the
 * program drops it) naming obj without keeping it alive.  gc_weak_get
 * returns obj while obj is alive, and NULL from the end of the first
 * collection that finds obj unreachable.  obj may be an interior pointer
 * (the object containing it is the one watched); a pointer outside the
 * heap is never cleared.  obj == NULL makes a reference that reads NULL.
 * Returns NULL with errno ENOMEM when out of memory.  Do not gc_free an
 * object that weak references name. */
typedef struct gc_weak gc_weak;
GC_API gc_weak *gc_weak_new(void *obj);
GC_API void *gc_weak_get(const gc_weak *w);

/* An ephemeron: a heap object pairing key with value, where value is kept
 * alive only while key is reachable from outside the ephemeron (a value
 * that points back to its key does not keep the key alive).  When the
 * collector finds key unreachable, both read NULL from then on.  The
 * building block for weak-keyed tables (store ephemerons in a vector).
 * Returns NULL with errno ENOMEM when out of memory. */
typedef struct gc_ephemeron gc_ephemeron;
GC_API gc_ephemeron *gc_ephemeron_new(void *key, void *value);
GC_API void *gc_ephemeron_key(const gc_ephemeron *e);
GC_API void *gc_ephemeron_value(const gc_ephemeron *e);

/* ---- out of memory ------------------------------------------------------ */

/* Called (on the allocating thread) when an allocation of `request` bytes
 * fails even after a full collection.  It may drop references to heap
 * data (clear a cache, say) and return: mgc then collects and retries the
 * allocation once more before returning NULL with errno ENOMEM.  It runs
 * as a normal registered thread holding no mgc lock; an allocation it
 * makes that fails returns NULL at once.  For objects of up to 32 KiB,
 * request is rounded up to the size class.  Returns the previous handler;
 * NULL removes it. */
typedef void (*gc_oom_fn)(size_t request);
GC_API gc_oom_fn gc_set_oom_handler(gc_oom_fn fn);

/* ---- observe ------------------------------------------------------------ */

#define GC_PAUSE_HISTORY 256
/* Capacity of gc_stats.by_size: the small-object size classes (this
 * version has 72; gc_stats.size_classes says how many entries are used).
 * Programs built when it was 68 still work: they get the first 68.  It
 * no longer changes: fields are appended after by_size. */
#define GC_SIZE_CLASSES 80

/* One size class of small objects (up to 32 KiB) in gc_stats.by_size.
 * Scanned, atomic and typed objects of the class are counted together. */
struct gc_size_class_stats {
  uint64_t size;               /* object size in bytes (requests are rounded up to it) */
  uint64_t alloc_objects;      /* objects of this size allocated since gc_init */
  uint64_t free_objects;       /* of which freed (gc_free or the collector) */
};

struct gc_stats {
  size_t size;                 /* set to sizeof(struct gc_stats) before the call */
  /* collections */
  uint64_t cycles;             /* completed collections */
  uint64_t forced_cycles;      /* of which gc_collect */
  uint64_t last_gc_ns;         /* end of the last collection, ns since gc_init */
  /* heap, bytes */
  uint64_t heap_live;          /* allocated objects (spans cached by threads count as full) */
  uint64_t heap_marked;        /* live after the last mark */
  uint64_t heap_goal;          /* the next collection aims to finish by this heap_live */
  uint64_t heap_in_use;        /* pages in in-use spans */
  uint64_t heap_sys;           /* obtained from the OS */
  uint64_t heap_released;      /* free pages given back to the OS */
  uint64_t metadata_sys;       /* span records and their bitmaps */
  uint64_t memory_limit;       /* soft limit, UINT64_MAX if none */
  /* allocation, cumulative */
  uint64_t total_alloc_bytes;  /* bytes of objects allocated (size-class rounded) */
  uint64_t total_alloc_objects;
  uint64_t total_free_objects; /* freed by gc_free or by the collector */
  /* pauses (stops of the world), nanoseconds */
  uint64_t pauses;             /* number of stops so far */
  uint64_t last_pause_ns;
  uint64_t total_pause_ns;
  uint64_t max_pause_ns;
  uint64_t pause_p50_ns;       /* median of the last GC_PAUSE_HISTORY stops */
  uint64_t pause_p99_ns;       /* 99th percentile of the same */
  uint64_t pause_ns[GC_PAUSE_HISTORY];  /* ring: stop k at [k % GC_PAUSE_HISTORY] */
  /* collector CPU, nanoseconds */
  uint64_t gc_cpu_ns;          /* all collector work: its threads and assists */
  uint64_t assist_cpu_ns;      /* of which mark assists by allocating threads */
  /* MGC_VERIFY */
  uint64_t verify_misses;      /* objects the concurrent mark missed, in all cycles */
  /* Appended after release 0.1.0, so that callers built against the
   * older, smaller struct keep working.  Semantics: docs/api.md#observe. */
  uint64_t total_free_bytes;   /* bytes of objects freed (size-class rounded) */
  uint64_t heap_alloc;         /* bytes in allocated objects: total_alloc_bytes - total_free_bytes */
  uint64_t heap_objects;       /* objects in use: total_alloc_objects - total_free_objects */
  uint64_t heap_idle;          /* heap_sys - heap_in_use: pages in free spans, released ones too */
  uint64_t heap_spans;         /* in-use spans: small-object spans, and one per large object */
  /* large objects (over 32 KiB, a span each), included in the totals */
  uint64_t large_alloc_objects;
  uint64_t large_alloc_bytes;  /* whole pages */
  uint64_t large_free_objects;
  uint64_t large_free_bytes;
  /* time */
  uint64_t uptime_ns;          /* since gc_init */
  uint64_t process_cpu_ns;     /* CPU time of the whole process since gc_init */
  double gc_cpu_fraction;      /* gc_cpu_ns / process_cpu_ns (of finished cycles) */
  /* small objects by size class, smallest first */
  uint64_t size_classes;       /* entries of by_size in use */
  struct gc_size_class_stats by_size[GC_SIZE_CLASSES];
  /* Appended after by_size (so GC_SIZE_CLASSES stays 80 from now on).
   * Mark assists: a thread that allocates while the collector marks
   * scans (or waits for the mark workers) in proportion; the time it is
   * held there adds to its latency like a pause, though no other thread
   * stops. */
  uint64_t assists;            /* assists that scanned or waited */
  uint64_t assist_wall_ns;     /* their total wall time */
  uint64_t assist_max_ns;      /* the longest single assist */
  /* ring: the longest assist of cycle k (counting from 1) at
   * [(k - 1) % GC_PAUSE_HISTORY]; 0 when the cycle had none */
  uint64_t cycle_assist_max_ns[GC_PAUSE_HISTORY];
  /* Free slots of the spans threads held in their caches at the end of
   * the last mark (counted in heap_live as allocated), added to
   * heap_goal: docs/tuning.md */
  uint64_t heap_goal_cache_slack;
};

/* Fill *stats (up to stats->size bytes, so a program built against an
 * older, smaller struct still works).  Returns 0, or EINVAL. */
GC_API int gc_get_stats(struct gc_stats *stats);

/* ---- threads ------------------------------------------------------------ */

/* Register / unregister the calling thread.  Registering twice is harmless;
 * a registered thread that exits without unregistering is unregistered by
 * its thread-exit destructor. */
GC_API void gc_thread_register(void);
GC_API void gc_thread_unregister(void);

/* pthread_create, with the new thread registered for its whole life. */
GC_API int gc_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
                             void *(*start)(void *), void *arg);

/* Bracket a call that may block for long (I/O, waiting on a lock or a
 * condition): the collector does not wait for the thread meanwhile, and
 * does not send it the stop signal, so calls the kernel does not restart
 * after a signal (nanosleep, poll, select) never fail with EINTR because
 * of mgc there.  Between the two, the thread must not touch heap objects
 * or create heap pointers.  Nests. */
GC_API void gc_blocking_begin(void);
GC_API void gc_blocking_end(void);

#ifdef __cplusplus
}
#endif

#endif /* MGC_H */
