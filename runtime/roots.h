/*
 * roots.h: where marking starts.  Enumerates, as address ranges to scan
 * conservatively:
 *   - the writable data segments of the executable and of every loaded
 *     shared object (minus RELRO and minus libmgc.so's own data), captured
 *     by roots_capture_segments() before the world stops, since the
 *     dynamic loader's lock may be held by a stopped thread;
 *   - explicit roots from gc_add_roots;
 *   - every registered thread's stack from its saved stack pointer to its
 *     base, and the registers it saved on entering a blocking region;
 *   - the calling thread's own stack and registers.
 */
#ifndef MGC_ROOTS_H
#define MGC_ROOTS_H

#include <stddef.h>
#include <stdint.h>

typedef void (*roots_visit_fn)(uintptr_t lo, uintptr_t hi, void *ctx);

int roots_init(void);
/* Refresh the list of data segments; world running, no heap lock held. */
void roots_capture_segments(void);
/* Take / release the roots lock around a stopped world: it must be taken
 * before the world stops, since a stopped thread may be inside
 * gc_add_roots. */
void roots_lock_for_stw(void);
void roots_unlock_after_stw(void);
/* Visit every root range; world stopped, threads_lock and the roots lock
 * held. */
void roots_enumerate_stw(roots_visit_fn visit, void *ctx);

int roots_add(uintptr_t lo, uintptr_t hi);
void roots_remove(uintptr_t lo, uintptr_t hi);

/* Bytes of data segments and explicit roots found by the last capture. */
size_t roots_global_bytes(void);
/* After fork(). */
void roots_after_fork_child(void);

#endif /* MGC_ROOTS_H */
