/*
 * types.h: object layouts for precise scanning (gc_type_new and friends).
 *
 * A typed object starts with a one-word header holding its type; the user
 * pointer is TYPED_HEADER bytes in.  The header is written by
 * gc_alloc_typed right after the slot is taken; until then it reads 0
 * (the slot was zeroed) or, for a slot being reused, the type of a former
 * object of the same span class, both safe for the marker.
 */
#ifndef MGC_TYPES_H
#define MGC_TYPES_H

#include <stdbool.h>
#include <stdint.h>

#include "mgc.h"

#include "gc/workbuf.h"

#define TYPED_HEADER sizeof(void *)

typedef void (*types_mark_fn)(struct gcwork *w, uintptr_t value, uintptr_t slot);
/* How the marker scans an ephemeron (gc/ephemeron.c); obj is past the
 * header. */
typedef void (*types_ephemeron_fn)(struct gcwork *w, uintptr_t obj, types_mark_fn mark);

/* Scan the typed object whose slot starts at base (size bytes, header
 * included), calling mark for the value of each pointer word.  An
 * ephemeron goes to `ephemeron` instead, or, if that is NULL (MGC_VERIFY's
 * re-mark), is scanned as an object of `words` pointers. */
void types_scan_object(struct gcwork *w, uintptr_t base, uintptr_t size, types_mark_fn mark,
                       types_ephemeron_fn ephemeron);
bool types_is_valid(const gc_type *t);

/* The type of mgc's ephemeron objects: `words` pointer words, marked as
 * ephemerons (made once, by gc/ephemeron.c). */
const gc_type *types_new_ephemeron(size_t words);
bool types_is_ephemeron(const gc_type *t);

/* fork(): types_lock is held across it, then released (parent) or made
 * anew (child). */
void types_fork_prepare(void);
void types_fork_parent(void);
void types_after_fork_child(void);

#endif /* MGC_TYPES_H */
