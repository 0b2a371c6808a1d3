/*
 * slotlib.c: see slotlib.h.  lib_slot is zero-initialised, so it lives in
 * the library's .bss, the end of its writable PT_LOAD segment.
 */
#include "slotlib.h"

static void *lib_slot;

void lib_set(void *p) { lib_slot = p; }
void *lib_get(void) { return lib_slot; }
