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

/* Scan the typed object whose slot starts at base (size bytes, header
 * included), greying what its pointer words point to. */
void types_scan_object(struct gcwork *w, uintptr_t base, uintptr_t size,
                       void (*mark)(struct gcwork *w, uintptr_t value, uintptr_t slot));
bool types_is_valid(const gc_type *t);

#endif /* MGC_TYPES_H */
