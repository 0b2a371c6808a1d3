/*
 * init.h: one-time process setup (gc_init).
 */
#ifndef MGC_INIT_H
#define MGC_INIT_H

#include <stdbool.h>

#include "runtime/atomics.h"

/* Nonzero once gc_init's one-time part has finished. */
extern MGC_HIDDEN atomic_word mgc_initialized;

/* Run the one-time setup if it has not run; safe from any thread. */
void init_once(void);

#endif /* MGC_INIT_H */
