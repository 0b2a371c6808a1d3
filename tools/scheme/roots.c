/*
 * roots.c: the interpreter's heap pointers that live outside the C stack.
 *
 * They sit in one block, R, registered with gc_add_roots before any of them
 * holds a heap pointer.  Stores into R are stores into a root, not into a
 * heap object, so they need no GC_WRITE: mgc scans roots when marking
 * starts and the snapshot barrier keeps whatever they held then.
 */
#include "scheme.h"

struct roots R;

void scheme_roots_init(void) {
  if (gc_add_roots(&R, sizeof R) != 0) {
    fprintf(stderr, "mgscheme: cannot register roots\n");
    exit(70);
  }
}
