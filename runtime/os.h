/*
 * os.h: the operating-system layer.  Every call returns 0 or an errno value
 * (or NULL for the mapping calls) and never prints; callers decide what a
 * failure means.  One implementation per system, chosen by meson
 * (os_linux.c today).
 *
 * Memory states, as the heap sees them:
 *   reserved   address space taken, no access (PROT_NONE), costs nothing
 *   committed  readable and writable; pages become resident when touched
 *   released   committed but handed back with madvise: reads give zeroes and
 *              the pages are not resident until touched again
 */
#ifndef MGC_OS_H
#define MGC_OS_H

#include <stddef.h>
#include <stdint.h>

/* Reserve `size` bytes aligned to `align` (a power of two), preferably at
 * `hint`.  Returns NULL when the address space is exhausted. */
void *os_reserve_aligned(void *hint, size_t size, size_t align);
/* Reserve and commit anonymous memory for metadata; NULL on failure. */
void *os_alloc_metadata(size_t size);
void os_free_metadata(void *p, size_t size);
int os_commit(void *p, size_t size);
/* Give pages back; their contents read as zero afterwards. */
int os_release(void *p, size_t size);

size_t os_page_size(void);
int os_cpu_count(void);
uint64_t os_nanotime(void);          /* monotonic clock, nanoseconds */
uint64_t os_thread_cpu_ns(void);     /* CPU time of the calling thread */
uint64_t os_process_cpu_ns(void);    /* CPU time of the whole process */
/* Bounds of the calling thread's stack: [*lo, *hi). */
int os_thread_stack_bounds(uintptr_t *lo, uintptr_t *hi);
/* Start a detached thread running fn(arg) with every signal blocked: for
 * mgc's own background threads, which are never stopped by the collector
 * and must not run the program's signal handlers.  Returns 0 or an errno. */
int os_start_background_thread(void *(*fn)(void *), void *arg);
/* Lower the calling thread's scheduling priority to `nice` (Linux threads
 * have their own).  One way only: without privileges a thread cannot raise
 * its priority again, so only threads that never stop the world call it. */
void os_lower_thread_priority(int nice);
/* Name the calling thread (at most 15 characters), as top -H and
 * /proc/<pid>/task/<tid>/comm show it. */
void os_name_thread(const char *name);
/* For background threads that share CPUs with the program's: yield the CPU
 * if interval_ns have passed since *last_ns (which it then resets), so a
 * program thread waiting for this CPU gets it within about interval_ns
 * instead of after a whole scheduler slice. */
void os_yield_if_due(uint64_t *last_ns, uint64_t interval_ns);
/* Resident set size of the process in bytes, or 0 when unknown. */
size_t os_rss_bytes(void);

#endif /* MGC_OS_H */
