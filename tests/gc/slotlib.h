/*
 * slotlib.h: a tiny shared library whose only state is one static pointer,
 * so test_roots can prove that the data segments of shared objects are
 * roots.
 */
#ifndef MGC_TESTS_SLOTLIB_H
#define MGC_TESTS_SLOTLIB_H

void lib_set(void *p);
void *lib_get(void);

#endif
