/*
 * heaplive.c: the live-heap counter and the collection trigger hook (see
 * heaplive.h).
 */
#include "alloc/heaplive.h"

#include <stdint.h>

atomic_word heap_live;
atomic_word heap_cache_slack;
atomic_word alloc_black;
atomic_word heap_trigger = UINTPTR_MAX;

static void (*trigger_hook)(void);
void (*heap_assist_hook)(uintptr_t bytes);
void (*heap_sweep_assist_hook)(void);

void heap_set_trigger_hook(void (*hook)(void)) { trigger_hook = hook; }

void heap_check_trigger(void) {
  if (atomic_load_relaxed(&heap_live) >= atomic_load_relaxed(&heap_trigger) && trigger_hook)
    trigger_hook();
}
