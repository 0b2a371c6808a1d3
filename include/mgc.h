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

/* A copy of the C string s in an atomic object. */
GC_API char *gc_strdup(const char *s) GC_MALLOC_ATTR;

/* Release p now instead of waiting for the collector.  p must be the start
 * of a live object returned by an mgc allocation function; anything else
 * (a foreign pointer, an interior pointer, a second free) is reported on
 * stderr and ignored.  gc_free(NULL) does nothing. */
GC_API void gc_free(void *p);

/* ---- ask ---------------------------------------------------------------- */

/* Usable size of the object that starts at p (at least what was asked for),
 * or 0 when p is not the start of a live mgc object. */
GC_API size_t gc_size(const void *p);

/* Start of the live object that contains the address p (an interior pointer
 * is fine), or NULL when p is not inside an mgc object. */
GC_API void *gc_base(const void *p);

/* ---- threads ------------------------------------------------------------ */

/* Register / unregister the calling thread.  Registering twice is harmless;
 * a registered thread that exits without unregistering is unregistered by
 * its thread-exit destructor. */
GC_API void gc_thread_register(void);
GC_API void gc_thread_unregister(void);

#ifdef __cplusplus
}
#endif

#endif /* MGC_H */
